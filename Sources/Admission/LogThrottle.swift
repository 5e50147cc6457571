import NIOConcurrencyHelpers
import NIOCore

/// At most one log line per interval for a repeating condition (accept errors,
/// refused connections), saying how many were left out since the last one: a
/// flood must not turn into a flood of log lines.
public struct LogThrottle: Sendable {
    public let interval: TimeAmount
    private var lastLogged: NIODeadline?
    private var suppressed = 0

    public init(interval: TimeAmount = .seconds(10)) {
        self.interval = interval
    }

    /// Whether to log this occurrence now; if so, how many were not logged since.
    public mutating func admit(now: NIODeadline = .now()) -> (log: Bool, suppressed: Int) {
        if let last = lastLogged, now - last < interval {
            suppressed += 1
            return (false, 0)
        }
        defer { suppressed = 0 }
        lastLogged = now
        return (true, suppressed)
    }
}

/// `LogThrottle` for each of a few kinds of the same event (refusals by
/// reason), shared by the connections of a listener: one line per kind per
/// interval, with the count left out.
public final class KeyedLogThrottle: Sendable {
    private let state: NIOLockedValueBox<[String: LogThrottle]>
    private let interval: TimeAmount

    public init(interval: TimeAmount = .seconds(10)) {
        self.interval = interval
        state = NIOLockedValueBox([:])
    }

    /// Whether to log an event of `kind` now; if so, how many of its kind were
    /// not logged since. Kinds are a small fixed set (reasons, not addresses).
    public func admit(_ kind: String) -> (log: Bool, suppressed: Int) {
        state.withLockedValue { all in
            var throttle = all[kind] ?? LogThrottle(interval: interval)
            defer { all[kind] = throttle }
            return throttle.admit()
        }
    }
}
