import Events

/// Where several nodes share one queue, a session's id names the node that
/// created it (`n3-...`): events for the `msrp` adapter addressed to a session
/// are for that node alone, whichever node stored them (node B's delivery owes
/// a REPORT on node A's session).
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
        guard event.adapter == "msrp", !event.target.contains(":") else { return nil }
        return Self.node(ofSession: event.target)
    }
}
