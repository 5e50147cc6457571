import CPIM
import Events
import Foundation
import Logging
import MSRP
import MSRPTransport
import NIOCore
import Queue

/// The `msrp` adapter: what the gateway owes MSRP peers, written on their live
/// sessions. REPORTs and IMDNs go to the session the message came from (an event
/// target that is a session id); system messages and chat messages go to a
/// session id or to a peer address (`sip:alice@example.com`: every live session
/// of that peer). A REPORT or IMDN whose session has ended is recorded as
/// undeliverable, never retried; a message for a peer with no live session waits
/// in the queue (store and forward) until one appears or its age runs out.
final class MSRPSessionAdapter: Adapter {
    let name = "msrp"
    let schemes = ["sip", "sips", "im", "tel"]
    let concurrency: Int
    private let sessions: SessionDirectory
    private let identity: String
    private let metrics: GatewayMetrics
    private let logger: Logger

    /// Told the peer a message waits for, when it has no live session (an outbound call may make one).
    private let needsSession: @Sendable (String) -> Void

    /// Where nodes share the queue: another node with a session of the peer,
    /// which its waiting messages are now for.
    private let connectedElsewhere: @Sendable (String) async -> Int?

    init(sessions: SessionDirectory, identity: String, concurrency: Int = 256, metrics: GatewayMetrics, logger: Logger,
         needsSession: @escaping @Sendable (String) -> Void = { _ in }, connectedElsewhere: @escaping @Sendable (String) async -> Int? = { _ in nil }) {
        self.needsSession = needsSession
        self.connectedElsewhere = connectedElsewhere
        self.sessions = sessions
        self.identity = identity
        self.concurrency = concurrency
        self.metrics = metrics
        self.logger = logger
    }

    func deliver(_ event: QueuedEvent) async -> DeliveryOutcome {
        if uriScheme(event.target) == nil {
            guard let session = sessions.session(event.target), !session.msrp.isClosed else {
                return undeliverable(event, "session \(event.target) has ended")
            }
            return await deliver(event, on: session)
        }
        let live = sessions.sessions(of: event.target).filter { !$0.msrp.isClosed }
        // Store and forward: it waits, without spending attempts, until the peer has a
        // session (creating one makes these events due at once) or it is too old.
        guard !live.isEmpty else {
            if let node = await connectedElsewhere(event.target) {
                return .notReady(after: .zero, reason: "the peer is connected to node \(node)")
            }
            needsSession(event.target)
            return .notReady(after: .seconds(300), reason: "no live MSRP session of \(event.target)")
        }
        var outcomes: [DeliveryOutcome] = []
        for session in live { outcomes.append(await deliver(event, on: session)) }
        // Delivered if any of the peer's sessions took it.
        return outcomes.first { if case .delivered = $0 { return true } else { return false } } ?? outcomes[0]
    }

    private func undeliverable(_ event: QueuedEvent, _ why: String) -> DeliveryOutcome {
        if event.kind == .report || event.kind == .imdn {
            metrics.reportUndeliverable(kind: event.kind)
            logger.info("report undeliverable", metadata: ["event": "\(event.id)", "kind": "\(event.kind.rawValue)", "why": "\(why)"])
            return .permanentFailure(code: 481, reason: "report undeliverable: \(why)")
        }
        return .permanentFailure(code: 481, reason: why)
    }

    private func deliver(_ event: QueuedEvent, on session: GatewaySession) async -> DeliveryOutcome {
        switch event.kind {
        case .report: return report(event, on: session)
        case .imdn: return await imdn(event, on: session)
        case .system: return await send(event, on: session, system: true)
        case .delivery: return await send(event, on: session, system: false)
        }
    }

    // MARK: - REPORT (RFC 4975 §7.1.2)

    private func report(_ event: QueuedEvent, on session: GatewaySession) -> DeliveryOutcome {
        let senderPath = event.origin.fromPath.compactMap { try? MSRPURI($0) }
        guard !senderPath.isEmpty, let messageID = event.origin.messageID else {
            return .permanentFailure(code: 400, reason: "report without the original From-Path or Message-ID")
        }
        let code = Int(event.envelope.headers["status"] ?? "") ?? 200
        let builder = MSRPReportBuilder(local: session.msrp.localURI, senderPath: senderPath, messageID: messageID)
        let range = ByteRange.whole(event.origin.byteCount ?? 0)
        let head = code == 200
            ? builder.success(range: range)
            : builder.failure(code: code, reason: event.envelope.headers["reason"].map(statusComment), range: range)
        var report = head
        let body = Self.unresolvedWrapper(event)
        if body != nil { report.headers.append(.contentType(.messageCPIM)) }
        do {
            try session.msrp.sendReport(report, body: body)
        } catch {
            return undeliverable(event, "\(error)")
        }
        metrics.reportSent(kind: .report, result: code == 200 ? "success" : "failure")
        return .delivered(proof: "REPORT 000 \(code)")
    }

