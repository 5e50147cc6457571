import CPIM
import XMPPWire

/// Who is who across the bridge. An MSRP peer appears on XMPP as an escaped
/// JID of the component (`sip:alice@example.com` → `alice\40example.com@msrp.example.org`;
/// a peer of another scheme keeps it: `tel\3a+15551234@...`), or under a
/// configured alias (`alice@msrp.example.org`). An XMPP user appears on MSRP
/// as `xmpp:bob@example.org`. Not an open relay: XMPP users reach only MSRP
/// peers of the configured domains and the aliases.
public struct XMPPAddressBook: Sendable {
    /// The component's domain.
    public let domain: String
    /// Alias (a local part) → MSRP peer URI.
    public let aliases: [String: String]
    /// Domains of the MSRP peers XMPP users may write to.
    public let msrpDomains: Set<String>

    public init(domain: String, aliases: [String: String] = [:], msrpDomains: [String] = []) {
        self.domain = domain.lowercased()
        self.aliases = Dictionary(aliases.map { ($0.key.lowercased(), $0.value.lowercased()) }, uniquingKeysWith: { a, _ in a })
        self.msrpDomains = Set(msrpDomains.map { $0.lowercased() })
    }

    static let schemes = ["sip:", "sips:", "tel:", "im:"]

    /// The JID that speaks for an MSRP peer (`sip:alice@example.com`, or a CPIM
    /// From such as `Alice <sip:alice@example.com>`).
    public func jid(forPeer address: String) -> JID? {
        guard let uri = Self.uri(address) else { return nil }
        if let alias = aliases.first(where: { $0.value == uri })?.key { return JID(local: alias, domain: domain) }
        let local = uri.hasPrefix("sip:") ? String(uri.dropFirst(4)) : uri
        return JID(local: JIDEscaping.escape(local), domain: domain)
    }

    /// The MSRP peer a JID of the component stands for, when XMPP users may reach it.
    public func peer(for jid: JID) -> String? {
        guard jid.domain == domain, let local = jid.local else { return nil }
        if let aliased = aliases[local] { return aliased }
        let plain = JIDEscaping.unescape(local)
        let uri = Self.schemes.contains(where: plain.hasPrefix) ? plain : "sip:" + plain
        guard !uri.hasPrefix("tel:"), let at = uri.lastIndex(of: "@") else { return nil }
        let host = uri[uri.index(after: at)...].split(separator: ";").first.map { String($0).lowercased() } ?? ""
        return msrpDomains.contains(host) ? uri : nil
    }

    /// `Alice <sip:alice@example.com>` or `sip:alice@example.com` → `sip:alice@example.com`.
    public static func uri(_ address: String) -> String? {
        (try? CPIMAddress(parsing: address)).map { $0.uri.lowercased() }
    }
}

/// A route target of the `xmpp` adapter: `xmpp:bob@example.org` (a user,
/// bare or full JID).
public struct XMPPTarget: Sendable, Hashable {
    public let jid: JID

    public init?(_ target: String) {
        guard target.lowercased().hasPrefix("xmpp:"), let jid = JID(String(target.dropFirst(5))), jid.local != nil else { return nil }
        self.jid = jid
    }
}
