import CPIM
import Events
import Foundation
import MSRP

/// What the gateway owes a sender after its `200`: the one place that knows
/// the Success-Report and Failure-Report rules (RFC 4975 §7.1.2-7.1.4, §6 for
/// duplicates), the 427 of chat rooms (RFC 7701 §7.2) and IMDN (RFC 5438).
///
/// - At ingress it records in the event's origin what the sender asked to be
///   told (`origin(...)`), quiets the copies a room makes, and owes a 427 REPORT
///   for private recipients who are not in the room.
/// - As the queue's follow-up policy it says, in the transaction that records a
///   delivery's final outcome, what is owed: a success REPORT when asked for, a
///   failure REPORT unless `Failure-Report: no`, and an IMDN `delivered` or
///   `failed` when the CPIM asked for positive or negative delivery
///   notifications. They go back over the `msrp` adapter to the origin
///   session. A page-mode message (a SIP MESSAGE: no session) gets only its
///   IMDNs, as page-mode messages through `pageModeAdapter`; a message from
///   an XMPP user gets them through the `xmpp` adapter (receipts, errors).
/// - For a duplicate SEND of a message already delivered it owes the success
///   REPORT again (acknowledgements are still needed for duplicate content).
///
/// The hop-by-hop responses (a 200 or an error to each chunk, gated by
/// Failure-Report) are the MSRP transport's; this is everything that comes later.
public struct Reporter: FollowUpPolicy {
    public var adapter: String
    public var pageModeAdapter: String

    public init(adapter: String = "msrp", pageModeAdapter: String = "sip-message") {
        self.adapter = adapter
        self.pageModeAdapter = pageModeAdapter
    }

    // MARK: - At ingress

    /// What the sender of an MSRP message asked to be told, for its events.
    public func origin(session: String, messageID: String, head: MSRPRequestHead, size: Int64, imdn: IMDNRequest?) -> EventOrigin {
        let failureReport: FailureReportRequest
        switch head.headers.failureReport {
        case .yes: failureReport = .yes
        case .partial: failureReport = .partial
        case .no: failureReport = .no
        }
        return EventOrigin(
            sessionID: session, messageID: messageID, fromPath: head.fromPath.map(\.description), toPath: head.toPath.map(\.description),
            byteCount: size, successReport: head.headers.successReport == .yes, failureReport: failureReport,
            imdnMessageID: imdn?.messageID, imdnDispositions: imdn?.dispositions.map(\.rawValue) ?? [])
    }

    /// A page-mode message owes no REPORTs (there is no session), only the IMDNs it asks for.
    public func pageModeOrigin(id: String, sender: String, size: Int64, imdn: IMDNRequest?) -> EventOrigin {
        EventOrigin(
            messageID: id, pageModeSender: sender, byteCount: size, successReport: false, failureReport: .no,
            imdnMessageID: imdn?.messageID, imdnDispositions: imdn?.dispositions.map(\.rawValue) ?? [])
    }

    /// The origin of the copies a chat room makes for its other participants:
    /// they owe the sender nothing more (the 200 was the room's answer; reports
    /// and IMDNs come from the recipients).
    public func roomCopy(of origin: EventOrigin) -> EventOrigin {
        var quiet = origin
        (quiet.successReport, quiet.failureReport, quiet.imdnMessageID, quiet.imdnDispositions) = (false, .no, nil, [])
        return quiet
    }

    /// RFC 7701 §7.2: private recipients not in the room get the sender a 427
    /// REPORT (unless `Failure-Report: no`) whose CPIM wrapper has the original
    /// From and, in To and cc, the recipients that were not found.
    public func notInRoomReport(origin: EventOrigin, envelope: EventEnvelope, unresolved: [String]) -> NewEvent? {
        guard !unresolved.isEmpty, origin.failureReport != .no, let session = origin.sessionID, let messageID = origin.messageID else { return nil }
        let toURIs = Set(envelope.to.compactMap { try? CPIMAddress(parsing: $0).uri })
        let failedTo = unresolved.filter(toURIs.contains)
        let failedCc = unresolved.filter { !failedTo.contains($0) }
        return NewEvent(
            kind: .report, adapter: adapter, target: session, origin: origin,
            envelope: EventEnvelope(from: envelope.from, to: failedTo, cc: failedCc,
                                    headers: ["status": "427", "reason": "not in the room: " + unresolved.joined(separator: ", ")]),
            dedupeKey: "\(session)|\(messageID)|427")
    }

    /// A SEND that repeats a message already stored (same session and
    /// Message-ID, a new transaction): if that message's delivery succeeded
    /// and the new SEND asks for a success REPORT, it is owed again (RFC 4975
    /// §6: acknowledgements are still necessary for duplicate content). One
    /// REPORT per repeating transaction. A delivery still pending owes its
    /// REPORT when it ends, once; a failed one already owed its failure.
    public func duplicateAcknowledgement(of stored: QueuedEvent, repeatedBy origin: EventOrigin, transactionID: String) -> NewEvent? {
        guard stored.kind == .delivery, stored.state == .delivered, origin.successReport, let session = origin.sessionID else { return nil }
        var owed = origin
        owed.sessionID = session
        return NewEvent(
            kind: .report, adapter: adapter, target: session, origin: owed,
            envelope: Self.goingBack(stored.envelope, contentType: "", headers: ["status": "200", "reason": "OK", "proof": stored.proof ?? "delivered"]),
            dedupeKey: "\(stored.id)|report|200|\(transactionID)", parent: stored.id)
    }

