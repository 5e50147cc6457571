import Admission
import Events
import MSRP
import Queue

/// How the gateway behaves, as plain values; the daemon fills it from its
/// configuration file.
public struct GatewayConfiguration: Sendable {
    /// The gateway's own identity, the `From` of its system messages and IMDNs
    /// when no better one is known.
    public var identity: String
    /// Content types accepted from MSRP peers, `message/cpim` first.
    public var acceptTypes: [String]
    /// Types accepted inside CPIM.
    public var acceptWrappedTypes: [String]
    /// Largest message accepted (413 above it).
    public var maxMessageBytes: Int64
    /// Bodies up to this size are stored in the queue database; larger ones as
    /// files under `bodyDirectory`.
    public var inlineBodyLimit: Int
    public var bodyDirectory: String
    /// Where a session's messages go when they carry no CPIM `To` (plain text):
    /// a route address, unless the session was created with its own.
    public var defaultRoute: String?
    /// Dispatcher settings per adapter name; `defaultDispatch` for the others.
    public var dispatch: [String: DispatchSettings]
    public var defaultDispatch: DispatchSettings
    /// This node's id: leases are owned by `node-<id>/...`, so a restarted node
    /// takes back what it held before it died.
    public var node: Int
    /// One of several nodes sharing a queue: session ids name this node
    /// (`SessionAffinity`), so that what is owed on a session goes to it.
    public var clustered = false
    /// A session nobody connects to within this time is closed (an offer whose
    /// client went away must not hold a session forever).
    public var sessionBindTimeout: Duration = .seconds(60)
    /// Messages one session may send (a rate a second and a burst); beyond it a
    /// message is refused with 403. nil: no limit.
    public var sessionMessageRate: RateLimit?
    /// Messages one MSRP connection may carry, all its sessions together (a
    /// relay's connection carries many); beyond it 403. nil: no limit.
    public var connectionMessageRate: RateLimit?
    /// Chat rooms (RFC 7701) by address: sessions joined to one (their route)
    /// hear each other; the address may also be a route to outside targets (IRC).
    public var rooms: [String: ChatRoom] = [:]

    public init(
        identity: String = "sip:gateway@msrpgw.invalid",
        acceptTypes: [String] = ["message/cpim", "text/plain"],
        acceptWrappedTypes: [String] = ["text/plain", "text/html", "message/imdn+xml", "application/json"],
        maxMessageBytes: Int64 = 16 * 1024 * 1024, inlineBodyLimit: Int = 256 * 1024, bodyDirectory: String = "var/bodies",
        defaultRoute: String? = nil, dispatch: [String: DispatchSettings] = [:], defaultDispatch: DispatchSettings = DispatchSettings(),
        node: Int = 0
    ) {
        self.identity = identity
        self.acceptTypes = acceptTypes
        self.acceptWrappedTypes = acceptWrappedTypes
        self.maxMessageBytes = maxMessageBytes
        self.inlineBodyLimit = inlineBodyLimit
        self.bodyDirectory = bodyDirectory
        self.defaultRoute = defaultRoute
        self.dispatch = dispatch
        self.defaultDispatch = defaultDispatch
        self.node = node
    }

    public func dispatchSettings(for adapter: String) -> DispatchSettings { dispatch[adapter] ?? defaultDispatch }

    /// The lease owner prefix of this node.
    public var leaseOwnerPrefix: String { "node-\(node)/" }

    /// A new id for a session this node creates.
    public func newSessionID() -> String {
        let random = MSRPIdentifier.make(length: 20)
        return clustered ? SessionAffinity.sessionID(node: node, random: random) : random
    }
}

/// How the dispatcher works one adapter's queue.
public struct DispatchSettings: Sendable, Hashable {
    /// Events leased per query.
    public var leaseBatch: Int
    /// How long a lease lasts; a delivery still running at half of it extends it.
    public var leaseDuration: Duration
    /// How often to look for due events when nothing wakes the worker (retries
    /// that became due).
    public var pollInterval: Duration
    /// Most deliveries in flight to one endpoint; nil: the adapter's own figure.
    public var endpointConcurrency: Int?
    /// Consecutive failed attempts that open an endpoint's circuit.
    public var breakerFailures: Int
    /// How long an open circuit waits before its probe; doubled after each failed
    /// probe, up to `breakerMaximumBackoff`.
    public var breakerBackoff: Duration
    public var breakerMaximumBackoff: Duration

    public init(
        leaseBatch: Int = 64, leaseDuration: Duration = .seconds(120), pollInterval: Duration = .seconds(1), endpointConcurrency: Int? = nil,
        breakerFailures: Int = 5, breakerBackoff: Duration = .seconds(2), breakerMaximumBackoff: Duration = .seconds(60)
    ) {
        self.leaseBatch = leaseBatch
        self.leaseDuration = leaseDuration
        self.pollInterval = pollInterval
        self.endpointConcurrency = endpointConcurrency
        self.breakerFailures = breakerFailures
        self.breakerBackoff = breakerBackoff
        self.breakerMaximumBackoff = breakerMaximumBackoff
    }

    var breaker: CircuitBreaker.Settings {
        CircuitBreaker.Settings(failureThreshold: breakerFailures, minimumBackoff: breakerBackoff, maximumBackoff: breakerMaximumBackoff)
    }
}

/// A chat room's settings.
public struct ChatRoom: Sendable, Hashable {
    /// Participants may take nicknames (NICKNAME); otherwise it is answered 501.
    public var nicknames: Bool

    public init(nicknames: Bool = true) { self.nicknames = nicknames }
}
