/// The header section of a mail or a MIME part (RFC 5322 §2.2): fields
/// unfolded, names compared without case, values kept raw (`decoded(_:)`
/// reads RFC 2047 words). Bounded: a section past `maxFields` keeps its first
/// fields; the reader of a whole mail bounds its size before this.
public struct MailHeaders: Sendable, Hashable {
    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: String
    }

    public var fields: [Field]
    static let maxFields = 1_000

    public init(fields: [Field] = []) { self.fields = fields }

    /// The first value of `name`, raw.
    public subscript(_ name: String) -> String? {
        fields.first { $0.name.caseInsensitiveEquals(name) }?.value
    }

    /// The first value of `name` with its encoded words read (RFC 2047).
    public func decoded(_ name: String) -> String? { self[name].map(EncodedWords.decode) }

    /// Reads the header section at the start of `bytes`; returns it and where the
    /// body starts (after the empty line; the end when there is none). A line
    /// that is neither a field nor a continuation ends the section (the body
    /// starts there, as mailers that forget the empty line mean it to).
    public static func parse(_ bytes: ArraySlice<UInt8>) -> (MailHeaders, bodyStart: Int) {
        var fields: [Field] = []
        var i = bytes.startIndex
        var current: (name: String, value: [UInt8])?
        func flush() {
            if let c = current, fields.count < maxFields {
                fields.append(Field(name: c.name, value: Charset.decode(c.value, charset: nil).trimmingSpaces()))
            }
            current = nil
        }
        while i < bytes.endIndex {
            let lineEnd = bytes[i...].firstIndex(of: 0x0A) ?? bytes.endIndex
            var line = bytes[i..<lineEnd]
            if line.last == 0x0D { line = line.dropLast() }
            let next = lineEnd < bytes.endIndex ? lineEnd + 1 : lineEnd
            if line.isEmpty {
                flush()
                return (MailHeaders(fields: fields), next)
            }
            if let first = line.first, first == 0x20 || first == 0x09 {
                // Folded: the line break goes, the white space stays.
                if current != nil { current?.value += line }
                i = next
                continue
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                  line[line.startIndex..<colon].allSatisfy({ $0 > 0x20 && $0 < 0x7F })
            else {
                flush()
                return (MailHeaders(fields: fields), i)
            }
            flush()
            current = (String(decoding: line[line.startIndex..<colon], as: UTF8.self), Array(line[(colon + 1)...]))
            i = next
        }
        flush()
        return (MailHeaders(fields: fields), bytes.endIndex)
    }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        utf8.count == other.utf8.count && lowercased() == other.lowercased()
    }

    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" || f == "\n" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" || l == "\n" { s = s.dropLast() }
        return String(s)
    }
}

/// RFC 2047 encoded words (`=?charset?B?...?=`, `=?charset*lang?Q?...?=`) in a
/// header value read into text; white space between two adjacent words goes
/// (§6.2), a malformed word stays as written.
public enum EncodedWords {
    public static func decode(_ value: String) -> String {
        guard value.contains("=?") else { return value }
        var out = ""
        var rest = Substring(value)
        var pendingSpace = ""
        var lastWasWord = false
        while !rest.isEmpty {
            if rest.hasPrefix("=?"), let (text, after) = word(rest) {
                if !lastWasWord { out += pendingSpace }
                pendingSpace = ""
                out += text
                rest = after
                lastWasWord = true
                continue
            }
            let c = rest.removeFirst()
            if c == " " || c == "\t" {
                pendingSpace.append(c)
                continue
            }
            out += pendingSpace
            pendingSpace = ""
            out.append(c)
            lastWasWord = false
        }
        return out + pendingSpace
    }

    /// One encoded word at the start of `s`: its text and what follows.
    static func word(_ s: Substring) -> (String, Substring)? {
        let parts = s.dropFirst(2).split(separator: "?", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, parts[3].hasPrefix("="), parts[2].count <= 4_000 else { return nil }
        let charset = parts[0].split(separator: "*").first.map(String.init)  // RFC 2231 §5: charset*language
        let encoded = Array(parts[2].utf8)[...]
        let bytes: [UInt8]
        switch parts[1].lowercased() {
        case "b": bytes = TransferDecoding.base64(encoded)
        case "q": bytes = TransferDecoding.quotedPrintable(encoded, underscoreIsSpace: true)
        default: return nil
        }
        return (Charset.decode(bytes, charset: charset), parts[3].dropFirst())
    }
}
