import NIOConcurrencyHelpers

/// Keeps a batch adapter's batches to one endpoint in the order they were
/// started when several are in flight (`BatchAdapter.batchesInFlight`): each
/// batch's task starts sending only once the batch before it has sent
/// (`BatchAdapter.deliver(batch:sent:)`), and then waits for its outcomes
/// beside it. Tasks start in no particular order; the turns are taken in the
/// worker's order, before the tasks are made.
final class SendOrder: Sendable {
    /// The last turn taken for each endpoint whose batch has not yet sent.
    private let last = NIOLockedValueBox<[String: Turn]>([:])

    /// One batch's place: `previous` must have sent before it sends.
    struct Place: Sendable {
        let previous: Turn?
        let mine: Turn
    }

    /// The next place for a batch to `endpoint`.
    func take(_ endpoint: String) -> Place {
        let mine = Turn()
        let previous = last.withLockedValue { last in
            defer { last[endpoint] = mine }
            return last[endpoint]
        }
        mine.whenSent { [weak self] in self?.forget(endpoint, mine) }
        return Place(previous: previous, mine: mine)
    }

    /// Endpoints with a batch not yet sent (for tests: the table does not grow).
    var pending: Int { last.withLockedValue { $0.count } }

    private func forget(_ endpoint: String, _ turn: Turn) {
        last.withLockedValue { last in
            if last[endpoint] === turn { last[endpoint] = nil }
        }
    }

    /// Opens once, from any thread; waiters resume then (or at once if open).
    final class Turn: Sendable {
        private struct State {
            var sent = false
            var waiters: [CheckedContinuation<Void, Never>] = []
            var callbacks: [@Sendable () -> Void] = []
        }
        private let state = NIOLockedValueBox(State())

        /// The batch has sent (or will not: it ended). Harmless twice.
        func sent() {
            let (waiters, callbacks) = state.withLockedValue { s -> ([CheckedContinuation<Void, Never>], [@Sendable () -> Void]) in
                guard !s.sent else { return ([], []) }
                s.sent = true
                defer { s.waiters = []; s.callbacks = [] }
                return (s.waiters, s.callbacks)
            }
            for w in waiters { w.resume() }
            for c in callbacks { c() }
        }

        /// Returns once `sent()` was called.
        func wait() async {
            await withCheckedContinuation { (k: CheckedContinuation<Void, Never>) in
                let now = state.withLockedValue { s in
                    if !s.sent { s.waiters.append(k) }
                    return s.sent
                }
                if now { k.resume() }
            }
        }

        fileprivate func whenSent(_ callback: @escaping @Sendable () -> Void) {
            let now = state.withLockedValue { s in
                if !s.sent { s.callbacks.append(callback) }
                return s.sent
            }
            if now { callback() }
        }
    }
}
