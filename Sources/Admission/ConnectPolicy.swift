import NIOCore

/// Where the gateway may open connections that someone else named (an SDP
/// `a=path`, a relay's next hop): a peer or an API token holder must not make it
/// probe ports on its own host or reach link-local services (169.254.169.254).
/// An address in `allow` is allowed; otherwise one in `deny` is refused; anything
/// else is allowed. Hosts the operator configured (a relay) are `exempt`.
public struct ConnectPolicy: Sendable {
    public var allow: [CIDR]
    public var deny: [CIDR]
    /// Host names or literals always allowed (lower-cased).
    public var exempt: Set<String>

    public init(allow: [CIDR] = [], deny: [CIDR] = ConnectPolicy.defaultDeny, exempt: Set<String> = []) {
        self.allow = allow
        self.deny = deny
        self.exempt = Set(exempt.map { $0.lowercased() })
    }

    /// Loopback, "this network", link-local (cloud metadata), multicast, and
    /// their IPv6 and IPv4-mapped forms.
    public static let defaultDeny: [CIDR] = [
        "127.0.0.0/8", "0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32",
        "::1/128", "::/128", "fe80::/10", "ff00::/8", "::ffff:127.0.0.0/104", "::ffff:169.254.0.0/112", "::ffff:0.0.0.0/104",
    ].compactMap { CIDR($0) }

    public func permits(_ address: SocketAddress) -> Bool {
        if allow.contains(where: { $0.contains(address) }) { return true }
        return !deny.contains { $0.contains(address) }
    }
}

/// An address block: `10.0.0.0/8`, `fe80::/10`, or one address.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    let network: [UInt8]
    let prefix: Int
    public let description: String

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let address = try? SocketAddress(ipAddress: String(first), port: 0) else { return nil }
        let bytes = Self.bytes(address)
        let prefix = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
        guard let prefix, (0...(bytes.count * 8)).contains(prefix) else { return nil }
        self.network = bytes
        self.prefix = prefix
        self.description = text
    }

    public func contains(_ address: SocketAddress) -> Bool {
        let bytes = Self.bytes(address)
        guard bytes.count == network.count else { return false }
        var left = prefix
        for i in 0..<bytes.count where left > 0 {
            let bits = min(8, left)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if bytes[i] & mask != network[i] & mask { return false }
            left -= bits
        }
        return true
    }

    static func bytes(_ address: SocketAddress) -> [UInt8] {
        switch address {
        case .v4(let a): withUnsafeBytes(of: a.address.sin_addr.s_addr) { Array($0) }
        case .v6(let a): withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
        case .unixDomainSocket: []
        }
    }
}
