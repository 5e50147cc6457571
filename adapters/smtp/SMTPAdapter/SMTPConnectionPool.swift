import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// Connections to one relay: at most `relay.maxConnections` open, idle ones
/// reused for the next mail (until they have been idle too long), callers
/// waiting in order when all are busy. A lock, not an actor: taking and giving
/// back an idle connection is a few instructions, and an actor made each of
/// them two thread hops per mail.
final class SMTPConnectionPool: Sendable {
    private let relay: SMTPRelay
    private let group: any EventLoopGroup
    private let tls: NIOSSLContext?
    private let logger: Logger
    /// An idle connection older than this is closed rather than reused: servers
    /// drop idle clients after a few minutes.
    private let maxIdle: Duration
    private let state = NIOLockedValueBox(State())

    private struct State {
        var idle: [(SMTPConnection, ContinuousClock.Instant)] = []
        var open = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        var closed = false
    }

    private enum Step {
        case reuse(SMTPConnection), open, wait, closed
    }

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
            let (step, stale) = state.withLockedValue { st -> (Step, [SMTPConnection]) in
                if st.closed { return (.closed, []) }
                var stale: [SMTPConnection] = []
                while let (c, since) = st.idle.popLast() {
                    if c.isActive, ContinuousClock.now - since < maxIdle { return (.reuse(c), stale) }
                    st.open -= 1
                    stale.append(c)
                }
                if st.open < relay.maxConnections {
                    st.open += 1
                    return (.open, stale)
                }
                return (.wait, stale)
            }
            for c in stale { Task { await c.quit() } }
            switch step {
            case .closed:
                throw SMTPError(.closed(stage: "shutdown"))
            case .reuse(let c):
                return (c, true)
            case .open:
                do {
                    let c = try await SMTPConnection.open(relay, group: group, tls: tls, logger: logger)
                    logger.debug("SMTP connection open", metadata: ["relay": "\(relay.name)", "tls": "\(c.tlsActive)"])
                    return (c, false)
                } catch {
                    state.withLockedValue { $0.open -= 1 }
                    wakeOne()
                    throw error
                }
            case .wait:
                await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                    // What changed since the look above wakes it at once (no lost wake-up).
                    let now = state.withLockedValue { st -> Bool in
                        if st.closed || !st.idle.isEmpty || st.open < relay.maxConnections { return true }
                        st.waiters.append(waiter)
                        return false
                    }
                    if now { waiter.resume() }
                }
            }
        }
    }

    /// Gives a connection back: kept for reuse when it is still in step.
    func release(_ c: SMTPConnection) {
        let keep = state.withLockedValue { st -> Bool in
            if c.isActive, !st.closed {
                st.idle.append((c, ContinuousClock.now))
                return true
            }
            st.open -= 1
            return false
        }
        if !keep { c.close() }
        wakeOne()
    }

    private func wakeOne() {
        state.withLockedValue { st in st.waiters.isEmpty ? nil : st.waiters.removeFirst() }?.resume()
    }

    /// QUITs the idle connections; those in use close when released.
    func shutdown() async {
        let (idle, waiters) = state.withLockedValue { st in
            st.closed = true
            defer { (st.idle, st.waiters) = ([], []) }
            return (st.idle.map(\.0), st.waiters)
        }
        for c in idle { await c.quit() }
        for w in waiters { w.resume() }
    }
}
