import Foundation

/// The first failure of a run of failures, and since when, cleared by the next
/// success: whether a store works now (the queue's writes, the gateway's body
/// files), for a health check.
public final class FailureRun<Failure: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var first: (since: Date, failure: Failure)?

    public init() {}

    public var current: (since: Date, failure: Failure)? { lock.withLock { first } }

    public func failed(_ failure: Failure) {
        lock.withLock { if first == nil { first = (Date(), failure) } }
    }

    public func succeeded() {
        lock.withLock { first = nil }
    }
}
