import Events
import Foundation
import NIOConcurrencyHelpers

/// One place a message goes: the adapter that delivers it and its target URI.
public struct RouteTarget: Sendable, Hashable {
    public var adapter: String
    public var target: String

    public init(adapter: String, target: String) {
        self.adapter = adapter
        self.target = target
    }
}

/// Configured destinations: an address (the CPIM `To`, e.g. `sip:ops@gw.example`)
/// maps to one or more targets (`https://...` webhook, `mailto:`, `irc:`,
/// `sip:` sessions...). Only configured addresses are reachable.
public struct RouteTable: Sendable {
    /// Normalised address → targets.
    public private(set) var routes: [String: [RouteTarget]] = [:]

    public init() {}

    /// The table of `routes` (address → targets), checked against `adapters`.
    public static func build(_ routes: [String: [String]], adapters: AdapterRegistry) throws(RouteError) -> RouteTable {
        var table = RouteTable()
        for (address, targets) in routes.sorted(by: { $0.key < $1.key }) {
            try table.add(address: address, targets: targets, adapters: adapters)
        }
        return table
    }

    /// Adds a route; every target must have an adapter that accepts it.
    public mutating func add(address: String, targets: [String], adapters: AdapterRegistry) throws(RouteError) {
        guard let key = Self.normalize(address) else { throw RouteError("route address \(address.debugDescription) is not a URI") }
        guard !targets.isEmpty else { throw RouteError("route \(address) has no targets") }
        var resolved: [RouteTarget] = []
        for t in targets {
            guard let adapter = adapters.adapter(for: t) else {
                throw RouteError("route \(address): no adapter delivers to \(t.debugDescription) (scheme \(uriScheme(t) ?? "none"))")
            }
            try adapter.validate(target: t)
            // MSRP peers are matched by address: keep them in the normal form.
            let stored = adapter.name == "msrp" ? (Self.normalize(t) ?? t) : t
            resolved.append(RouteTarget(adapter: adapter.name, target: stored))
        }
        routes[key] = resolved
    }

    /// The targets of `address`, or 403 naming it.
    public func resolve(_ address: String) throws(RouteError) -> [RouteTarget] {
        guard let key = Self.normalize(address), let targets = routes[key] else {
            throw RouteError("no route to \(address): only configured destinations are reachable")
        }
        return targets
    }

    public func contains(_ address: String) -> Bool { Self.normalize(address).map { routes[$0] != nil } ?? false }

    /// Addresses compare with scheme and host in lower case and without URI
    /// parameters or angle brackets: `<SIP:ops@GW.example;transport=tcp>` is
    /// `sip:ops@gw.example`. The user part keeps its case (RFC 3261 §19.1.4).
    public static func normalize(_ address: String) -> String? {
        // On the UTF-8 bytes: this runs several times for every message (routes,
        // rooms, sessions), and Character-level trimming and searching were 5 %
        // of the daemon's CPU under load.
        let u = address.utf8
        var start = u.startIndex
        var end = u.endIndex
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        while start < end, isSpace(u[start]) { start = u.index(after: start) }
        while end > start, isSpace(u[u.index(before: end)]) { end = u.index(before: end) }
        // Other white space (U+00A0...) at either end: the careful way.
        if start < end, u[start] >= 0x80 || u[u.index(before: end)] >= 0x80 { return normalizeSlowly(address) }
        if start < end, u[start] == UInt8(ascii: "<"), u[u.index(before: end)] == UInt8(ascii: ">"), u.distance(from: start, to: end) >= 2 {
            start = u.index(after: start)
            end = u.index(before: end)
        }
        guard let colon = u[start..<end].firstIndex(of: UInt8(ascii: ":")), colon > start,
              u[start..<colon].allSatisfy({ b in b < 0x80 && (isalnum(Int32(b)) != 0 || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")) })
        else { return nil }
        let scheme = String(address[start..<colon]).lowercased()
        var restEnd = end
        if ["sip", "sips", "im", "pres", "tel", "xmpp", "mailto"].contains(scheme),
           let semi = u[u.index(after: colon)..<end].firstIndex(of: UInt8(ascii: ";")) {
            restEnd = semi
        }
        let restStart = u.index(after: colon)
        guard restStart < restEnd else { return nil }
        if let at = u[restStart..<restEnd].lastIndex(of: UInt8(ascii: "@")) {
            return scheme + ":" + address[restStart...at] + address[u.index(after: at)..<restEnd].lowercased()
        }
        let rest = address[restStart..<restEnd]
        return scheme + ":" + (scheme == "https" || scheme == "http" ? String(rest) : rest.lowercased())
    }

    /// The same for an address with white space other than ASCII at its ends.
    private static func normalizeSlowly(_ address: String) -> String? {
        var a = Substring(address.trimmingCharacters(in: .whitespaces))
        if a.hasPrefix("<"), a.hasSuffix(">") { a = a.dropFirst().dropLast() }
        guard let scheme = uriScheme(String(a)), let colon = a.firstIndex(of: ":") else { return nil }
        var rest = a[a.index(after: colon)...]
        if ["sip", "sips", "im", "pres", "tel", "xmpp", "mailto"].contains(scheme), let semi = rest.firstIndex(of: ";") {
            rest = rest[..<semi]
        }
        guard !rest.isEmpty else { return nil }
        if let at = rest.lastIndex(of: "@") {
            return scheme + ":" + rest[...at] + rest[rest.index(after: at)...].lowercased()
        }
        return scheme + ":" + (scheme == "https" || scheme == "http" ? String(rest) : rest.lowercased())
    }
}

/// The routes in force, replaced whole by a configuration reload (SIGHUP):
/// each lookup reads one whole table, never half of an old and a new one.
final class LiveRoutes: Sendable {
    private let table: NIOLockedValueBox<RouteTable>

    init(_ table: RouteTable) { self.table = NIOLockedValueBox(table) }

    var current: RouteTable { table.withLockedValue { $0 } }

    func replace(with new: RouteTable) { table.withLockedValue { $0 = new } }

    func resolve(_ address: String) throws(RouteError) -> [RouteTarget] { try current.resolve(address) }

    func contains(_ address: String) -> Bool { current.contains(address) }
}
