/// A delivery network (webhooks, email, IRC, MSRP sessions...). The dispatcher
/// leases the adapter's due events from the queue and hands them over one by
/// one; what `deliver` returns is recorded in the queue, and the follow-up
/// policy (the gateway's `Reporter`) works out what is then owed to the sender
/// (REPORTs, IMDNs). An adapter needs this module only: not the queue, not the
/// gateway.
public protocol Adapter: Sendable {
    /// The adapter's name in the queue (`webhook`, `msrp`, `smtp`...).
    var name: String { get }
    /// URI schemes of the targets it delivers to (`https`, `mailto`, `sip`...).
    var schemes: [String] { get }
    /// Most deliveries in flight at once.
    var concurrency: Int { get }

    /// Tries one delivery. Never throws: every failure is an outcome (retry later,
    /// permanent failure with an MSRP status code, dead letter).
    func deliver(_ event: QueuedEvent) async -> DeliveryOutcome

    /// Checks, at configuration time, that `target` is something this adapter
    /// can deliver to (a configured webhook endpoint, say). Throws with the reason.
    func validate(target: String) throws(RouteError)
}

/// An adapter that takes its due events a batch at a time, in lease order, and
/// proves them together: the IRC adapter writes a batch's lines back to back and
/// waits for all their echoes at once (one round trip per batch, not per event),
/// while the lines of one channel keep their order. One batch is in flight at a
/// time; `concurrency` is not used.
public protocol BatchAdapter: Adapter {
    /// The most events one batch holds.
    var batchSize: Int { get }
    /// One outcome per event, in the order of `batch`.
    func deliver(batch: [QueuedEvent]) async -> [DeliveryOutcome]
}

extension Adapter {
    public func validate(target: String) throws(RouteError) {}
}

