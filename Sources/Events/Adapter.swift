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

    /// The far end a target is delivered through (a webhook URL, an IRC network,
    /// an SMTP relay, an MSRP peer): the dispatcher's unit of concurrency and of
    /// the circuit breaker, so that one endpoint that is dead or slow costs only
    /// its own traffic. The target itself unless the adapter says otherwise.
    func endpoint(of target: String) -> String

    /// Most deliveries in flight to one endpoint (the dispatcher may give it
    /// less, a fair share, while other endpoints are busy).
    var endpointConcurrency: Int { get }

    /// Whether `outcome` counts against its endpoint's circuit breaker: it could
    /// not be reached or failed to answer. By default every `retry`; an adapter
    /// whose endpoint answers for a recipient that is not there (an IRC 401)
    /// says so here.
    func isEndpointFailure(_ outcome: DeliveryOutcome) -> Bool

    /// Tries one delivery. Never throws: every failure is an outcome (retry later,
    /// permanent failure with an MSRP status code, dead letter).
    func deliver(_ event: QueuedEvent) async -> DeliveryOutcome

    /// Checks, at configuration time, that `target` is something this adapter
    /// can deliver to (a configured webhook endpoint, say). Throws with the reason.
    func validate(target: String) throws(RouteError)

    /// Whether a delivery notification (an IMDN, `message/imdn+xml`) from an
    /// MSRP user may go straight to `address` without a route: a sender on this
    /// network who wrote to that user (an XMPP user, told by a chat marker).
    /// False by default: everything else needs a configured route.
    func takesNotifications(to address: String) -> Bool
}

/// An adapter that takes its due events a batch at a time, in lease order, and
/// proves them together: the IRC adapter writes a batch's lines back to back and
/// waits for all their echoes at once (one round trip per batch, not per event),
/// while the lines of one channel keep their order. One batch per endpoint is in
/// flight at a time; `concurrency` bounds the events leased, all endpoints
/// together.
public protocol BatchAdapter: Adapter {
    /// The most events one batch holds.
    var batchSize: Int { get }
    /// Batches in flight at once to one endpoint (1 by default: the next batch
    /// starts when the last one's outcomes are in). More for an adapter whose
    /// batch waits on the far side (XMPP's receipts): the next is sent meanwhile,
    /// behind it on the same connection.
    var batchesInFlight: Int { get }
    /// One outcome per event, in the order of `batch`.
    func deliver(batch: [QueuedEvent]) async -> [DeliveryOutcome]
    /// `deliver(batch:)`, calling `sent` once the batch is on its way (written to
    /// the connection, in order) and before waiting for what the far side says:
    /// with `batchesInFlight` above 1, the next batch to the endpoint is sent
    /// only then, so the order holds. Called at most once; the dispatcher also
    /// counts the batch as sent when this returns.
    func deliver(batch: [QueuedEvent], sent: @escaping @Sendable () -> Void) async -> [DeliveryOutcome]
}

extension BatchAdapter {
    public var batchesInFlight: Int { 1 }
    /// Sent when delivered: right for an adapter with one batch in flight.
    public func deliver(batch: [QueuedEvent], sent: @escaping @Sendable () -> Void) async -> [DeliveryOutcome] {
        await deliver(batch: batch)
    }
}

extension Adapter {
    public func validate(target: String) throws(RouteError) {}
    public func takesNotifications(to address: String) -> Bool { false }
    public func endpoint(of target: String) -> String { target }
    public var endpointConcurrency: Int { max(1, concurrency / 4) }
    public func isEndpointFailure(_ outcome: DeliveryOutcome) -> Bool {
        if case .retry = outcome { return true }
        return false
    }
}

