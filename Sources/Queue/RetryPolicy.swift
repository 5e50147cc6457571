import Foundation

/// When to try again: a schedule of delays, each with full jitter (a random
/// delay between 0 and the scheduled one, so that retries after an outage do
/// not arrive all at once), a maximum number of attempts and a maximum age.
public struct RetryPolicy: Sendable, Hashable {
    /// Delay before attempt n+1 after attempt n failed (the last one repeats).
    public var schedule: [Duration]
    public var maxAttempts: Int
    /// An event older than this is not tried again (TTL).
    public var maxAge: Duration
    /// Jitter the delays (off in tests that need exact times).
    public var jitter: Bool

    public init(schedule: [Duration], maxAttempts: Int, maxAge: Duration, jitter: Bool = true) {
        self.schedule = schedule
        self.maxAttempts = maxAttempts
        self.maxAge = maxAge
        self.jitter = jitter
    }

    /// The gateway's default: 0 s, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
    public static let standard = RetryPolicy(
        schedule: [.seconds(0), .seconds(5), .seconds(300), .seconds(1800), .seconds(7200), .seconds(18000),
                   .seconds(36000), .seconds(50400), .seconds(72000), .seconds(86400)],
        maxAttempts: 11, maxAge: .seconds(3 * 86400))

    public enum Decision: Sendable, Hashable {
        case retry(at: Date)
        /// No more attempts: retries spent or too old.
        case giveUp(reason: String)
    }

    /// After attempt `attempts` (1 = the first) failed at `now`.
    public func decide<R: RandomNumberGenerator>(
        attempts: Int, createdAt: Date, now: Date, requested: Duration?, using rng: inout R
    ) -> Decision {
        if attempts >= maxAttempts { return .giveUp(reason: "\(attempts) attempts spent") }
        if now.timeIntervalSince(createdAt) >= maxAge.seconds { return .giveUp(reason: "older than \(maxAge)") }
        var delay = requested ?? schedule[min(max(attempts - 1, 0), schedule.count - 1)]
        if requested == nil, jitter, delay > .zero {
            delay = .nanoseconds(Int64.random(in: 0...delay.nanoseconds, using: &rng))
        }
        let at = now.addingTimeInterval(delay.seconds)
        if at.timeIntervalSince(createdAt) >= maxAge.seconds { return .giveUp(reason: "would pass its maximum age") }
        return .retry(at: at)
    }

    public func decide(attempts: Int, createdAt: Date, now: Date, requested: Duration?) -> Decision {
        var rng = SystemRandomNumberGenerator()
        return decide(attempts: attempts, createdAt: createdAt, now: now, requested: requested, using: &rng)
    }
}
