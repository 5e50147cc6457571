import Queue

/// A delivery network (webhooks, email, IRC, MSRP sessions...). The dispatcher
/// leases the adapter's due events from the queue and hands them over one by
/// one; what `deliver` returns is recorded in the queue, which also works out
/// what is then owed to the sender (REPORTs, IMDNs).
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

/// Adapters by name and by URI scheme.
public struct AdapterRegistry: Sendable {
    public private(set) var adapters: [String: any Adapter] = [:]
    private var byScheme: [String: String] = [:]

    public init(_ adapters: [any Adapter] = []) {
        for a in adapters { register(a) }
    }

    public mutating func register(_ adapter: any Adapter) {
        adapters[adapter.name] = adapter
        for s in adapter.schemes { byScheme[s.lowercased()] = adapter.name }
    }

    public func adapter(named name: String) -> (any Adapter)? { adapters[name] }

    /// The adapter that delivers to `target`, by its URI scheme.
    public func adapter(for target: String) -> (any Adapter)? {
        guard let scheme = uriScheme(target) else { return nil }
        return byScheme[scheme].flatMap { adapters[$0] }
    }
}

/// The scheme of a URI, lower-cased (`sip` for `sip:ops@gw.example`).
func uriScheme(_ uri: String) -> String? {
    guard let colon = uri.firstIndex(of: ":"), colon > uri.startIndex else { return nil }
    let scheme = uri[..<colon]
    guard scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == ".") }) else { return nil }
    return scheme.lowercased()
}
