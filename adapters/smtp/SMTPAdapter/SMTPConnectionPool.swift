import ConnectionPool
import Logging
import NIOCore
import NIOSSL

/// Connections to one relay (`ConnectionPool`): at most `relay.maxConnections`
/// open, idle ones reused for the next mail (until idle for a minute: servers
/// drop idle clients after a few minutes), callers waiting in order when all
/// are busy.
final class SMTPConnectionPool: Sendable {
    private let relay: SMTPRelay
    private let group: any EventLoopGroup
    private let tls: NIOSSLContext?
    private let logger: Logger
    private let pool: ConnectionPool<SMTPConnection, SMTPError>

    init(relay: SMTPRelay, group: any EventLoopGroup, tls: NIOSSLContext?, logger: Logger, maxIdle: Duration = .seconds(60)) {
        self.relay = relay
        self.group = group
        self.tls = tls
        self.logger = logger
        pool = ConnectionPool(maxConnections: relay.maxConnections, maxIdle: maxIdle, closedError: SMTPError(.closed(stage: "shutdown")))
    }

    /// A connection for one mail, and whether it was used before (then the
    /// caller starts with RSET, and may retry once on a fresh one if it broke).
    func acquire() async throws(SMTPError) -> (SMTPConnection, reused: Bool) {
        try await pool.acquire { [relay, group, tls, logger] () throws(SMTPError) -> SMTPConnection in
            let c = try await SMTPConnection.open(relay, group: group, tls: tls, logger: logger)
            logger.debug("SMTP connection open", metadata: ["relay": "\(relay.name)", "tls": "\(c.tlsActive)"])
            return c
        }
    }

    /// Gives a connection back: kept for reuse when it is still in step.
    func release(_ c: SMTPConnection) { pool.release(c) }

    /// QUITs the idle connections; those in use close when released.
    func shutdown() async { await pool.shutdown() }
}

extension SMTPConnection: PooledConnection {
    func retire() async { await quit() }
}
