import Events
import Foundation

/// The store-and-forward queue. Everything the gateway owes someone later is an
/// event here; SQLite is one implementation (`SQLiteEventQueue`), and the shape
/// leaves room for others (PostgreSQL, for several gateways sharing one queue).
///
/// Contract: when `enqueue` returns, the events are durable (committed to disk
/// at the configured synchronous level); an enqueue that throws committed nothing.
public protocol EventQueue: Sendable {
    /// Adds events in one transaction; returns their ids in order. An event whose
    /// dedupe key is already stored is not added again: its existing id is returned.
    func enqueue(_ events: [NewEvent]) async throws(QueueError) -> [EventID]

    /// `enqueue`, saying of each event whether it is new or was already stored
    /// under its dedupe key (a sender repeating a message): the gateway owes a
    /// repeated message's sender its acknowledgements again.
    func enqueueNotingRepeats(_ events: [NewEvent]) async throws(QueueError) -> [Enqueued]

    /// `enqueueNotingRepeats`, storing each event given a claim (`claims[i]` for
    /// `events[i]`) already leased to the claim's owner when no event of its
    /// adapter is due before it (nothing waiting is overtaken): its `Enqueued`
    /// then carries the event as leased, for the caller to deliver at once, one
    /// write instead of a store and a lease. The others are stored as usual. A
    /// queue may claim none (the default: several nodes share it, and the lease
    /// is how they take turns).
    func enqueueNotingRepeats(_ events: [NewEvent], claims: [LeaseClaim?]) async throws(QueueError) -> [Enqueued]

    /// `enqueueNotingRepeats(_:claims:)`, told to `completion` (once, on any
    /// thread) instead of resuming a task: a caller on an event loop needs no
    /// task to wait in. The default runs the async call in a task; SQLite calls
    /// `completion` from its writer once the transaction is durable.
    func enqueueNotingRepeats(
        _ events: [NewEvent], claims: [LeaseClaim?], completion: @escaping @Sendable (Result<[Enqueued], QueueError>) -> Void)

    /// Leases up to `limit` due events of `adapter` to `owner` for `duration`,
    /// oldest due first, leaving out those for `excludingTargets` (endpoints that
    /// can take nothing more now: their events stay due, in order). An event
    /// whose lease expires (its worker crashed) becomes due again.
    func lease(adapter: String, owner: String, limit: Int, for duration: Duration, excludingTargets: [String]) async throws(QueueError) -> [QueuedEvent]

    /// Records the outcome of a leased event, and enqueues what is owed because
    /// of it (REPORTs, IMDNs) in the same transaction. Returns the new state.
    @discardableResult
    func complete(_ id: EventID, owner: String, outcome: DeliveryOutcome) async throws(QueueError) -> EventState

    /// `complete` for an event as its lease returned it (what the dispatcher
    /// calls, once per delivery): a queue may take what follow-ups need from it
    /// instead of reading the row again, and says which adapters it enqueued
    /// follow-ups for, so that only their workers are woken.
    @discardableResult
    func complete(leased event: QueuedEvent, owner: String, outcome: DeliveryOutcome) async throws(QueueError) -> Completion

    /// Records later news of a delivered event (a bounce): `.bounced` makes it
    /// `bounced` and enqueues what a failure owes (REPORTs, IMDNs) in the same
    /// transaction; `.delayed` only notes it. Returns the state the event was
    /// in (nil: no such event); only a `delivered` one takes the news (an
    /// already bounced one owes nothing more; a leased one has no outcome yet).
    @discardableResult
    func record(_ news: LaterNews, of id: EventID) async throws(QueueError) -> EventState?

    /// Gives a leased event back, not ready until `until` (its endpoint is busy
    /// or not answering): no attempt spent; its maximum age still applies.
    /// The time is absolute, so that events given back one after the other keep
    /// their order whatever the commit delays.
    @discardableResult
    func postpone(_ id: EventID, owner: String, until: Date, reason: String) async throws(QueueError) -> EventState

    /// Gives back every lease whose owner starts with `ownerPrefix`: the events are
    /// due again at once, and the interrupted attempt does not count. For a node
    /// that restarts (its previous run's leases) or stops.
    @discardableResult
    func releaseLeases(ownerPrefix: String) async throws(QueueError) -> Int

    /// Makes the queued events for these targets due now (their recipient just
    /// came online, their endpoint answers again), all with one time, so that
    /// they are leased in the order they were queued; returns how many.
    @discardableResult
    func makeDue(adapter: String, targets: [String]) async throws(QueueError) -> Int

    /// The targets of `adapter` with queued events not due before `date`: what
    /// an earlier run told to wait (for a retry, or for an open circuit).
    func waitingTargets(adapter: String, notDueBefore date: Date) async throws(QueueError) -> Set<String>

    /// How many events for `target` are still to be delivered (queued or leased):
    /// an outbound call hangs up when this reaches zero.
    func pendingCount(adapter: String, target: String) async throws(QueueError) -> Int

    /// Keeps a lease for `duration` more from now.
    func extendLease(_ id: EventID, owner: String, by duration: Duration) async throws(QueueError)

    func event(_ id: EventID) async throws(QueueError) -> QueuedEvent?
    func events(_ filter: EventFilter) async throws(QueueError) -> [QueuedEvent]
    func stats() async throws(QueueError) -> QueueStats

    /// Puts a failed or dead event back in the queue, due now, with fresh attempts.
    @discardableResult
    func replay(_ id: EventID) async throws(QueueError) -> Bool

