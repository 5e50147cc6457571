import Foundation
import Logging
import NIOCore
import NIOSSL

/// Connections to one relay: at most `relay.maxConnections` open, idle ones
/// reused for the next mail (until they have been idle too long), callers
/// waiting in order when all are busy.
actor SMTPConnectionPool {
    private let relay: SMTPRelay
    private let group: any EventLoopGroup
    private let tls: NIOSSLContext?
    private let logger: Logger
    /// An idle connection older than this is closed rather than reused: servers
    /// drop idle clients after a few minutes.
    private let maxIdle: Duration
    private var idle: [(SMTPConnection, ContinuousClock.Instant)] = []
    private var open = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var closed = false

    init(relay: SMTPRelay, group: any EventLoopGroup, tls: NIOSSLContext?, logger: Logger, maxIdle: Duration = .seconds(60)) {
        self.relay = relay
        self.group = group
        self.tls = tls
        self.logger = logger
        self.maxIdle = maxIdle
    }

    /// A connection for one mail, and whether it was used before (then the
    /// caller starts with RSET, and may retry once on a fresh one if it broke).
    func acquire() async throws(SMTPError) -> (SMTPConnection, reused: Bool) {
        while true {
            if closed { throw SMTPError(.closed(stage: "shutdown")) }
            while let (c, since) = idle.popLast() {
                if c.isActive, ContinuousClock.now - since < maxIdle { return (c, true) }
                open -= 1
                Task { await c.quit() }
            }
            if open < relay.maxConnections {
                open += 1
                do {
                    let c = try await SMTPConnection.open(relay, group: group, tls: tls, logger: logger)
                    logger.debug("SMTP connection open", metadata: ["relay": "\(relay.name)", "tls": "\(c.tlsActive)"])
                    return (c, false)
                } catch {
                    open -= 1
                    wakeOne()
                    throw error
                }
            }
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    /// Gives a connection back: kept for reuse when it is still in step.
    func release(_ c: SMTPConnection) {
        if c.isActive, !closed {
            idle.append((c, ContinuousClock.now))
        } else {
            open -= 1
            c.close()
        }
        wakeOne()
    }

    private func wakeOne() {
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }

    /// QUITs the idle connections; those in use close when released.
    func shutdown() async {
        closed = true
        let all = idle.map(\.0)
        idle = []
        for c in all { await c.quit() }
        for w in waiters { w.resume() }
        waiters = []
    }
}
