import NIOConcurrencyHelpers

/// Wakes one waiting worker early: the ingress signals when it enqueued work
/// for an adapter, a delivery when it freed a slot. A signal with nobody waiting
/// is kept for the next wait, so none is lost.
final class WakeSignal: Sendable {
    private struct State {
        var signaled = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = NIOLockedValueBox(State())

    func signal() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLockedValue { s in
            guard let w = s.waiter else {
                s.signaled = true
                return nil
            }
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    /// Returns when signalled, after `timeout`, or when the task is cancelled.
    func wait(timeout: Duration) async {
        if state.withLockedValue({ s in defer { s.signaled = false }; return s.signaled }) { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: timeout) }
            group.addTask { await self.waitForSignal() }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForSignal() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                // Cancellation is checked under the lock: a cancel that came first
                // is seen here, one that comes later finds the waiter to resume.
                let now = state.withLockedValue { s -> Bool in
                    if s.signaled || Task.isCancelled {
                        s.signaled = false
                        return true
                    }
                    s.waiter = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            let w: CheckedContinuation<Void, Never>? = state.withLockedValue { s in
                defer { s.waiter = nil }
                return s.waiter
            }
            w?.resume()
        }
    }
}
