import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// Connections to one webhook origin: at most `maxConnections` open, idle ones
/// reused for the next request (until idle too long), callers waiting in order
/// when all are busy. The same shape as the SMTP adapter's pool: a lock, no
/// actor (taking and giving back a connection is a few instructions).
final class WebhookConnectionPool: Sendable {
    let origin: WebhookOrigin
    private let group: any EventLoopGroup
    private let tls: NIOSSLContext?
    private let maxConnections: Int
    private let maxIdle: Duration
    private let state = NIOLockedValueBox(State())

    private struct State {
        var idle: [(WebhookHTTPConnection, ContinuousClock.Instant)] = []
        var open = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        var closed = false
    }

    private enum Step {
        case reuse(WebhookHTTPConnection), open, wait, closed
    }

    init(origin: WebhookOrigin, group: any EventLoopGroup, tls: NIOSSLContext?, maxConnections: Int, maxIdle: Duration) {
        self.origin = origin
        self.group = group
        self.tls = tls
        self.maxConnections = max(1, maxConnections)
        self.maxIdle = maxIdle
    }

    /// A connection for one request, and whether it carried one before (a
    /// reused connection the receiver closed meanwhile may be tried again on a
    /// fresh one).
    func acquire(connectTimeout: Duration) async throws(WebhookHTTPError) -> (WebhookHTTPConnection, reused: Bool) {
        while true {
            let (step, stale) = state.withLockedValue { st -> (Step, [WebhookHTTPConnection]) in
                if st.closed { return (.closed, []) }
                var stale: [WebhookHTTPConnection] = []
                while let (c, since) = st.idle.popLast() {
                    if c.isActive, ContinuousClock.now - since < maxIdle { return (.reuse(c), stale) }
                    st.open -= 1
                    stale.append(c)
                }
                if st.open < maxConnections {
                    st.open += 1
                    return (.open, stale)
                }
                return (.wait, stale)
            }
            for c in stale { c.close() }
            switch step {
            case .closed:
                throw .shutdown
            case .reuse(let c):
                return (c, true)
            case .open:
                do {
                    return (try await WebhookHTTPConnection.open(origin, group: group, tls: tls, connectTimeout: connectTimeout), false)
                } catch {
                    state.withLockedValue { $0.open -= 1 }
                    wakeOne()
                    throw error
                }
            case .wait:
                await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                    // What changed since the look above wakes it at once (no lost wake-up).
                    let now = state.withLockedValue { st -> Bool in
                        if st.closed || !st.idle.isEmpty || st.open < maxConnections { return true }
                        st.waiters.append(waiter)
                        return false
                    }
                    if now { waiter.resume() }
                }
            }
        }
    }

    /// Gives a connection back: kept for the next request when it may carry one.
    func release(_ c: WebhookHTTPConnection, reusable: Bool) {
        let keep = state.withLockedValue { st -> Bool in
            if reusable, c.isActive, !st.closed {
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

    /// Closes the idle connections; those in use close when given back.
    func shutdown() {
        let (idle, waiters) = state.withLockedValue { st in
            st.closed = true
            defer { (st.idle, st.waiters) = ([], []) }
            return (st.idle.map(\.0), st.waiters)
        }
        for c in idle { c.close() }
        for w in waiters { w.resume() }
    }
}
