import Admission
import MSRP
import NIOCore
import NIOSSL

/// Settings of an MSRP endpoint. Plain values; the daemon fills them from its config.
public struct MSRPTransportConfiguration: Sendable {
    /// Host written into our URIs (what peers connect to).
    public var advertisedHost: String
    public var parserLimits: MSRPParserLimits
    public var assemblerLimits: ChunkAssemblerLimits
    /// Body bytes per outgoing chunk (interruptible beyond 2048).
    public var chunkSize: Int
    /// Body bytes written per turn before another message may interrupt.
    public var pieceSize: Int
    /// How long a sent transaction waits for its response (30 s in RFC 4975 §7.1.1).
    public var transactionTimeout: TimeAmount
    /// A connection with no session bound to it is closed after this long.
    public var idleTimeout: TimeAmount
    /// A connection a peer opened and that has not yet bound a session (nor used
    /// the relay role) is closed after this long: holding idle connections must
    /// cost a stranger more than it costs us.
    public var bindTimeout: TimeAmount
    /// Each listener's limits (all its connections, and from one source).
    public var connectionLimits: ConnectionLimits
    /// Connections all of the process's listeners may hold together, if shared.
    public var descriptorBudget: DescriptorBudget?
    /// Where connections others named may go; nil: anywhere.
    public var connectPolicy: ConnectPolicy?
    /// TLS for `msrps` listeners (server side).
    public var tlsServer: TLSConfiguration?
    /// TLS for `msrps` connections we open (client side).
    public var tlsClient: TLSConfiguration

    public init(
        advertisedHost: String = "127.0.0.1",
        parserLimits: MSRPParserLimits = MSRPParserLimits(),
        assemblerLimits: ChunkAssemblerLimits = ChunkAssemblerLimits(),
        chunkSize: Int = 64 * 1024,
        pieceSize: Int = 16 * 1024,
        transactionTimeout: TimeAmount = .seconds(30),
        idleTimeout: TimeAmount = .seconds(300),
        bindTimeout: TimeAmount = .seconds(30),
        connectionLimits: ConnectionLimits = ConnectionLimits(),
        descriptorBudget: DescriptorBudget? = nil,
        connectPolicy: ConnectPolicy? = nil,
        tlsServer: TLSConfiguration? = nil,
        tlsClient: TLSConfiguration = .makeClientConfiguration()
    ) {
        self.advertisedHost = advertisedHost
        self.parserLimits = parserLimits
        self.assemblerLimits = assemblerLimits
        self.chunkSize = chunkSize
        self.pieceSize = pieceSize
        self.transactionTimeout = transactionTimeout
        self.idleTimeout = idleTimeout
        self.bindTimeout = bindTimeout
        self.connectionLimits = connectionLimits
        self.descriptorBudget = descriptorBudget
        self.connectPolicy = connectPolicy
        self.tlsServer = tlsServer
        self.tlsClient = tlsClient
    }
}
