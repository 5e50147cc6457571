import Foundation

/// One endpoint's circuit breaker, as a value (time is given, nothing runs).
///
/// Closed: deliveries go. After `failureThreshold` consecutive failed attempts
/// it opens: nothing goes to the endpoint until the back-off has passed; then
/// one delivery goes as a probe (half-open). The probe's success closes it; its
/// failure opens it again for twice the back-off (up to the maximum). Events
/// that wait meanwhile spend no attempts: the dispatcher records them as not
/// ready.
struct CircuitBreaker: Sendable, Hashable {
    struct Settings: Sendable, Hashable {
        /// Consecutive failed attempts that open the circuit.
        var failureThreshold: Int
        /// The first back-off; each failed probe doubles it.
        var minimumBackoff: Duration
        var maximumBackoff: Duration

        init(failureThreshold: Int = 5, minimumBackoff: Duration = .seconds(2), maximumBackoff: Duration = .seconds(60)) {
            self.failureThreshold = max(1, failureThreshold)
            self.minimumBackoff = max(minimumBackoff, .milliseconds(1))
            self.maximumBackoff = max(maximumBackoff, self.minimumBackoff)
        }
    }

    /// How an attempt ended, as far as the endpoint's health goes.
    enum Result: Sendable, Hashable {
        /// The endpoint answered (whatever it said about the event).
        case answered
        /// It could not be reached or failed to answer (refused, timed out, 5xx).
        case failed
        /// Says nothing about the endpoint (its recipient is not online yet).
        case neutral
    }

    enum State: Sendable, Hashable {
        case closed(consecutiveFailures: Int)
        /// Nothing goes until `until`; then one probe.
        case open(until: Date)
        /// The probe is in flight.
        case probing
    }

    /// What may go now.
    enum Permission: Sendable, Hashable {
        case deliver
        /// Deliver this one as the probe (the breaker is now `probing`).
        case probe
        /// Nothing goes before `until` (an estimate while a probe is out).
        case wait(until: Date)
    }

    /// What a recorded result changed.
    enum Transition: Sendable, Hashable {
        case none
        case opened(until: Date)
        case closed
    }

    let settings: Settings
    private(set) var state: State = .closed(consecutiveFailures: 0)
    /// The back-off of the next opening.
    private(set) var backoff: Duration

    init(_ settings: Settings) {
        self.settings = settings
        self.backoff = settings.minimumBackoff
    }

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    mutating func permission(now: Date) -> Permission {
        switch state {
        case .closed:
            return .deliver
        case .open(let until):
            guard now >= until else { return .wait(until: until) }
            state = .probing
            return .probe
        case .probing:
            return .wait(until: now.addingTimeInterval(backoff.seconds))
        }
    }

    mutating func record(_ result: Result, now: Date) -> Transition {
        switch (state, result) {
        case (.closed, .answered):
            state = .closed(consecutiveFailures: 0)
            return .none
        case (.closed(let n), .failed):
            guard n + 1 >= settings.failureThreshold else {
                state = .closed(consecutiveFailures: n + 1)
                return .none
            }
            return open(now: now)
        case (.probing, .answered):
            state = .closed(consecutiveFailures: 0)
            backoff = settings.minimumBackoff
            return .closed
        case (.probing, .failed):
            backoff = min(backoff * 2, settings.maximumBackoff)
            return open(now: now)
        case (.probing, .neutral):
            // The probe proved nothing: the next delivery probes again.
            state = .open(until: now)
            return .none
        case (.closed, .neutral), (.open, _):
            // An attempt that started before the circuit opened: it already counted.
            return .none
        }
    }

    private mutating func open(now: Date) -> Transition {
        let until = now.addingTimeInterval(backoff.seconds)
        state = .open(until: until)
        return .opened(until: until)
    }
}
