import NIOCore

/// A rate and a burst: `rate` a second on average, up to `burst` at once.
public struct RateLimit: Sendable, Equatable {
    public var rate: Double
    public var burst: Double

    public init(rate: Double, burst: Double) {
        self.rate = max(rate, 0.001)
        self.burst = max(burst, 1)
    }
}

/// A token bucket (a value; its owner keeps it under a lock): full at first,
/// refilled at `limit.rate` a second up to `limit.burst`; each admitted request
/// takes one token.
public struct TokenBucket: Sendable {
    public let limit: RateLimit
    private var tokens: Double
    private var refilled: NIODeadline

    public init(_ limit: RateLimit, now: NIODeadline = .now()) {
        self.limit = limit
        self.tokens = limit.burst
        self.refilled = now
    }

    /// nil when admitted; otherwise how long until a token is there.
    public mutating func take(now: NIODeadline = .now()) -> TimeAmount? {
        let elapsed = Double((now - refilled).nanoseconds) / 1e9
        if elapsed > 0 {
            tokens = min(limit.burst, tokens + elapsed * limit.rate)
            refilled = now
        }
        guard tokens >= 1 else { return .nanoseconds(Int64(((1 - tokens) / limit.rate * 1e9).rounded(.up))) }
        tokens -= 1
        return nil
    }

    /// Full again: as good as no bucket (its owner may forget it).
    public func isFull(now: NIODeadline = .now()) -> Bool {
        tokens + Double((now - refilled).nanoseconds) / 1e9 * limit.rate >= limit.burst
    }
}

extension TimeAmount {
    /// Whole seconds, rounded up, at least 1: a `Retry-After` value (HTTP, SIP).
    public var retryAfterSeconds: Int {
        max(1, Int((Double(nanoseconds) / 1e9).rounded(.up)))
    }
}
