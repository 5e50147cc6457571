import Foundation

/// Whether the queue's writes work: the first failure of the current run of
/// failed writes, cleared by the next write that commits.
final class WriteHealth: @unchecked Sendable {
    private let lock = NSLock()
    private var current: QueueWriteFailure?

    var failure: QueueWriteFailure? { lock.withLock { current } }

    func succeeded() {
        lock.withLock { current = nil }
    }

    func failed(_ error: QueueError) {
        lock.withLock { if current == nil { current = QueueWriteFailure(since: Date(), error: error) } }
    }
}
