import Foundation

/// How a delivery ended for good.
public enum FinalOutcome: Sendable, Hashable {
    case delivered(proof: String)
    case failed(code: Int, reason: String)
    /// Delivered to some recipients, refused by others.
    case partial(proof: String, code: Int, reason: String)
}

/// What is owed once a delivery ends: the queue enqueues these in the same
/// transaction that records the outcome, so they are never lost or doubled.
public protocol FollowUpPolicy: Sendable {
    func followUps(for event: QueuedEvent, outcome: FinalOutcome) -> [NewEvent]
}

/// RFC 4975 §7.1.3-7.1.4 and RFC 5438: a success REPORT when the sender asked
/// for one, a failure REPORT unless it said `Failure-Report: no`, and an IMDN
/// `delivered`/`failed` when the CPIM asked for positive/negative delivery
/// notifications. They go back over the "msrp" adapter to the origin session.
/// A page-mode message (a SIP MESSAGE: no session, the sender's SIP URI as its
/// From-Path) gets only its IMDNs, as page-mode messages through `pageModeAdapter`.
public struct SenderNotificationPolicy: FollowUpPolicy {
    public var adapter: String
    public var pageModeAdapter: String

    public init(adapter: String = "msrp", pageModeAdapter: String = "sip-message") {
        self.adapter = adapter
        self.pageModeAdapter = pageModeAdapter
    }

    public func followUps(for event: QueuedEvent, outcome: FinalOutcome) -> [NewEvent] {
        guard event.kind == .delivery else { return [] }
        if event.origin.sessionID == nil, let sender = event.origin.fromPath, sender.hasPrefix("sip:") || sender.hasPrefix("sips:") {
            return pageModeFollowUps(for: event, sender: sender, outcome: outcome)
        }
        guard let session = event.origin.sessionID else { return [] }
        var out: [NewEvent] = []
        func owed(_ kind: EventKind, _ status: String, _ headers: [String: String]) {
            // It goes back: from the original recipient to the original sender, and
            // keeps the original DateTime (an IMDN quotes it).
            let original = event.envelope
            let envelope = EventEnvelope(
                from: original.to.first, to: original.from.map { [$0] } ?? [], subject: original.subject,
                dateTime: original.dateTime, contentType: kind == .imdn ? "message/imdn+xml" : "", headers: headers)
            out.append(NewEvent(
                kind: kind, adapter: adapter, target: session, origin: event.origin, envelope: envelope,
                dedupeKey: "\(event.id)|\(kind.rawValue)|\(status)", parent: event.id))
        }
        switch outcome {
        case .delivered(let proof):
            if event.origin.successReport { owed(.report, "200", ["status": "200", "reason": "OK", "proof": proof]) }
            if event.origin.imdnDispositions.contains("positive-delivery") {
                owed(.imdn, "delivered", ["disposition": "delivered"])
            }
        case .partial(let proof, let code, let reason):
            // Both are true: it reached some recipients, and not others.
            if event.origin.successReport { owed(.report, "200", ["status": "200", "reason": "OK", "proof": proof]) }
            if event.origin.failureReport != "no" {
                owed(.report, String(code), ["status": String(code), "reason": reason])
            }
            if event.origin.imdnDispositions.contains("negative-delivery") {
                owed(.imdn, "failed", ["disposition": "failed", "reason": reason])
            }
        case .failed(let code, let reason):
            if event.origin.failureReport != "no" {
                owed(.report, String(code), ["status": String(code), "reason": reason])
            }
            if event.origin.imdnDispositions.contains("negative-delivery") {
                owed(.imdn, "failed", ["disposition": "failed", "reason": reason])
            }
        }
        return out
    }

    private func pageModeFollowUps(for event: QueuedEvent, sender: String, outcome: FinalOutcome) -> [NewEvent] {
        let headers: [String: String]
        switch outcome {
        case .delivered:
            guard event.origin.imdnDispositions.contains("positive-delivery") else { return [] }
            headers = ["disposition": "delivered"]
        case .failed(_, let reason), .partial(_, _, let reason):
            guard event.origin.imdnDispositions.contains("negative-delivery") else { return [] }
            headers = ["disposition": "failed", "reason": reason]
        }
        let original = event.envelope
        let envelope = EventEnvelope(
            from: original.to.first, to: original.from.map { [$0] } ?? [], subject: original.subject,
            dateTime: original.dateTime, contentType: "message/imdn+xml", headers: headers)
        return [NewEvent(
            kind: .imdn, adapter: pageModeAdapter, target: sender, origin: event.origin, envelope: envelope,
            dedupeKey: "\(event.id)|imdn|\(headers["disposition"] ?? "")", parent: event.id)]
    }
}
