import NIOConcurrencyHelpers

/// The deliveries of one worker that the ingress starts itself (events stored
/// already leased, `Dispatcher.claims`), outside the worker's task group: the
/// worker counts them, from the slot taken before the store to the recorded
/// outcome, and waits for them before it returns (its leases are then given
/// back by `Dispatcher.run`, so no slot taken may still start after that).
final class DirectDeliveries: Sendable {
    /// Slots taken and deliveries running.
    private let count = NIOLockedValueBox(0)
    private let changed = WakeSignal()

    /// A slot was taken for an event about to be stored.
    func reserved() {
        count.withLockedValue { $0 += 1 }
    }

    /// The slot's event was not stored leased, or will not start: it is done.
    func cancelled() {
        done()
    }

    /// Runs the slot's delivery as a task of its own; the slot ends with it.
    func start(_ delivery: @escaping @Sendable () async -> Void) {
        Task {
            await delivery()
            self.done()
        }
    }

    /// Returns once every slot has ended (or the waiting task is cancelled).
    func drained() async {
        while count.withLockedValue({ $0 }) > 0, !Task.isCancelled {
            await changed.wait(timeout: .milliseconds(100))
        }
    }

    private func done() {
        if count.withLockedValue({ $0 -= 1; return $0 == 0 }) { changed.signal() }
    }
}
