import Foundation

/// Where a webhook URL points, parsed once per configured endpoint: what a
/// connection needs (scheme, host, port) and what each request needs (the
/// request target and the Host header).
struct WebhookTarget: Sendable, Hashable {
    var origin: WebhookOrigin
    /// Path and query, `/` when the URL has none.
    var requestTarget: String
    /// The Host header: the host, with the port when it is not the scheme's default.
    var hostHeader: String

    init?(url: String, caFile: String?) {
        guard let u = URLComponents(string: url), let scheme = u.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = u.host, !host.isEmpty
        else { return nil }
        let tls = scheme == "https"
        let port = u.port ?? (tls ? 443 : 80)
        // URLComponents gives an IPv6 literal without its brackets in `host`
        // (some versions keep them): the socket wants it bare, the header bracketed.
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        origin = WebhookOrigin(tls: tls, host: bare, port: port, caFile: caFile)
        let named = bare.contains(":") ? "[\(bare)]" : bare
        hostHeader = port == (tls ? 443 : 80) ? named : "\(named):\(port)"
        let path = u.percentEncodedPath.isEmpty ? "/" : u.percentEncodedPath
        requestTarget = u.percentEncodedQuery.map { path + "?" + $0 } ?? path
    }
}

/// The connections a request may reuse: same scheme, host, port and trust.
struct WebhookOrigin: Sendable, Hashable, CustomStringConvertible {
    var tls: Bool
    var host: String
    var port: Int
    /// A private CA this origin's certificate is checked against (nil: the system's).
    var caFile: String?

    var description: String { "\(tls ? "https" : "http")://\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    /// The name sent in TLS SNI and checked in the certificate; nil for an IP
    /// address (SNI cannot carry one; the certificate is checked against the address).
    var serverName: String? {
        host.contains(":") || (host.split(separator: ".").count == 4 && host.split(separator: ".").allSatisfy { UInt8($0) != nil }) ? nil : host
    }
}