    // MARK: - When a delivery ends

    /// The envelope of what goes back about `original`: from its (first)
    /// recipient to its sender, keeping its subject and DateTime (an IMDN quotes it).
    static func goingBack(_ original: EventEnvelope, contentType: String, headers: [String: String]) -> EventEnvelope {
        EventEnvelope(
            from: original.to.first, to: original.from.map { [$0] } ?? [], subject: original.subject,
            dateTime: original.dateTime, contentType: contentType, headers: headers)
    }

    public func followUps(for event: QueuedEvent, outcome: FinalOutcome) -> [NewEvent] {
        guard event.kind == .delivery else { return [] }
        if event.origin.sessionID == nil, let sender = event.origin.pageModeSender {
            return pageModeFollowUps(for: event, sender: sender, outcome: outcome)
        }
        guard let session = event.origin.sessionID else { return [] }
        var out: [NewEvent] = []
        func owed(_ kind: EventKind, _ status: String, _ headers: [String: String]) {
            let envelope = Self.goingBack(event.envelope, contentType: kind == .imdn ? "message/imdn+xml" : "", headers: headers)
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
            if event.origin.failureReport != .no {
                owed(.report, String(code), ["status": String(code), "reason": Self.peerPhrase(code), "detail": reason])
            }
            if event.origin.imdnDispositions.contains("negative-delivery") {
                owed(.imdn, "failed", ["disposition": "failed", "reason": reason])
            }
        case .failed(let code, let reason):
            if event.origin.failureReport != .no {
                owed(.report, String(code), ["status": String(code), "reason": Self.peerPhrase(code), "detail": reason])
            }
            if event.origin.imdnDispositions.contains("negative-delivery") {
                owed(.imdn, "failed", ["disposition": "failed", "reason": reason])
            }
        }
        return out
    }

    /// The IMDN `displayed` owed for a delivered message whose sender asked for
    /// display notifications (the recipient said it has been shown: an XMPP
    /// chat marker); nil when it did not ask.
    public func displayed(for event: QueuedEvent) -> NewEvent? {
        guard event.kind == .delivery, event.origin.imdnDispositions.contains("display"), event.origin.imdnMessageID != nil else { return nil }
        let envelope = Self.goingBack(event.envelope, contentType: "message/imdn+xml", headers: ["disposition": "displayed"])
        let (adapter, target): (String, String)
        if let session = event.origin.sessionID {
            (adapter, target) = (self.adapter, session)
        } else if let sender = event.origin.pageModeSender {
            (adapter, target) = (self.adapter(forPageModeSender: sender), sender)
        } else {
            return nil
        }
        return NewEvent(kind: .imdn, adapter: adapter, target: target, origin: event.origin, envelope: envelope,
                        dedupeKey: "\(event.id)|imdn|displayed", parent: event.id)
    }

    /// The comment a failure REPORT carries to the sender: one stable phrase
    /// per status. Why a delivery failed inside (a receiver's socket error, a
    /// file) stays in the event's `detail` for the log and the API: told to
    /// peers it maps our network for them.
    static func peerPhrase(_ code: Int) -> String {
        switch code {
        case 400: "the recipient refused the message as malformed"
        case 403: "delivery to this recipient is not allowed"
        case 404: "recipient unknown"
        case 408: "delivery timed out"
        case 413: "message too large for the recipient"
        case 415: "content type not accepted by the recipient"
        case 481: "the recipient's session has ended"
        default: "delivery failed"
        }
    }

    /// Who carries an IMDN back to a sender outside MSRP sessions: an XMPP
    /// user's (a receipt or an error) goes over the `xmpp` adapter, a SIP
    /// user's as a page-mode message.
    func adapter(forPageModeSender sender: String) -> String {
        sender.lowercased().hasPrefix("xmpp:") ? "xmpp" : pageModeAdapter
    }

    /// The `msrp` adapter's proof when the peer's success REPORT said the user
    /// has the message: the only one an XMPP receipt is sent for.
    public static let endToEndProof = "MSRP REPORT 200"

    private func pageModeFollowUps(for event: QueuedEvent, sender: String, outcome: FinalOutcome) -> [NewEvent] {
        let headers: [String: String]
        switch outcome {
        case .delivered(let proof):
            guard event.origin.imdnDispositions.contains("positive-delivery") else { return [] }
            // An XMPP receipt says the user has it: a next hop's 200 does not.
            if adapter(forPageModeSender: sender) == "xmpp", event.adapter == adapter, proof != Self.endToEndProof { return [] }
            headers = ["disposition": "delivered"]
        case .failed(_, let reason), .partial(_, _, let reason):
            guard event.origin.imdnDispositions.contains("negative-delivery") else { return [] }
            headers = ["disposition": "failed", "reason": reason]
        }
        let envelope = Self.goingBack(event.envelope, contentType: "message/imdn+xml", headers: headers)
        return [NewEvent(
            kind: .imdn, adapter: adapter(forPageModeSender: sender), target: sender, origin: event.origin, envelope: envelope,
            dedupeKey: "\(event.id)|imdn|\(headers["disposition"] ?? "")", parent: event.id)]
    }
}