    /// Deletes delivered (and bounced) events last updated before `date`; returns how many.
    @discardableResult
    func purge(deliveredBefore date: Date) async throws(QueueError) -> Int

    /// Set when a write fails for the storage's sake (disk full, read-only, I/O
    /// errors), cleared by the next enqueue that commits (only new rows prove the
    /// disk takes data: updates in place still commit on a full disk): what a
    /// health check reports, since reads may still work.
    var writeFailure: QueueWriteFailure? { get }

}

/// What recording an outcome did.
public struct Completion: Sendable, Hashable {
    public var state: EventState
    /// The adapters of the follow-ups (REPORTs, IMDNs) enqueued with it; nil
    /// when the queue does not say (any that may have some should look).
    public var followUpAdapters: Set<String>?

    public init(state: EventState, followUpAdapters: Set<String>?) {
        self.state = state
        self.followUpAdapters = followUpAdapters
    }
}

/// Since when, and why, the queue's writes fail.
public struct QueueWriteFailure: Sendable {
    public var since: Date
    public var error: QueueError
    public init(since: Date, error: QueueError) {
        self.since = since
        self.error = error
    }
}

extension EventQueue {
    public func enqueueNotingRepeats(_ events: [NewEvent], claims: [LeaseClaim?]) async throws(QueueError) -> [Enqueued] {
        try await enqueueNotingRepeats(events)
    }

    public func enqueueNotingRepeats(
        _ events: [NewEvent], claims: [LeaseClaim?], completion: @escaping @Sendable (Result<[Enqueued], QueueError>) -> Void
    ) {
        Task {
            do throws(QueueError) {
                completion(.success(try await enqueueNotingRepeats(events, claims: claims)))
            } catch {
                completion(.failure(error))
            }
        }
    }

    @discardableResult
    public func complete(leased event: QueuedEvent, owner: String, outcome: DeliveryOutcome) async throws(QueueError) -> Completion {
        Completion(state: try await complete(event.id, owner: owner, outcome: outcome), followUpAdapters: nil)
    }

    public func lease(adapter: String, owner: String, limit: Int, for duration: Duration) async throws(QueueError) -> [QueuedEvent] {
        try await lease(adapter: adapter, owner: owner, limit: limit, for: duration, excludingTargets: [])
    }

    /// Makes the queued events for `target` due now; returns how many.
    @discardableResult
    public func makeDue(adapter: String, target: String) async throws(QueueError) -> Int {
        try await makeDue(adapter: adapter, targets: [target])
    }
}

/// One event given to `enqueueNotingRepeats`: its id, and whether it was
/// already stored before this call.
public struct Enqueued: Sendable, Hashable {
    public var id: EventID
    public var wasStored: Bool
    /// The event as stored already leased (its claim was granted).
    public var leased: QueuedEvent?

    public init(id: EventID, wasStored: Bool, leased: QueuedEvent? = nil) {
        self.id = id
        self.wasStored = wasStored
        self.leased = leased
    }
}

/// Asks `enqueueNotingRepeats` to store an event already leased to `owner` for
/// `duration`: the caller (this node's dispatcher) has a free delivery slot for it.
public struct LeaseClaim: Sendable, Hashable {
    public var owner: String
    public var duration: Duration

    public init(owner: String, duration: Duration) {
        self.owner = owner
        self.duration = duration
    }
}

public struct EventFilter: Sendable, Hashable {
    public var state: EventState?
    public var adapter: String?
    public var kind: EventKind?
    public var sessionID: String?
    /// Only events with an id below this one (paging, newest first).
    public var before: EventID?
    public var limit: Int

    public init(state: EventState? = nil, adapter: String? = nil, kind: EventKind? = nil, sessionID: String? = nil,
                before: EventID? = nil, limit: Int = 100) {
        self.state = state
        self.adapter = adapter
        self.kind = kind
        self.sessionID = sessionID
        self.before = before
        self.limit = limit
    }
}

public struct QueueStats: Sendable, Hashable {
    public struct Key: Sendable, Hashable {
        public var adapter: String
        public var state: EventState
    }
    public var counts: [Key: Int]
    /// How long the longest-waiting due event has waited (nil when none is due).
    public var oldestDueAge: Duration?

    public func count(adapter: String? = nil, state: EventState? = nil) -> Int {
        counts.filter { (adapter == nil || $0.key.adapter == adapter) && (state == nil || $0.key.state == state) }
            .reduce(0) { $0 + $1.value }
    }
}

/// Why the queue could not do what was asked. Never a silently dropped event:
/// the caller learns, with the cause.
public struct QueueError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case diskFull = "disk full"
        case readOnly = "database is read-only"
        case corrupt = "database file is corrupt or not a database"
        case newerSchema = "database was written by a newer msrpgw"
        case cannotOpen = "cannot open database"
        /// The database server cannot be reached or did not answer in time.
        case unavailable = "database unavailable"
        case leaseLost = "lease lost"
        case notFound = "no such event"
        case busy = "database is locked"
        case io = "I/O error"
        case other = "database error"
    }
    public var kind: Kind
    public var detail: String

    /// The storage failed (as opposed to an operation refused: not found, lease lost).
    public var isStorageFailure: Bool { ![.leaseLost, .notFound, .busy].contains(kind) }

    public init(_ kind: Kind, _ detail: String = "") {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { detail.isEmpty ? kind.rawValue : "\(kind.rawValue): \(detail)" }
}
