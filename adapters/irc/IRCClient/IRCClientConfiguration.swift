import NIOCore

/// One connection to an IRC server, as the bridge needs it.
public struct IRCClientConfiguration: Sendable {
    public enum SASL: Sendable, Hashable {
        case none
        case plain(user: String, password: String)
        /// The TLS client certificate speaks for us (the server needs one configured).
        case external
    }

    public var host: String
    public var port: Int
    /// TLS with certificate verification, unless turned off (loudly, by the caller).
    public var tls: Bool
    public var verifyCertificate: Bool
    /// Extra trusted CA (PEM file) for the server's certificate.
    public var caFile: String?
    public var nick: String
    public var user: String
    public var realName: String
    /// Server password (PASS), if the server wants one.
    public var password: String?
    public var sasl: SASL
    /// IRCv3 capabilities asked for when offered.
    public var capabilities: [String]
    /// Flood control: a burst of lines, then `linesPerSecond`; 0 turns it off.
    public var burst: Int
    public var linesPerSecond: Double
    /// A PING of ours when the server has said nothing this long; no answer within
    /// `pingTimeout` ends the connection.
    public var pingInterval: TimeAmount
    public var pingTimeout: TimeAmount
    /// For the TCP (and TLS) connection, and again for the registration after it.
    public var connectTimeout: TimeAmount

    public init(
        host: String, port: Int, tls: Bool = true, verifyCertificate: Bool = true, caFile: String? = nil, nick: String,
        user: String? = nil, realName: String = "msrpgw bridge", password: String? = nil, sasl: SASL = .none,
        capabilities: [String] = IRCClientConfiguration.defaultCapabilities, burst: Int = 5, linesPerSecond: Double = 2,
        pingInterval: TimeAmount = .seconds(60), pingTimeout: TimeAmount = .seconds(30), connectTimeout: TimeAmount = .seconds(20)
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.verifyCertificate = verifyCertificate
        self.caFile = caFile
        self.nick = nick
        self.user = user ?? nick
        self.realName = realName
        self.password = password
        self.sasl = sasl
        self.capabilities = capabilities
        self.burst = burst
        self.linesPerSecond = linesPerSecond
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.connectTimeout = connectTimeout
    }

    public static let defaultCapabilities = [
        "server-time", "message-tags", "echo-message", "labeled-response", "batch", "draft/relaymsg", "multi-prefix",
    ]
}
