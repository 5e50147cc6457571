import Foundation

/// A mailbox: `"Display Name" <local@domain>`.
public struct MailAddress: Sendable, Hashable {
    public var name: String?
    public var address: String

    public init(name: String? = nil, address: String) {
        self.name = name
        self.address = address
    }

    /// Whether `address` is a plausible addr-spec: one `@`, no white space,
    /// brackets or control characters (it goes into commands and headers).
    public var isValid: Bool {
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty && address.utf8.count <= 254
            && !address.unicodeScalars.contains { $0.value <= 0x20 || $0 == "<" || $0 == ">" || $0 == "," || $0 == ";" || $0.value == 0x7F }
    }

    public var needsSMTPUTF8: Bool { !address.unicodeScalars.allSatisfy(\.isASCII) }

    func header(utf8: Bool) -> String {
        guard let name, !name.isEmpty else { return "<\(address)>" }
        let shown = utf8 ? "\"" + name.filter { $0 != "\r" && $0 != "\n" && $0 != "\"" } + "\"" : MIMEEncoding.displayName(name)
        return "\(shown) <\(address)>"
    }
}

/// What a mail carries.
public enum MailContent: Sendable, Hashable {
    case text(String)
    /// Sent as multipart/alternative with a plain-text part made from it.
    case html(String)
    /// Any other content type: a short text part and the content as an attachment.
    case attachment(contentType: String, filename: String, bytes: [UInt8], note: String)
}

/// A mail to compose (RFC 5322 and MIME).
public struct MailDraft: Sendable, Hashable {
    public var from: MailAddress
    public var replyTo: MailAddress?
    public var to: [MailAddress]
    public var subject: String
    public var date: Date
    /// `<unique@domain>`: stable per event, so a retry is the same mail.
    public var messageID: String
    public var inReplyTo: String?
    public var references: [String]
    public var content: MailContent
    /// Extra headers (already safe ASCII values), e.g. `X-MSRP-Session`.
    public var extraHeaders: [(String, String)]

    public init(from: MailAddress, replyTo: MailAddress? = nil, to: [MailAddress], subject: String, date: Date, messageID: String,
                inReplyTo: String? = nil, references: [String] = [], content: MailContent, extraHeaders: [(String, String)] = []) {
        self.from = from
        self.replyTo = replyTo
        self.to = to
        self.subject = subject
        self.date = date
        self.messageID = messageID
        self.inReplyTo = inReplyTo
        self.references = references
        self.content = content
        self.extraHeaders = extraHeaders
    }

    public static func == (a: MailDraft, b: MailDraft) -> Bool { a.messageID == b.messageID && a.content == b.content }
    public func hash(into h: inout Hasher) { h.combine(messageID) }

    /// The message, ready for DATA (before dot-stuffing). With `utf8Headers`
    /// (the server offered SMTPUTF8 and it is used) names and the subject go as
    /// UTF-8; otherwise as RFC 2047 encoded words. Bodies are always 7-bit safe.
    public func composed(utf8Headers: Bool = false) -> [UInt8] {
        var h = ""
        h += MIMEEncoding.header("Date", Self.rfc5322Date(date))
        h += MIMEEncoding.header("From", from.header(utf8: utf8Headers))
        if let replyTo { h += MIMEEncoding.header("Reply-To", replyTo.header(utf8: utf8Headers)) }
        h += MIMEEncoding.header("To", to.map { $0.header(utf8: utf8Headers) }.joined(separator: ", "))
        let subjectText = subject.filter { $0 != "\r" && $0 != "\n" && $0 != "\r\n" }
        h += MIMEEncoding.header("Subject", utf8Headers ? subjectText : MIMEEncoding.headerText(subjectText))
        h += MIMEEncoding.header("Message-ID", messageID)
        if let inReplyTo { h += MIMEEncoding.header("In-Reply-To", inReplyTo) }
        if !references.isEmpty { h += MIMEEncoding.header("References", references.joined(separator: " ")) }
        for (k, v) in extraHeaders { h += MIMEEncoding.header(k, v.filter { $0 != "\r" && $0 != "\n" }) }
        h += "MIME-Version: 1.0\r\n"
        // "=_" never occurs in quoted-printable or base64 text, so the boundary cannot either.
        let boundary = "=_msrpgw_" + messageID.filter { $0.isASCII && ($0.isLetter || $0.isNumber) }
        switch content {
        case .text(let text):
            h += textPart(text, subtype: "plain")
        case .html(let html):
            h += "Content-Type: multipart/alternative; boundary=\"\(boundary)\"\r\n\r\n"
            h += "--\(boundary)\r\n" + textPart(HTMLText.plain(html), subtype: "plain")
            h += "\r\n--\(boundary)\r\n" + textPart(html, subtype: "html")
            h += "\r\n--\(boundary)--\r\n"
        case .attachment(let type, let filename, let bytes, let note):
            h += "Content-Type: multipart/mixed; boundary=\"\(boundary)\"\r\n\r\n"
            h += "--\(boundary)\r\n" + textPart(note, subtype: "plain")
            let safeName = filename.filter { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
            h += "\r\n--\(boundary)\r\nContent-Type: \(type.filter { $0 != "\r" && $0 != "\n" })\r\nContent-Transfer-Encoding: base64\r\n"
            h += "Content-Disposition: attachment; filename=\"\(safeName.isEmpty ? "attachment" : safeName)\"\r\n\r\n"
            h += MIMEEncoding.base64Lines(bytes)
            h += "--\(boundary)--\r\n"
        }
        return Array(h.utf8)
    }

    private func textPart(_ text: String, subtype: String) -> String {
        "Content-Type: text/\(subtype); charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + MIMEEncoding.quotedPrintable(text) + "\r\n"
    }

    /// `Tue, 24 Nov 2026 10:00:00 +0000`.
    public static func rfc5322Date(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var tm = tm()
        gmtime_r(&t, &tm)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : String(n) }
        return "\(days[Int(tm.tm_wday) % 7]), \(two(tm.tm_mday)) \(months[Int(tm.tm_mon) % 12]) \(tm.tm_year + 1900) \(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) +0000"
    }
}

/// DATA's transparency rule (RFC 5321 §4.5.2): CRLF line ends, a line that
/// starts with "." gets another, and the terminating `CRLF.CRLF`.
public enum SMTPData {
    public static func stuffed(_ message: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(message.count + message.count / 64 + 8)
        var lineStart = true
        var i = 0
        while i < message.count {
            let b = message[i]
            if b == 0x0D || b == 0x0A {
                // CRLF, a bare CR or a bare LF: each is one line end, written as CRLF.
                if b == 0x0D, i + 1 < message.count, message[i + 1] == 0x0A { i += 1 }
                out += [0x0D, 0x0A]
                lineStart = true
            } else {
                if lineStart, b == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
                out.append(b)
                lineStart = false
            }
            i += 1
        }
        if !lineStart { out += [0x0D, 0x0A] }
        out += Array(".\r\n".utf8)
        return out
    }
}
