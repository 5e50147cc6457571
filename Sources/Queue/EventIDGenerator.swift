import Events
import Foundation

/// Makes `EventID`s: 42 bits of milliseconds since 2020-01-01, 10 bits of node,
/// 12 bits of sequence within the millisecond. Monotonic on one node even if the
/// clock steps back (it then borrows from the last millisecond used).
final class EventIDGenerator: @unchecked Sendable {
    private let lock = NSLock()
    private let node: Int64
    private var lastMillis: Int64 = 0
    private var sequence: Int64 = 0
    static let epochMillis: Int64 = 1_577_836_800_000

    init(node: Int) {
        self.node = Int64(node & 0x3FF)
    }

    /// The smallest id any node makes at `date` or later: the ids below it
    /// are of events created before `date`.
    static func firstID(atOrAfter date: Date) -> EventID {
        EventID(rawValue: max(0, Int64(date.timeIntervalSince1970 * 1000) - epochMillis) << 22)
    }

    func next(now: Date = Date()) -> EventID {
        lock.lock()
        defer { lock.unlock() }
        var millis = max(Int64(now.timeIntervalSince1970 * 1000) - Self.epochMillis, lastMillis)
        if millis == lastMillis {
            sequence += 1
            if sequence > 0xFFF {
                millis += 1
                sequence = 0
            }
        } else {
            sequence = 0
        }
        lastMillis = millis
        return EventID(rawValue: millis << 22 | node << 12 | sequence)
    }
}
