import NIOCore
import XMPPWire

/// An external component's connection to an XMPP server (XEP-0114).
public struct XMPPComponentConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// The component's address (`msrp.example.org`): ours on the XMPP network.
    public var domain: String
    public var secret: String
    /// The server's own domain, pinged for liveness and as the proof that it
    /// took what we wrote before (by default the component's domain without its
    /// first label: `example.org` for `msrp.example.org`).
    public var serverDomain: String
    /// For the TCP connection, and again for the handshake after it.
    public var connectTimeout: TimeAmount
    /// A ping of ours when the server has said nothing this long; no answer
    /// within `pingTimeout` ends the connection.
    public var pingInterval: TimeAmount
    public var pingTimeout: TimeAmount
    public var limits: XMPPStreamParser.Limits
    /// Between reconnects, doubling with jitter.
    public var reconnect: ClosedRange<Duration>

    public init(
        host: String, port: Int, domain: String, secret: String, serverDomain: String? = nil, connectTimeout: TimeAmount = .seconds(5),
        pingInterval: TimeAmount = .seconds(60), pingTimeout: TimeAmount = .seconds(20), limits: XMPPStreamParser.Limits = .init(),
        reconnect: ClosedRange<Duration> = .seconds(1)...(.seconds(60))
    ) {
        self.host = host
        self.port = port
        self.domain = domain.lowercased()
        self.secret = secret
        self.serverDomain = serverDomain ?? Self.parent(of: domain.lowercased())
        self.connectTimeout = connectTimeout
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.limits = limits
        self.reconnect = reconnect
    }

    static func parent(of domain: String) -> String {
        guard let dot = domain.firstIndex(of: "."), domain.index(after: dot) < domain.endIndex else { return domain }
        return String(domain[domain.index(after: dot)...])
    }
}
