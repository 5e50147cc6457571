import NIOConcurrencyHelpers

/// A connection a `ConnectionPool` keeps.
public protocol PooledConnection: Sendable {
    /// Whether it can still carry the next use.
    var isActive: Bool { get }
    /// Ends it at once (it broke, or may not be reused).
    func close()
    /// Ends it politely (idle too long, or the pool shuts down): an SMTP QUIT.
    func retire() async
}

extension PooledConnection {
    public func retire() async { close() }
}

/// Connections to one peer (an SMTP relay, a webhook origin): at most
/// `maxConnections` open, idle ones reused for the next use, callers waiting in
/// order when all are busy. A connection idle for `maxIdle` is retired, whether
/// or not another use comes (after a burst, a receiver would otherwise keep
/// dozens of our connections for as long as it lets them stay). A lock, not an
/// actor: taking and giving back an idle connection is a few instructions, and
/// an actor made each of them two thread hops per use.
public final class ConnectionPool<Connection: PooledConnection, Failure: Error>: Sendable {
    private let maxConnections: Int
    private let maxIdle: Duration
    /// What `acquire` throws once the pool is shut down.
    private let closedError: Failure
    private let state = NIOLockedValueBox(State())

    private struct State {
        var idle: [(Connection, ContinuousClock.Instant)] = []
        var open = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        var closed = false
        /// Retires idle connections as they age; runs while there are any.
        var sweeper: Task<Void, Never>?
    }

    private enum Step {
        case reuse(Connection), open, wait, closed
    }

    public init(maxConnections: Int, maxIdle: Duration = .seconds(60), closedError: Failure) {
        self.maxConnections = max(1, maxConnections)
        self.maxIdle = maxIdle
        self.closedError = closedError
    }

    /// A connection for one use, and whether it served before (a reused one the
    /// peer closed meanwhile may be tried again on a fresh one). `open` makes a
    /// new one when none is idle and fewer than the most are open.
    public func acquire(open: @Sendable () async throws(Failure) -> Connection) async throws(Failure) -> (Connection, reused: Bool) {
        while true {
            let (step, stale) = state.withLockedValue { st -> (Step, [Connection]) in
                if st.closed { return (.closed, []) }
                var stale: [Connection] = []
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
            for c in stale { Task { await c.retire() } }
            switch step {
            case .closed:
                throw closedError
            case .reuse(let c):
                return (c, true)
            case .open:
                do {
                    return (try await open(), false)
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

    /// Gives a connection back: kept for the next use when `reusable` and still active.
    public func release(_ c: Connection, reusable: Bool = true) {
        let keep = state.withLockedValue { st -> Bool in
            if reusable, c.isActive, !st.closed {
                st.idle.append((c, ContinuousClock.now))
                if st.sweeper == nil { st.sweeper = Task { await self.sweep() } }
                return true
            }
            st.open -= 1
            return false
        }
        if !keep { c.close() }
        wakeOne()
    }

    /// Every `maxIdle`, retires the connections idle that long; ends when none
    /// is idle (the next one given back starts it again) or at shutdown.
    private func sweep() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: maxIdle)
            let now = ContinuousClock.now
            let (old, more) = state.withLockedValue { st -> ([Connection], Bool) in
                // Oldest first: connections are given back at the end.
                let n = st.idle.prefix { now - $0.1 >= maxIdle }.count
                let old = st.idle.prefix(n).map(\.0)
                st.idle.removeFirst(n)
                st.open -= n
                if st.idle.isEmpty || st.closed { st.sweeper = nil }
                return (old, st.sweeper != nil)
            }
            for c in old { await c.retire() }
            if !old.isEmpty { wakeOne() }
            if !more { return }
        }
    }

    private func wakeOne() {
        state.withLockedValue { st in st.waiters.isEmpty ? nil : st.waiters.removeFirst() }?.resume()
    }

    /// Retires the idle connections; those in use close when given back.
    public func shutdown() async {
        let (idle, waiters) = state.withLockedValue { st in
            st.closed = true
            st.sweeper?.cancel()
            st.sweeper = nil
            defer { (st.idle, st.waiters) = ([], []) }
            return (st.idle.map(\.0), st.waiters)
        }
        for c in idle { await c.retire() }
        for w in waiters { w.resume() }
    }
}
