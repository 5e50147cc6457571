import Admission
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// The inbound SMTP listener: where replies to the gateway's mails and their
/// bounces come in (behind the site's MX, or facing the internet). Connection
/// limits in all and per source address, accept back-off, STARTTLS when a
/// certificate is configured.
public final class SMTPServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// The name in the greeting, EHLO and Received fields.
        public var hostname: String
        public var limits: SMTPServerLimits
        public var connectionLimits: ConnectionLimits
        public var commandTimeout: TimeAmount
        public var tls: TLSConfiguration?
        public var requireTLS: Bool

        public init(host: String, port: Int, hostname: String, limits: SMTPServerLimits = SMTPServerLimits(),
                    connectionLimits: ConnectionLimits = ConnectionLimits(perListener: 256, perSource: 32),
                    commandTimeout: TimeAmount = .seconds(300), tls: TLSConfiguration? = nil, requireTLS: Bool = false) {
            self.host = host
            self.port = port
            self.hostname = hostname
            self.limits = limits
            self.connectionLimits = connectionLimits
            self.commandTimeout = commandTimeout
            self.tls = tls
            self.requireTLS = requireTLS
        }
    }

    public let channel: any Channel

    /// The port it listens on (the configured one, or the one picked for port 0).
    public var port: Int { channel.localAddress?.port ?? 0 }

    public static func start(_ configuration: Configuration, sink: any SMTPMailSink, group: any EventLoopGroup,
                             budget: DescriptorBudget? = nil, logger: Logger) async throws -> SMTPServer {
        let tls = try configuration.tls.map { try NIOSSLContext(configuration: $0) }
        let door = ListenerGuard(name: "smtp", limits: configuration.connectionLimits, budget: budget, logger: logger)
        let closeLog = KeyedLogThrottle()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { door.initializeServerChannel($0) }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try door.admit(channel)
                    let peer = channel.remoteAddress?.ipAddress ?? "unknown"
                    let session = SMTPServerSession(
                        hostname: configuration.hostname, limits: configuration.limits, tlsAvailable: tls != nil,
                        tlsRequired: configuration.requireTLS, peer: peer)
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: configuration.commandTimeout))
                    try channel.pipeline.syncOperations.addHandler(SMTPServerHandler(
                        session: session, sink: sink, tls: tls, commandTimeout: configuration.commandTimeout, closeLog: closeLog, logger: logger))
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        logger.info("SMTP listener up", metadata: ["address": "\(configuration.host):\(channel.localAddress?.port ?? 0)",
                                                   "starttls": "\(tls != nil)"])
        return SMTPServer(channel: channel)
    }

    init(channel: any Channel) {
        self.channel = channel
    }

    public func close() async {
        try? await channel.close()
    }
}
