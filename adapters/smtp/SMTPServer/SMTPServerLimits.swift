/// What one inbound SMTP connection may ask of the gateway.
public struct SMTPServerLimits: Sendable, Hashable {
    /// Octets of a mail (the SIZE offered; a bigger one is refused with 552 5.3.4).
    public var maxMessageSize: Int
    public var maxRecipients: Int
    /// Octets of a command line with its CRLF (RFC 5321 §4.5.3.1.4: 512, plus
    /// room for extension parameters).
    public var maxCommandLine: Int
    /// Octets of a line of mail text; RFC 5321 says 1,000, mailers send more.
    public var maxDataLine: Int
    /// Octets of a mail's header section.
    public var maxHeaderBytes: Int
    /// Refused commands before the connection is closed (421).
    public var maxErrors: Int
    /// `Received:` fields past which a mail is taken for a loop (554 5.4.6).
    public var maxHops: Int

    public init(maxMessageSize: Int = 10 << 20, maxRecipients: Int = 100, maxCommandLine: Int = 1_000, maxDataLine: Int = 64 << 10,
                maxHeaderBytes: Int = 256 << 10, maxErrors: Int = 20, maxHops: Int = 30) {
        self.maxMessageSize = maxMessageSize
        self.maxRecipients = maxRecipients
        self.maxCommandLine = maxCommandLine
        self.maxDataLine = maxDataLine
        self.maxHeaderBytes = maxHeaderBytes
        self.maxErrors = maxErrors
        self.maxHops = maxHops
    }
}

/// The envelope of a mail (RFC 5321): who it is from and for, as the client said.
public struct SMTPEnvelope: Sendable, Hashable {
    /// Empty for the null reverse-path `<>` (bounces).
    public var mailFrom: String
    public var recipients: [String]
    /// The client asked for SMTPUTF8 (RFC 6531).
    public var smtpUTF8: Bool
    public var heloName: String
    public var tls: Bool

    public init(mailFrom: String, recipients: [String] = [], smtpUTF8: Bool = false, heloName: String = "", tls: Bool = false) {
        self.mailFrom = mailFrom
        self.recipients = recipients
        self.smtpUTF8 = smtpUTF8
        self.heloName = heloName
        self.tls = tls
    }
}

/// A reply to send (RFC 5321 §4.2, with an RFC 3463 enhanced code).
public struct SMTPServerReply: Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var enhanced: String?
    public var lines: [String]

    public init(_ code: Int, _ enhanced: String?, _ lines: String...) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines.isEmpty ? [""] : lines
    }

    public init(code: Int, enhanced: String?, lines: [String]) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines.isEmpty ? [""] : lines
    }

    public var isPositive: Bool { code < 400 }

    /// The wire form, CRLF after every line; control characters in the text go.
    public var wire: String {
        var out = ""
        for (i, line) in lines.enumerated() {
            let text = (enhanced.map { $0 + " " } ?? "") + line.filter { $0 != "\r" && $0 != "\n" && $0 != "\0" }
            out += "\(code)\(i == lines.count - 1 ? " " : "-")\(text)\r\n"
        }
        return out
    }

    public var description: String { "\(code) " + (enhanced.map { $0 + " " } ?? "") + lines.joined(separator: " / ") }
}