    /// A 427 REPORT's body (RFC 7701 §7.2): a CPIM wrapper with the original From
    /// and the recipients not in the room as To and cc; nil for other REPORTs.
    static func unresolvedWrapper(_ event: QueuedEvent) -> ByteBuffer? {
        guard event.envelope.headers["status"] == "427", let fromText = event.envelope.from,
              let from = try? CPIMAddress(parsing: fromText) else { return nil }
        let to = event.envelope.to.compactMap { try? CPIMAddress(parsing: $0) }
        let cc = event.envelope.cc.compactMap { try? CPIMAddress(parsing: $0) }
        guard !(to + cc).isEmpty else { return nil }
        let cpim = CPIMMessage.make(from: from, to: to, cc: cc, dateTime: RFC3339.string(from: Date()), contentType: "text/plain", content: [])
        return ByteBuffer(bytes: cpim.serialized)
    }

    // MARK: - IMDN (RFC 5438)

    private func imdn(_ event: QueuedEvent, on session: GatewaySession) async -> DeliveryOutcome {
        guard session.peerAcceptsWrapped(IMDN.contentType) else {
            logger.warning("peer does not accept message/imdn+xml in CPIM: IMDN not sent", metadata: ["session": "\(session.id)", "event": "\(event.id)"])
            return .permanentFailure(code: 415, reason: "peer does not accept message/imdn+xml in message/cpim")
        }
        guard let cpim = IMDNFollowUp.cpim(for: event, identity: identity, sender: session.peerAddress) else {
            return .permanentFailure(code: 400, reason: "IMDN owed without an imdn.Message-ID")
        }
        let message = MSRPOutgoingMessage(
            contentType: .messageCPIM, body: MemoryBodySource(ByteBuffer(bytes: cpim.serialized)), successReport: .no, failureReport: .yes)
        let outcome = await send(message, on: session, event: event)
        if case .delivered = outcome {
            // A label value from a known set only: a disposition is the peer's word for a displayed marker.
            let disposition = event.envelope.headers["disposition"] ?? "delivered"
            metrics.reportSent(kind: .imdn, result: ["delivered", "failed", "displayed", "processed"].contains(disposition) ? disposition : "other")
        }
        return outcome
    }

    // MARK: - SEND (system and chat messages)

    private func send(_ event: QueuedEvent, on session: GatewaySession, system: Bool) async -> DeliveryOutcome {
        let contentType = event.envelope.contentType.isEmpty ? "text/plain" : event.envelope.contentType
        let body: any MSRPBodySource
        switch event.body {
        case .inline(let bytes): body = MemoryBodySource(ByteBuffer(bytes: bytes))
        case .file(let path, _):
            do { body = try FileBodySource(path: path) } catch { return .permanentFailure(code: 500, reason: "body file lost: \(error)") }
        }
        var message: MSRPOutgoingMessage
        if session.peerAcceptsWrapped(contentType) {
            let from = event.envelope.from.flatMap { try? CPIMAddress(parsing: $0) } ?? CPIMAddress(uri: identity)
            let to = event.envelope.to.first.flatMap { try? CPIMAddress(parsing: $0) } ?? CPIMAddress(uri: session.peerAddress ?? identity)
            // A sender on another network that wants to know when it is shown (an XMPP
            // markable message): the MSRP user is asked for IMDN display notifications.
            let display = Self.wantsDisplayNotice(event)
            let wrapper = CPIMMessage.make(
                from: from, to: [to], dateTime: event.envelope.dateTime ?? RFC3339.string(from: event.createdAt),
                subject: event.envelope.subject.map { CPIMSubject($0) }, namespaces: display != nil ? [("imdn", IMDN.namespace)] : [],
                extraHeaders: display.map { IMDNRequest(messageID: $0, dispositions: [.display]).headers } ?? [], contentType: contentType, content: [])
            // The wrapper's bytes end where the content begins: the body follows them.
            message = MSRPOutgoingMessage(
                messageID: messageID(for: event), contentType: .messageCPIM,
                body: PrefixedBodySource(prefix: ByteBuffer(bytes: wrapper.serialized), rest: body))
        } else if session.peerAccepts(contentType), let type = try? MediaType(contentType) {
            message = MSRPOutgoingMessage(messageID: messageID(for: event), contentType: type, body: body)
        } else {
            return .permanentFailure(code: 415, reason: "peer does not accept \(contentType)")
        }
        // A system message is never answered and never reported (§11.5).
        message.successReport = .no
        message.failureReport = system ? .no : .yes
        if !system, Self.wantsEndToEndProof(event) {
            return await sendProvingDelivery(message, on: session, event: event)
        }
        let outcome = await send(message, on: session, event: event)
        if system, case .delivered = outcome { metrics.reportSent(kind: .system, result: "sent") }
        return outcome
    }

