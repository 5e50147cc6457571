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
        let mine = Turn(endpoint: endpoint, order: self)
        let previous = last.withLockedValue { last in
            defer { last[endpoint] = mine }
            return last[endpoint]
        }
        return Place(previous: previous, mine: mine)
    }

    /// Endpoints with a batch not yet sent (for tests: the table does not grow).
    var pending: Int { last.withLockedValue { $0.count } }

    /// A turn that sent is no longer waited for: the endpoint's entry goes
    /// unless a later turn replaced it.
    fileprivate func forget(_ turn: Turn) {
        last.withLockedValue { last in
            if last[turn.endpoint] === turn { last[turn.endpoint] = nil }
        }
    }

    /// Opens once, from any thread; waiters resume then (or at once if open).
    final class Turn: Sendable {
        fileprivate let endpoint: String
        private weak let order: SendOrder?
        private struct State {
            var sent = false
            var waiters: [CheckedContinuation<Void, Never>] = []
        }
        private let state = NIOLockedValueBox(State())

        fileprivate init(endpoint: String, order: SendOrder) {
            self.endpoint = endpoint
            self.order = order
        }

        /// The batch has sent (or will not: it ended). Harmless twice.
        func sent() {
            let waiters: [CheckedContinuation<Void, Never>]? = state.withLockedValue { s in
                guard !s.sent else { return nil }
                s.sent = true
                defer { s.waiters = [] }
                return s.waiters
            }
            guard let waiters else { return }
            order?.forget(self)
            for w in waiters { w.resume() }
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
    }
}
