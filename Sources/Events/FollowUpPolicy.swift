import Foundation

/// How a delivery ended for good.
public enum FinalOutcome: Sendable, Hashable {
    case delivered(proof: String)
    case failed(code: Int, reason: String)
    /// Delivered to some recipients, refused by others.
    case partial(proof: String, code: Int, reason: String)
}

/// What is owed once a delivery ends: the queue asks its policy in the same
/// transaction that records the outcome and enqueues what it returns, so a
/// follow-up is never lost or doubled. The queue knows no protocol: the
/// gateway's `Reporter` is the policy that knows MSRP's and IMDN's rules.
public protocol FollowUpPolicy: Sendable {
    func followUps(for event: QueuedEvent, outcome: FinalOutcome) -> [NewEvent]
}

/// No follow-ups: a queue used on its own.
public struct NoFollowUps: FollowUpPolicy {
    public init() {}
    public func followUps(for event: QueuedEvent, outcome: FinalOutcome) -> [NewEvent] { [] }
}

/// Which gateway node must deliver an event, when only one can: a REPORT, an
/// IMDN or a message that goes out on an MSRP session lives on the node that
/// holds the session's connection. Nil: any node. A queue shared by several
/// nodes asks its affinity for every event it stores; the gateway knows which
/// targets are its sessions (`SessionAffinity`).
public protocol NodeAffinity: Sendable {
    func node(for event: NewEvent) -> Int?
}
