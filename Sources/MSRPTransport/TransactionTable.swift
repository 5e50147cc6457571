import NIOCore

/// Transactions we sent and still expect a response to, with their deadlines.
///
/// Every transaction gets the same timeout from the moment its last byte is
/// written (§7.1.1), so deadlines arrive in the order transactions were added: a
/// FIFO of deadlines replaces a timer per transaction, and expiry is amortised O(1).
struct TransactionTable<Pending> {
    private var pending: [String: Pending] = [:]
    private var deadlines = CircularBuffer<(tid: String, deadline: NIODeadline)>()

    var count: Int { pending.count }
    var isEmpty: Bool { pending.isEmpty }

    mutating func add(_ tid: String, _ value: Pending, deadline: NIODeadline?) {
        pending[tid] = value
        if let deadline { deadlines.append((tid, deadline)) }
    }

    /// Starts the timer of a transaction added without one; false if it has
    /// already been answered.
    @discardableResult
    mutating func arm(_ tid: String, deadline: NIODeadline) -> Bool {
        guard pending[tid] != nil else { return false }
        deadlines.append((tid, deadline))
        return true
    }

    /// The transaction a response is for; nil for an unknown or repeated response
    /// (a relay such as Kamailio may send two 200s for one SEND).
    mutating func resolve(_ tid: String) -> Pending? {
        let value = pending.removeValue(forKey: tid)
        pruneFront()
        return value
    }

    /// Drops answered transactions from the front of the deadline queue. Responses
    /// mostly come in order, so the queue stays about as long as what is in flight.
    private mutating func pruneFront() {
        while let first = deadlines.first, pending[first.tid] == nil { deadlines.removeFirst() }
    }

    /// Removes and returns the transactions whose deadline is not after `now`.
    mutating func expire(now: NIODeadline) -> [(String, Pending)] {
        var out: [(String, Pending)] = []
        while let first = deadlines.first, first.deadline <= now {
            deadlines.removeFirst()
            if let p = pending.removeValue(forKey: first.tid) { out.append((first.tid, p)) }
        }
        pruneFront()
        return out
    }

    /// The earliest deadline still pending, if any.
    var nextDeadline: NIODeadline? { deadlines.first?.deadline }

    /// Entries in the deadline queue (answered ones not yet pruned included).
    var queuedDeadlines: Int { deadlines.count }

    mutating func removeAll() -> [(String, Pending)] {
        defer {
            pending = [:]
            deadlines.removeAll()
        }
        return pending.map { ($0.key, $0.value) }
    }
}
