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
    /// some clients leave out the brackets).
    public init(parsing text: String) throws(CPIMError) {
        let t = text.trimmingASCIIWhitespace()
        guard let open = t.firstIndex(of: "<") else {
            guard !t.isEmpty, !t.contains(" "), !t.contains(">"), t.contains(":") else {
                throw CPIMError(.badAddress, String(text.prefix(80)))
            }
            self.init(uri: t)
            return
        }
        guard t.hasSuffix(">"), t.lastIndex(of: "<") == open else { throw CPIMError(.badAddress, String(text.prefix(80))) }
        let uri = String(t[t.index(after: open)..<t.index(before: t.endIndex)])
        guard !uri.isEmpty, uri.contains(":"), !uri.contains(" "), !uri.contains(">") else {
            throw CPIMError(.badAddress, String(text.prefix(80)))
        }
        var name = String(t[..<open]).trimmingASCIIWhitespace()
        if name.hasPrefix("\"") {
            guard name.count >= 2, name.hasSuffix("\"") else { throw CPIMError(.badAddress, String(text.prefix(80))) }
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
    func trimmingASCIIWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
