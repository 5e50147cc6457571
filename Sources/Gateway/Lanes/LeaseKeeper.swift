import Events
import NIOConcurrencyHelpers
import Queue

/// Keeps the leases of what one worker holds (events in flight and buffered)
/// alive: one loop per worker extends those leased more than half a lease ago.
/// (A sleeping task per delivery did the same at the price of two tasks and a
/// timer for every message.)
final class LeaseKeeper: Sendable {
    private let held = NIOLockedValueBox<[EventID: ContinuousClock.Instant]>([:])

    var isEmpty: Bool { held.withLockedValue { $0.isEmpty } }

    func hold(_ ids: some Sequence<EventID>) {
        let now = ContinuousClock.now
        held.withLockedValue { for id in ids { $0[id] = now } }
    }

    func release(_ id: EventID) {
        held.withLockedValue { _ = $0.removeValue(forKey: id) }
    }

    /// Extends what is due for it every quarter lease (at most every 500 ms),
    /// until `done()` and nothing is held.
    func run(queue: any EventQueue, owner: String, duration: Duration, done: @Sendable () -> Bool) async {
        while !(done() && isEmpty), !Task.isCancelled {
            try? await Task.sleep(for: min(duration / 4, .milliseconds(500)))
            await extendDue(queue: queue, owner: owner, duration: duration, now: .now)
        }
    }

    /// One round: extends the leases taken or extended at least half a lease
    /// before `now`. A lease found lost is let go; one that could not be
    /// extended (the database busy) is tried again next round.
    func extendDue(queue: any EventQueue, owner: String, duration: Duration, now: ContinuousClock.Instant) async {
        let due: [(EventID, ContinuousClock.Instant)] = held.withLockedValue { held in
            let old = held.filter { now - $0.value >= duration / 2 }.map { ($0.key, $0.value) }
            for (id, _) in old { held[id] = now }
            return old
        }
        for (id, before) in due {
            do {
                try await queue.extendLease(id, owner: owner, by: duration)
            } catch where error.kind == .leaseLost {
                release(id)
            } catch {
                held.withLockedValue { if $0[id] != nil { $0[id] = before } }
            }
        }
    }
}