    /// A sender on another network that asked to know when its message reached
    /// the user (an XMPP receipt request): the `200` of the next hop is not
    /// that; the peer's success REPORT is.
    static func wantsEndToEndProof(_ event: QueuedEvent) -> Bool {
        event.origin.sessionID == nil && event.origin.imdnDispositions.contains("positive-delivery")
            && (event.origin.pageModeSender?.lowercased().hasPrefix("xmpp:") ?? false)
    }

    /// The imdn.Message-ID to ask display notifications under, for a message
    /// from another network's user who wants them (an XMPP markable message).
    static func wantsDisplayNotice(_ event: QueuedEvent) -> String? {
        guard event.origin.sessionID == nil, event.origin.imdnDispositions.contains("display"),
              event.origin.pageModeSender?.lowercased().hasPrefix("xmpp:") ?? false else { return nil }
        return event.origin.imdnMessageID
    }

    /// How long a message waits for its success REPORT after its `200`.
    static let reportWait: Duration = .seconds(10)

    /// Sends with `Success-Report: yes` and waits for the REPORT: `REPORT 200`
    /// is the proof the follow-up policy turns into a receipt; a failure REPORT
    /// fails the message; none within `reportWait` leaves it delivered by its
    /// `200` alone (no receipt is owed for that).
    private func sendProvingDelivery(_ message: MSRPOutgoingMessage, on session: GatewaySession, event: QueuedEvent) async -> DeliveryOutcome {
        var message = message
        message.successReport = .yes
        let messageID = self.messageID(for: event)
        session.reports.expect(messageID)
        let outcome = await send(message, on: session, event: event)
        guard case .delivered = outcome else {
            session.reports.forget(messageID)
            return outcome
        }
        let status = await session.reports.wait(for: messageID, within: Self.reportWait)
        switch status {
        case 200?: return .delivered(proof: Reporter.endToEndProof)
        case let code? where code >= 400: return .permanentFailure(code: code, reason: "the peer's REPORT said \(code)")
        default: return .delivered(proof: "MSRP 200, no success REPORT within \(Self.reportWait)")
        }
    }

    /// The same event keeps the same Message-ID across retries.
    private func messageID(for event: QueuedEvent) -> String { "gw" + String(event.id.rawValue, radix: 36) }

    private func send(_ message: MSRPOutgoingMessage, on session: GatewaySession, event: QueuedEvent) async -> DeliveryOutcome {
        do {
            switch try await session.msrp.send(message) {
            case .accepted: return .delivered(proof: "MSRP 200")
            case .sent: return .delivered(proof: "MSRP sent")
            case .rejected(let code, let comment): return .permanentFailure(code: code, reason: "peer answered \(code) \(comment ?? "")")
            case .timedOut: return .retry(after: nil, reason: "no MSRP response within the transaction timeout")
            }
        } catch let error as MSRPSendError {
            switch error.reason {
            case .sessionClosed: return undeliverable(event, "session \(session.id) has ended")
            case .notConnected: return .retry(after: .seconds(2), reason: "session \(session.id) is not connected yet")
            case .connectionLost: return .retry(after: nil, reason: "connection lost")
            case .bodyUnreadable: return .permanentFailure(code: 500, reason: error.detail)
            }
        } catch {
            return .retry(after: nil, reason: "\(error)")
        }
    }

    private func statusComment(_ s: String) -> String {
        String(s.prefix(200).map { $0.isNewline ? " " : $0 })
    }
}

