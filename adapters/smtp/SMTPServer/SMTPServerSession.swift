import Foundation
import SMTPWire

/// The server side of one SMTP connection (RFC 5321, with PIPELINING, SIZE,
/// 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES and STARTTLS), without I/O: it is
/// fed complete lines (or word that a line was too long or ended in a bare
/// LF) and says what to do. What needs the gateway (is this recipient one of
/// ours? is the mail stored?) comes back as an action; the connection asks,
/// and hands the answer back (`recipientChecked`, `stored`) before it feeds
/// the next line.
public struct SMTPServerSession: Sendable {
    public enum Action: Sendable, Hashable {
        case reply(SMTPServerReply)
        /// Ask whether `address` may receive mail here; answer with `recipientChecked`.
        case checkRecipient(String)
        /// Store the mail; answer with `stored` (its reply is the one the client gets).
        case store(SMTPEnvelope, [UInt8])
        /// After the 220 to STARTTLS: drop anything read but not handled, start TLS.
        case startTLS
        case close
    }

    /// How a line reached the session.
    public enum Line: Sendable, Hashable {
        /// Without its CRLF.
        case complete(ArraySlice<UInt8>)
        /// Longer than the limit: its bytes were dropped.
        case overlong
        /// Ended in LF without CR: refused (it is how SMTP smuggling starts).
        case bareLF
    }

    enum State: Sendable, Hashable {
        case greeted, ready, mail, data, waiting, closed
    }

    public let hostname: String
    public let limits: SMTPServerLimits
    /// STARTTLS can be offered (a certificate is configured).
    public let tlsAvailable: Bool
    /// A client must start TLS before MAIL.
    public let tlsRequired: Bool
    /// Who the client is, for the Received field.
    public let peer: String
    private(set) var state = State.greeted
    private(set) var tlsActive = false
    private var esmtp = false
    private var helo = ""
    private var envelope: SMTPEnvelope?
    private var pendingRecipient = false
    private var data: [UInt8] = []
    private var dataRefusal: SMTPServerReply?
    private var inHeaders = true
    private var hops = 0
    private var errors = 0

    public init(hostname: String, limits: SMTPServerLimits, tlsAvailable: Bool, tlsRequired: Bool = false, peer: String) {
        self.hostname = hostname
        self.limits = limits
        self.tlsAvailable = tlsAvailable
        self.tlsRequired = tlsRequired && tlsAvailable
        self.peer = peer
    }

    public var greeting: SMTPServerReply { SMTPServerReply(220, nil, "\(hostname) ESMTP msrpgw") }

    /// Lines are read with the data limit while a mail's text comes.
    public var readingData: Bool { state == .data }
    /// Waiting for an answer to `checkRecipient` or `store`: feed nothing.
    public var waiting: Bool { state == .waiting }
    public var closed: Bool { state == .closed }

    // MARK: - Lines

    public mutating func receive(_ line: Line) -> [Action] {
        switch state {
        case .closed, .waiting: return []
        case .data: return dataLine(line)
        default: break
        }
        switch line {
        case .overlong: return refuse(SMTPServerReply(500, "5.5.2", "Line too long"))
        case .bareLF:
            state = .closed
            return [.reply(SMTPServerReply(521, "5.5.2", "Bare LF received: lines end in CRLF")), .close]
        case .complete(let bytes):
            return command(bytes)
        }
    }

