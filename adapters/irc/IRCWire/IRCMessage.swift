/// One IRC line (RFC 1459/2812 with IRCv3 message tags): tags, an optional
/// source, the command (a word or a three-digit numeric) and its parameters.
public struct IRCMessage: Sendable, Hashable {
    /// IRCv3 tags in the order received; a key given twice keeps its last value.
    public var tags: [IRCTag]
    public var source: String?
    public var command: String
    public var params: [String]

    public init(tags: [IRCTag] = [], source: String? = nil, command: String, params: [String] = []) {
        self.tags = tags
        self.source = source
        self.command = command
        self.params = params
    }

    public func tag(_ key: String) -> String? { tags.last { $0.key == key }?.value }

    /// The three-digit numeric of a server reply, if this is one.
    public var numeric: Int? {
        command.utf8.count == 3 && command.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } ? Int(command) : nil
    }

    /// The source split into nick, user and host.
    public var sourceParts: IRCUserHost? { source.map(IRCUserHost.init) }
}

public struct IRCTag: Sendable, Hashable {
    public var key: String
    /// Unescaped; a tag without a value has "".
    public var value: String

    public init(_ key: String, _ value: String = "") {
        self.key = key
        self.value = value
    }
}

/// `nick!user@host`, any part possibly missing.
public struct IRCUserHost: Sendable, Hashable {
    public var nick: String
    public var user: String
    public var host: String

    public init(_ source: String) {
        var rest = Substring(source)
        var host = Substring("")
        if let at = rest.firstIndex(of: "@") {
            host = rest[rest.index(after: at)...]
            rest = rest[..<at]
        }
        var user = Substring("")
        if let bang = rest.firstIndex(of: "!") {
            user = rest[rest.index(after: bang)...]
            rest = rest[..<bang]
        }
        self.nick = String(rest)
        self.user = String(user)
        self.host = String(host)
    }
}

extension IRCMessage {
    /// The line to send, without CRLF. The last parameter is written as a
    /// trailing one (`:`) when it must be: empty, with a space, or starting with `:`.
    public var serialized: String {
        var out = ""
        if !tags.isEmpty {
            out += "@" + tags.map { $0.value.isEmpty ? $0.key : "\($0.key)=\(Self.escape($0.value))" }.joined(separator: ";") + " "
        }
        if let source { out += ":\(source) " }
        out += command
        for (i, p) in params.enumerated() {
            let last = i == params.count - 1
            if last, p.isEmpty || p.utf8.contains(0x20) || p.utf8.first == 0x3A {
                out += " :" + p
            } else {
                out += " " + p
            }
        }
        return out
    }

    /// IRCv3 tag value escaping: `;` `\s` `\\` `\r` `\n`.
    static func escape(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for c in value.unicodeScalars {
            switch c {
            case ";": out += "\\:"
            case " ": out += "\\s"
            case "\\": out += "\\\\"
            case "\r": out += "\\r"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
