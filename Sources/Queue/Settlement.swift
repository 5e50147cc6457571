import Events
import Foundation

/// What recording an adapter's outcome does to a leased event: the decision
/// every backend makes the same way (the retry schedule, the maximum age, what
/// counts as final), apart from how it is written.
enum Settlement: Sendable, Hashable {
    case delivered(proof: String)
    /// Delivered to some recipients; a failure is owed for the others.
    case partial(proof: String, code: Int, reason: String)
    /// Queued again, due at `at`; the attempt counts.
    case retry(at: Date, reason: String)
    /// Queued again, due at `at`; the attempt it took is given back.
    case notReady(at: Date, reason: String)
    case failed(code: Int, reason: String)
    /// In the dead letter (retries spent, too old, or given up on purpose).
    case dead(code: Int, reason: String)

    /// - Parameters:
    ///   - attempts: the event's attempts, the one that just ended included.
    ///   - retryBase: when its retry clock started (queued, or replayed).
    ///   - readyAt: for a postponement, the absolute time it is due again.
    init(_ outcome: DeliveryOutcome, attempts: Int, retryBase: Date, now: Date, readyAt: Date?, policy: RetryPolicy) {
        switch outcome {
        case .delivered(let proof):
            self = .delivered(proof: proof)
        case .retry(let after, let reason):
            switch policy.decide(attempts: attempts, createdAt: retryBase, now: now, requested: after) {
            case .retry(let at): self = .retry(at: at, reason: reason)
            // Retries spent or too old: a timeout as far as the sender is concerned (408).
            case .giveUp(let why): self = .dead(code: 408, reason: "\(reason); \(why)")
            }
        case .partial(let proof, let code, let reason):
            self = .partial(proof: proof, code: code, reason: reason)
        case .notReady(let after, let reason):
            // Not an attempt: the target cannot take anything yet. Only its age
            // counts: a wait longer than the age left ends when the age does
            // (what it waits for may come sooner: a circuit that closes makes
            // its waiters due at once), and only then is it given up.
            let end = retryBase.addingTimeInterval(policy.maxAge.seconds)
            self = now >= end
                ? .dead(code: 408, reason: "\(reason); older than its maximum age")
                : .notReady(at: min(readyAt ?? now.addingTimeInterval(after.seconds), end), reason: reason)
        case .permanentFailure(let code, let reason):
            self = .failed(code: code, reason: reason)
        case .deadLetter(let code, let reason):
            self = .dead(code: code, reason: reason)
        }
    }

    var state: EventState {
        switch self {
        case .delivered, .partial: return .delivered
        case .retry, .notReady: return .queued
        case .failed: return .failed
        case .dead: return .dead
        }
    }

    /// How the delivery ended for good (what its sender is owed), nil while it
    /// is still to be tried.
    var final: FinalOutcome? {
        switch self {
        case .delivered(let proof): return .delivered(proof: proof)
        case .partial(let proof, let code, let reason): return .partial(proof: proof, code: code, reason: reason)
        case .retry, .notReady: return nil
        case .failed(let code, let reason), .dead(let code, let reason): return .failed(code: code, reason: reason)
        }
    }
}
