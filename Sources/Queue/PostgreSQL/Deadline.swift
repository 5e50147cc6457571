import NIOConcurrencyHelpers
import PostgresNIO

/// `body`, or `unavailable` after `timeout` (the server is down, or no
/// connection can be had): the caller hears in bounded time. `body` is then
/// cancelled: a transaction not yet committed never commits (see
/// `PostgresStore.transaction`); one whose COMMIT was already sent may still
/// land, and the caller, told it failed, repeats it, one event again by its
/// dedupe key.
func withDeadline<T: Sendable>(
    _ timeout: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T
) async throws(QueueError) -> T {
    let once = ResumeOnce<T>()
    // The timer goes when the work ends: at thousands of batches a second,
    // sleeping timers left behind would pile up by the ten thousand.
    let timer = NIOLockedValueBox<Task<Void, Never>?>(nil)
    do {
        return try await withCheckedThrowingContinuation { continuation in
            once.set(continuation)
            let work = Task {
                let result: Result<T, any Error>
                do { result = .success(try await body()) } catch { result = .failure(error) }
                if once.resume(with: result) { timer.withLockedValue { $0?.cancel() } }
            }
            timer.withLockedValue {
                // The work may have ended already: then no timer at all.
                guard !once.isResumed else { return }
                $0 = Task {
                    guard (try? await Task.sleep(for: timeout)) != nil else { return }
                    if once.resume(with: .failure(QueueError(.unavailable, "\(what): no answer from PostgreSQL in \(timeout)"))) {
                        work.cancel()
                    }
                }
            }
        }
    } catch {
        throw QueueError(from: error, context: what)
    }
}

extension QueueError {
    /// Any error of a PostgreSQL operation as a `QueueError`: PostgreSQL's own
    /// mapped to its cause, anything else (a connection that could not be had)
    /// as the database being unavailable.
    init(from error: any Error, context: String) {
        switch error {
        case let error as QueueError: self = error
        case let error as PSQLError: self.init(postgres: error, context: context)
        default: self.init(.unavailable, "\(context): \(error)")
        }
    }
}

/// A continuation resumed by the first of several racers.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let state = NIOLockedValueBox<CheckedContinuation<T, any Error>?>(nil)

    /// Set before any racer starts.
    func set(_ continuation: CheckedContinuation<T, any Error>) { state.withLockedValue { $0 = continuation } }

    /// After `set`: whether a racer has resumed it.
    var isResumed: Bool { state.withLockedValue { $0 == nil } }

    /// Resumes unless resumed already; says whether it did.
    @discardableResult
    func resume(with result: Result<T, any Error>) -> Bool {
        guard let continuation = state.withLockedValue({ state in defer { state = nil }; return state }) else { return false }
        continuation.resume(with: result)
        return true
    }
}
