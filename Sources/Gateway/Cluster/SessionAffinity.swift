import Events

/// Where several nodes share one queue, a session's id names the node that
/// created it (`n3-...`), and two kinds of events are that node's alone:
/// - events for the `msrp` adapter addressed to a session, whichever node
///   stored them (node B's delivery owes a REPORT on node A's session);
/// - the messages that came in on a session, wherever they go: one node
///   delivers a session's messages, so they keep the order they keep on one
///   node (two nodes delivering one session's messages at once could swap
///   them). Sessions spread over the nodes, so the work does too; if the node
///   dies, the others take its events (`NodeRegistry.reap`).
/// A peer's messages (addressed to a peer, not a session) are given to the node
/// it is connected to when it connects (`SharedQueue.assign`).
public struct SessionAffinity: NodeAffinity {
    public init() {}

    /// A new session id for `node`: its prefix, then `random`.
    public static func sessionID(node: Int, random: String) -> String { "n\(node)-\(random)" }

    /// The node a session id names; nil for one made without a node prefix.
    public static func node(ofSession id: String) -> Int? {
        guard id.hasPrefix("n"), let dash = id.firstIndex(of: "-") else { return nil }
        return Int(id[id.index(after: id.startIndex)..<dash])
    }

    public func node(for event: NewEvent) -> Int? {
        if event.adapter == "msrp", !event.target.contains(":") { return Self.node(ofSession: event.target) }
        return event.origin.sessionID.flatMap(Self.node(ofSession:))
    }
}
