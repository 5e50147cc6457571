/// A CPIM address, `Display Name <uri>` (RFC 3862 §3.6): the display name is
/// optional and may be a quoted string.
public struct CPIMAddress: Sendable, Hashable, CustomStringConvertible {
    public var displayName: String?
    public var uri: String

    public init(displayName: String? = nil, uri: String) {
        self.displayName = displayName
        self.uri = uri
    }

    /// Parses `Name <uri>`, `"Quoted Name" <uri>`, `<uri>`, or a bare URI (tolerated:
    /// some clients leave out the brackets). Works on the UTF-8 bytes: every
    /// delimiter is ASCII, and walking Characters (grapheme breaking) made this
    /// a visible part of a webhook delivery.
    public init(parsing text: String) throws(CPIMError) {
        let t = text.trimmingASCIIWhitespace()
        let bytes = t.utf8
        let space = UInt8(ascii: " "), colon = UInt8(ascii: ":"), close = UInt8(ascii: ">"), quote = UInt8(ascii: "\"")
        guard let open = bytes.firstIndex(of: UInt8(ascii: "<")) else {
            guard !bytes.isEmpty, !bytes.contains(space), !bytes.contains(close), bytes.contains(colon) else {
                throw CPIMError(.badAddress, String(text.prefix(80)))
            }
            self.init(uri: t)
            return
        }
        guard bytes.last == close, bytes.lastIndex(of: UInt8(ascii: "<")) == open else { throw CPIMError(.badAddress, String(text.prefix(80))) }
        let uriBytes = bytes[bytes.index(after: open)..<bytes.index(before: bytes.endIndex)]
        guard !uriBytes.isEmpty, uriBytes.contains(colon), !uriBytes.contains(space), !uriBytes.contains(close) else {
            throw CPIMError(.badAddress, String(text.prefix(80)))
        }
        let uri = String(t[uriBytes.startIndex..<uriBytes.endIndex])
        var name = t[..<open].trimmingASCIIWhitespace()
        if name.utf8.first == quote {
            guard name.utf8.count >= 2, name.utf8.last == quote else { throw CPIMError(.badAddress, String(text.prefix(80))) }
            name = unescapeQuoted(String(name.dropFirst().dropLast()))
        }
        self.init(displayName: name.isEmpty ? nil : name, uri: uri)
    }

    /// `"Display" <uri>`, quoting the name when it holds anything but tokens and spaces.
    public var description: String {
        guard let name = displayName, !name.isEmpty else { return "<\(uri)>" }
        let plain = name.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil || " -._!%*+`'~".unicodeScalars.contains($0) }
        return (plain ? name : "\"" + escapeQuoted(name) + "\"") + " <\(uri)>"
    }
}

func unescapeQuoted(_ s: String) -> String {
    var out = ""
    var escaped = false
    for c in s {
        if escaped {
            out.append(c)
            escaped = false
        } else if c == "\\" {
            escaped = true
        } else {
            out.append(c)
        }
    }
    return out
}

func escapeQuoted(_ s: String) -> String {
    var out = ""
    for c in s {
        if c == "\"" || c == "\\" { out.append("\\") }
        out.append(c)
    }
    return out
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (bytes, not Characters).
    func trimmingASCIIWhitespace() -> String {
        let s = Substring(self)
        func blank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }
        guard let first = s.utf8.firstIndex(where: { !blank($0) }), let last = s.utf8.lastIndex(where: { !blank($0) }) else { return "" }
        return String(s[first...last])
    }
}
