import Foundation

/// A queue other gateway nodes write to as well. It tells this node when any
/// node stored events, so that an idle dispatcher starts at once instead of at
/// its next poll (a REPORT stored by the node that delivered, for a session
/// this node holds, say); and it keeps the cluster's directory: the nodes and
/// the sessions each holds, so that the API answers on any node and a peer's
/// messages go to the node it is connected to.
public protocol SharedQueue: EventQueue {
    /// `handler` gets the adapters with new events, for as long as the queue is
    /// open; a lost notification costs only the wait until the next poll.
    func onNewEvents(_ handler: @escaping @Sendable (Set<String>) -> Void)

    /// This node's id.
    var node: Int { get }

    /// Counts this node's registrations: when it changes, the node was taken
    /// out and came back (it stalled past the node time-out), and what it had
    /// published is gone: publish everything again.
    var registration: Int { get }

    /// Where this node can be reached (`api=http://...`, `msrp=msrp://...`).
    func advertise(addresses: [String]) async throws(QueueError)

    /// The registered nodes.
    func clusterNodes() async throws(QueueError) -> [ClusterNode]

    /// Publishes this node's sessions that began and withdraws those that ended.
    func publishSessions(adding: [ClusterSession], removing: [String]) async throws(QueueError)

    /// Replaces everything published for this node with `sessions`.
    func republishSessions(_ sessions: [ClusterSession]) async throws(QueueError)

    /// Every node's sessions, oldest first.
    func clusterSessions() async throws(QueueError) -> [ClusterSession]

    func clusterSession(_ id: String) async throws(QueueError) -> ClusterSession?

    /// Another node with a session of `peer` (a normalised address), if any.
    func node(holdingPeer peer: String, besides node: Int) async throws(QueueError) -> Int?

    /// Makes the queued events for these targets `node`'s alone (their
    /// recipient is connected there), and those waiting due now; returns how many.
    @discardableResult
    func assign(adapter: String, targets: [String], to node: Int) async throws(QueueError) -> Int
}

/// A registered gateway node.
public struct ClusterNode: Sendable, Hashable {
    public var id: Int
    public var host: String
    public var addresses: [String]
    public var heartbeatAt: Date

    public init(id: Int, host: String, addresses: [String], heartbeatAt: Date) {
        self.id = id
        self.host = host
        self.addresses = addresses
        self.heartbeatAt = heartbeatAt
    }
}

/// A live session as the cluster's directory knows it.
public struct ClusterSession: Sendable, Hashable {
    public var id: String
    public var node: Int
    /// The peer's normalised address, when known.
    public var peer: String?
    public var route: String?
    public var localURI: String
    public var remotePath: [String]
    public var createdAt: Date

    public init(id: String, node: Int, peer: String?, route: String?, localURI: String, remotePath: [String], createdAt: Date) {
        self.id = id
        self.node = node
        self.peer = peer
        self.route = route
        self.localURI = localURI
        self.remotePath = remotePath
        self.createdAt = createdAt
    }
}