    private mutating func command(_ bytes: ArraySlice<UInt8>) -> [Action] {
        guard !bytes.contains(where: { $0 == 0 || $0 == 0x0D }), let text = String(validating: bytes, as: UTF8.self) else {
            return refuse(SMTPServerReply(500, "5.5.2", "Syntax error: NUL, CR or invalid UTF-8 in a command"))
        }
        let verbEnd = text.firstIndex(of: " ") ?? text.endIndex
        let verb = text[..<verbEnd].uppercased()
        let argument = text[verbEnd...].drop { $0 == " " }
        switch verb {
        case "EHLO", "HELO":
            guard !argument.isEmpty, !argument.contains(" ") || verb == "HELO" else {
                return refuse(SMTPServerReply(501, "5.5.4", "\(verb) needs a domain"))
            }
            esmtp = verb == "EHLO"
            helo = String(argument.prefix(255))
            envelope = nil
            state = .ready
            guard esmtp else { return [.reply(SMTPServerReply(250, nil, hostname))] }
            var lines = [hostname, "PIPELINING", "SIZE \(limits.maxMessageSize)", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"]
            if tlsAvailable && !tlsActive { lines.append("STARTTLS") }
            return [.reply(SMTPServerReply(code: 250, enhanced: nil, lines: lines))]
        case "STARTTLS":
            guard tlsAvailable, !tlsActive else { return refuse(SMTPServerReply(502, "5.5.1", "STARTTLS not available")) }
            guard argument.isEmpty else { return refuse(SMTPServerReply(501, "5.5.4", "STARTTLS takes no argument")) }
            guard state != .mail else { return refuse(SMTPServerReply(503, "5.5.1", "STARTTLS inside a mail transaction")) }
            // RFC 3207 §4.2: everything starts over, with EHLO.
            tlsActive = true
            state = .greeted
            envelope = nil
            return [.reply(SMTPServerReply(220, "2.0.0", "Ready to start TLS")), .startTLS]
        case "MAIL":
            guard state != .greeted else { return refuse(SMTPServerReply(503, "5.5.1", "EHLO first")) }
            guard state == .ready else { return refuse(SMTPServerReply(503, "5.5.1", "Nested MAIL command")) }
            guard !tlsRequired || tlsActive else { return refuse(SMTPServerReply(530, "5.7.0", "Must issue a STARTTLS command first")) }
            guard let (address, params) = Self.path(argument, keyword: "FROM:") else {
                return refuse(SMTPServerReply(501, "5.5.4", "Syntax: MAIL FROM:<address>"))
            }
            var utf8 = false
            for (key, value) in params {
                switch key {
                case "SIZE":
                    guard let size = value.flatMap({ Int($0) }) else { return refuse(SMTPServerReply(501, "5.5.4", "SIZE needs a number")) }
                    if size > limits.maxMessageSize {
                        return refuse(SMTPServerReply(552, "5.3.4", "Message size exceeds the limit of \(limits.maxMessageSize)"))
                    }
                case "BODY":
                    guard let v = value?.uppercased(), v == "7BIT" || v == "8BITMIME" else {
                        return refuse(SMTPServerReply(555, "5.5.4", "BODY must be 7BIT or 8BITMIME"))
                    }
                case "SMTPUTF8":
                    guard esmtp else { return refuse(SMTPServerReply(555, "5.5.4", "SMTPUTF8 needs EHLO")) }
                    utf8 = true
                default:
                    return refuse(SMTPServerReply(555, "5.5.4", "Unsupported parameter \(key.prefix(32))"))
                }
            }
            if !utf8, !address.utf8.allSatisfy({ $0 < 0x80 }) {
                return refuse(SMTPServerReply(553, "5.6.7", "Non-ASCII address needs SMTPUTF8"))
            }
            envelope = SMTPEnvelope(mailFrom: address, smtpUTF8: utf8, heloName: helo, tls: tlsActive)
            state = .mail
            return [.reply(SMTPServerReply(250, "2.1.0", "Ok"))]
        case "RCPT":
            guard state == .mail, let envelope else { return refuse(SMTPServerReply(503, "5.5.1", "MAIL first")) }
            guard let (address, params) = Self.path(argument, keyword: "TO:"), !address.isEmpty else {
                return refuse(SMTPServerReply(501, "5.5.4", "Syntax: RCPT TO:<address>"))
            }
            guard params.isEmpty else { return refuse(SMTPServerReply(555, "5.5.4", "Unsupported parameter \(params[0].0.prefix(32))")) }
            guard envelope.smtpUTF8 || address.utf8.allSatisfy({ $0 < 0x80 }) else {
                return refuse(SMTPServerReply(553, "5.6.7", "Non-ASCII address needs SMTPUTF8"))
            }
            guard envelope.recipients.count < limits.maxRecipients else {
                return refuse(SMTPServerReply(452, "4.5.3", "Too many recipients"))
            }
            state = .waiting
            pendingRecipient = true
            return [.checkRecipient(address)]
        case "DATA":
            guard argument.isEmpty else { return refuse(SMTPServerReply(501, "5.5.4", "DATA takes no argument")) }
            guard state == .mail, let envelope, !envelope.recipients.isEmpty else {
                return refuse(SMTPServerReply(503, "5.5.1", state == .mail ? "No valid recipients" : "MAIL first"))
            }
            state = .data
            data = Array(received.utf8)
            (dataRefusal, inHeaders, hops) = (nil, true, 0)
            return [.reply(SMTPServerReply(354, nil, "End data with <CR><LF>.<CR><LF>"))]
        case "RSET":
            envelope = nil
            if state != .greeted { state = .ready }
            return [.reply(SMTPServerReply(250, "2.0.0", "Ok"))]
        case "NOOP":
            return [.reply(SMTPServerReply(250, "2.0.0", "Ok"))]
        case "QUIT":
            state = .closed
            return [.reply(SMTPServerReply(221, "2.0.0", "Bye")), .close]
        case "VRFY":
            return [.reply(SMTPServerReply(252, "2.5.0", "Cannot VRFY user"))]
        case "HELP":
            return [.reply(SMTPServerReply(214, "2.0.0", "See RFC 5321"))]
        default:
            return refuse(SMTPServerReply(500, "5.5.2", "Command unrecognized"))
        }
    }

    /// A refusal, counted: past `maxErrors` the connection ends.
    private mutating func refuse(_ reply: SMTPServerReply) -> [Action] {
        errors += 1
        guard errors <= limits.maxErrors else {
            state = .closed
            return [.reply(SMTPServerReply(421, "4.7.0", "\(hostname) Too many errors, closing")), .close]
        }
        return [.reply(reply)]
    }

    /// The transaction's envelope so far (for `checkRecipient`).
    var pendingEnvelope: SMTPEnvelope { envelope ?? SMTPEnvelope(mailFrom: "") }

    /// The connection ended (time-out, error): nothing more is taken.
    public mutating func end() {
        state = .closed
        data = []
    }

    // MARK: - Answers from the gateway

    /// The answer to `checkRecipient`: nil takes the recipient.
    public mutating func recipientChecked(_ address: String, refusal: SMTPServerReply?) -> [Action] {
        guard state == .waiting, pendingRecipient else { return [] }
        pendingRecipient = false
        state = .mail
        if let refusal { return refuse(refusal) }
        envelope?.recipients.append(address)
        return [.reply(SMTPServerReply(250, "2.1.5", "Ok"))]
    }

    /// The answer to `store`: the reply the client gets; the transaction ends.
    public mutating func stored(_ reply: SMTPServerReply) -> [Action] {
        guard state == .waiting, !pendingRecipient else { return [] }
        state = .ready
        envelope = nil
        data = []
        return reply.isPositive ? [.reply(reply)] : refuse(reply)
    }

    // MARK: - The mail's text

    private mutating func dataLine(_ line: Line) -> [Action] {
        switch line {
        case .bareLF:
            state = .closed
            data = []
            return [.reply(SMTPServerReply(521, "5.5.2", "Bare LF received: lines end in CRLF")), .close]
        case .overlong:
            dataRefusal = dataRefusal ?? SMTPServerReply(552, "5.3.4", "Line too long (limit \(limits.maxDataLine) octets)")
            return []
        case .complete(var bytes):
            if bytes.count == 1, bytes.first == UInt8(ascii: ".") { return endOfData() }
            if bytes.first == UInt8(ascii: ".") { bytes = bytes.dropFirst() }  // RFC 5321 §4.5.2
            guard dataRefusal == nil else { return [] }
            if inHeaders {
                if bytes.isEmpty {
                    inHeaders = false
                } else if bytes.count >= 9, bytes.prefix(9).map({ $0 | 0x20 }) == Array("received:".utf8) {
                    hops += 1
                    if hops > limits.maxHops { dataRefusal = SMTPServerReply(554, "5.4.6", "Too many hops: mail loop?") }
                }
                if data.count + bytes.count > limits.maxHeaderBytes {
                    dataRefusal = SMTPServerReply(552, "5.3.4", "Header section too large (limit \(limits.maxHeaderBytes) octets)")
                }
            }
            if data.count + bytes.count + 2 > limits.maxMessageSize + 1_024 {
                dataRefusal = SMTPServerReply(552, "5.3.4", "Message size exceeds the limit of \(limits.maxMessageSize)")
            }
            guard dataRefusal == nil else {
                data = []
                return []
            }
            data += bytes
            data += [0x0D, 0x0A]
            return []
        }
    }

    private mutating func endOfData() -> [Action] {
        if let refusal = dataRefusal {
            state = .ready
            envelope = nil
            data = []
            return refuse(refusal)
        }
        guard let envelope else { return [] }
        state = .waiting
        let mail = data
        data = []
        return [.store(envelope, mail)]
    }

    /// The Received field (RFC 5321 §4.4) the gateway puts on top.
    private var received: String {
        let with = (envelope?.smtpUTF8 == true ? "UTF8SMTP" : "ESMTP") + (tlsActive ? "S" : "")
        return "Received: from \(helo.filter { $0.isASCII && !$0.isWhitespace && $0 != "(" && $0 != ")" }) (\(peer))\r\n\tby \(hostname) (msrpgw) with \(with);\r\n\t\(SMTPServerSession.date())\r\n"
    }

    // MARK: - Paths

    /// `FROM:<address> PARAM=value ...` (the keyword without case; one space
    /// after the colon tolerated, as common clients send it). Source routes go
    /// (RFC 5321 §4.1.2 says to accept and ignore them).
    static func path(_ argument: Substring, keyword: String) -> (String, [(String, String?)])? {
        guard argument.count >= keyword.count, argument.prefix(keyword.count).uppercased() == keyword else { return nil }
        var rest = argument.dropFirst(keyword.count)
        while rest.first == " " { rest = rest.dropFirst() }
        guard rest.first == "<", let close = rest.firstIndex(of: ">") else { return nil }
        var address = rest[rest.index(after: rest.startIndex)..<close]
        if address.first == "@", let colon = address.firstIndex(of: ":") { address = address[address.index(after: colon)...] }
        guard address.utf8.count <= 254, isPlausible(address) else { return nil }
        var params: [(String, String?)] = []
        for word in rest[rest.index(after: close)...].split(separator: " ") {
            // esmtp-param: keyword ["=" value]; a word starting with "=" has no keyword.
            let kv = word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = kv.first, !key.isEmpty, params.count < 16 else { return nil }
            params.append((key.uppercased(), kv.count > 1 ? String(kv[1]) : nil))
        }
        return (String(address), params)
    }

    /// An addr-spec we can carry: empty (the null path), or local@domain with
    /// no white space, brackets, controls or a second `@` outside quotes.
    static func isPlausible(_ address: Substring) -> Bool {
        if address.isEmpty { return true }
        guard let at = address.lastIndex(of: "@"), at != address.startIndex, address.index(after: at) != address.endIndex else { return false }
        let local = address[..<at]
        let domain = address[address.index(after: at)...]
        let quoted = local.hasPrefix("\"") && local.hasSuffix("\"") && local.count >= 2
        guard quoted || !local.contains("@") else { return false }
        return !address.unicodeScalars.contains { $0.value < 0x21 && !(quoted && $0 == " ") || $0 == "<" || $0 == ">" || $0.value == 0x7F }
            && !domain.contains("\"") && !domain.contains(" ") && domain.count <= 253
    }

    static func date() -> String { MailDraft.rfc5322Date(Date()) }
}
