/// An `irc:`/`ircs:` route target naming a configured network and a channel or
/// nick: `irc://NETWORK/ops` or `irc://NETWORK/%23ops` is the channel `#ops`,
/// `irc://NETWORK/alice,isnick` the nick `alice`. Only configured networks are
/// reachable (no open relay): NETWORK is the name of an `[irc.NAME]` section.
public struct IRCTarget: Sendable, Hashable {
    public var network: String
    /// `#channel` (or `&channel`) or a nick.
    public var recipient: String
    public var isNick: Bool { !(recipient.hasPrefix("#") || recipient.hasPrefix("&")) }

    public init?(_ uri: String) {
        let lower = uri.lowercased()
        let rest: Substring
        if lower.hasPrefix("irc://") { rest = uri.dropFirst(6) } else if lower.hasPrefix("ircs://") { rest = uri.dropFirst(7) } else { return nil }
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        let network = String(rest[..<slash])
        var path = String(rest[rest.index(after: slash)...]).replacingPercent23()
        guard !network.isEmpty, !path.isEmpty else { return nil }
        if path.hasSuffix(",isnick") {
            path = String(path.dropLast(7))
        } else if !(path.hasPrefix("#") || path.hasPrefix("&")) {
            path = "#" + path
        }
        // Nothing that would break the line: no spaces, commas, control characters.
        guard path.count > 1 || !path.hasPrefix("#"), path.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0 != "," && $0.value != 0x7F }) else {
            return nil
        }
        self.network = network
        self.recipient = path
    }
}

extension String {
    fileprivate func replacingPercent23() -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(of: "%23", options: .caseInsensitive) {
            out += rest[..<r.lowerBound] + "#"
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
