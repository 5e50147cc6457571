import Admission
import CPIM
import CoreMetrics
import Crypto
import Events
import Foundation
import Gateway
import Logging
import NIOConcurrencyHelpers
import SMTPServer
import SMTPWire

/// What comes in by SMTP, made events: replies to the gateway's mails
/// (`reply+TOKEN@domain`) become messages to the MSRP user the mail came
/// from; delivery status notifications for them (`bounce+TOKEN@domain`) mark
/// the mail's event `bounced` and owe its sender the failure. Only signed,
/// unexpired tokens of the reply domain are taken (no open relay; `In-Reply-To`
/// and `References` never authorise). Auto-replies and mails looping back are
/// taken (250, so that nobody bounces them back to us) and dropped, logged
/// and counted. The 250 comes only once what is owed is durable.
public final class MailIntake: SMTPMailSink {
    let gateway: Gateway
    /// The reply domain and token keys in force (a reload rotates the keys).
    private let current: NIOLockedValueBox<ReplyAddressing>
    var addressing: ReplyAddressing { current.withLockedValue { $0 } }
    /// The domain of our own Message-IDs (`<event.N@domain>`): a mail that
    /// carries one is ours come back.
    let messageIDDomain: String
    let logger: Logger
    let now: @Sendable () -> Date
    private let counters: [String: Counter]
    /// Refusals are logged once per reason per 10 s (with the count left out): a
    /// stranger's flood of recipients must not become a flood of log lines.
    private let refusalLog = KeyedLogThrottle()

    static let dropReasons = ["auto-submitted", "precedence", "our-own", "null-sender", "empty", "not-a-report"]

    public init(gateway: Gateway, addressing: ReplyAddressing, messageIDDomain: String, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.gateway = gateway
        self.current = NIOLockedValueBox(addressing)
        self.messageIDDomain = messageIDDomain.lowercased()
        self.logger = logger
        self.now = now
        var counters: [String: Counter] = [:]
        for r in Self.dropReasons { counters["dropped-" + r] = Counter(label: "msrpgw_mail_in_total", dimensions: [("result", "dropped"), ("reason", r)]) }
        for r in ["reply", "bounce", "delayed", "refused"] { counters[r] = Counter(label: "msrpgw_mail_in_total", dimensions: [("result", r)]) }
        self.counters = counters
    }

    /// Puts reloaded `[smtp.inbound]` addressing in force (a new secret, domain or token life).
    public func replace(_ addressing: ReplyAddressing) {
        current.withLockedValue { $0 = addressing }
    }

    // MARK: - RCPT

    public func checkRecipient(_ address: String, envelope: SMTPEnvelope) async -> SMTPServerReply? {
        switch await verify(address) {
        case .success: return nil
        case .failure(let refusal):
            counters["refused"]?.increment()
            let (log, suppressed) = refusalLog.admit(refusal.reply.description)
            if log {
                logger.info("inbound mail recipient refused", metadata: [
                    "recipient": "\(address.prefix(120))", "from": "\(envelope.mailFrom.prefix(120))", "reason": "\(refusal.reason)",
                    "reply": "\(refusal.reply)", "like-this-not-logged": "\(suppressed)"])
            }
            return refusal.reply
        }
    }

    struct Refusal: Error {
        var reply: SMTPServerReply
        var reason: String
    }

    /// The token and event an address names, or why it is refused.
    func verify(_ address: String) async -> Result<(MailToken, QueuedEvent?), Refusal> {
        guard let at = address.lastIndex(of: "@") else {
            return .failure(Refusal(reply: SMTPServerReply(550, "5.1.1", "No such user"), reason: "no domain"))
        }
        let domain = address[address.index(after: at)...].lowercased()
        let addressing = addressing
        guard domain == addressing.domain else {
            return .failure(Refusal(reply: SMTPServerReply(550, "5.7.1", "Relay access denied"), reason: "not the reply domain: relay attempt"))
        }
        let token: MailToken
        do {
            token = try MailToken.verify(localPart: String(address[..<at]), keys: addressing.keys, now: now())
        } catch {
            if case .expired = error {
                return .failure(Refusal(reply: SMTPServerReply(550, "5.1.1", "Reply address expired"), reason: "\(error)"))
            }
            return .failure(Refusal(reply: SMTPServerReply(550, "5.1.1", "No such user"), reason: "\(error)"))
        }
        let event: QueuedEvent?
        do {
            event = try await gateway.queue.event(EventID(rawValue: token.event))
        } catch {
            return .failure(Refusal(reply: SMTPServerReply(451, "4.3.0", "Temporary failure, try again later"), reason: "queue: \(error)"))
        }
        // A reply needs its conversation; a bounce for a purged event is taken and dropped.
        if token.kind == .reply, event == nil || event?.adapter != "smtp" {
            return .failure(Refusal(reply: SMTPServerReply(550, "5.1.1", "Conversation no longer known"), reason: "event \(token.event) is gone"))
        }
        return .success((token, event))
    }

    // MARK: - DATA

    public func store(_ envelope: SMTPEnvelope, mail bytes: [UInt8]) async -> SMTPServerReply {
        let mail = MIMEPart.parse(bytes)
        var stored: [String] = []
        for recipient in envelope.recipients {
            guard case .success(let (token, event)) = await verify(recipient) else { continue }  // refused at RCPT: cannot be here
            do {
                switch token.kind {
                case .bounce: stored += try await bounce(mail, of: event, envelope: envelope)
                case .reply:
                    guard let event else { continue }
                    stored += try await reply(mail, to: event, envelope: envelope)
                }
            } catch let error as RouteError {
                logger.info("inbound mail reply has no route", metadata: ["recipient": "\(recipient)", "error": "\(error)"])
                return SMTPServerReply(550, "5.1.1", "The conversation's recipient cannot be reached")
            } catch {
                // Nothing acknowledged: the client tries again (event ids make that idempotent).
                logger.warning("inbound mail not stored", metadata: ["recipient": "\(recipient)", "error": "\(error)"])
                return SMTPServerReply(451, "4.3.0", "Temporary failure, try again later")
            }
        }
        return SMTPServerReply(250, "2.0.0", stored.isEmpty ? "Ok" : "Ok: " + stored.joined(separator: " "))
    }

    /// A reply: the new text (and attachments) to the MSRP user the answered mail came from.
    func reply(_ mail: MIMEPart, to event: QueuedEvent, envelope: SMTPEnvelope) async throws -> [String] {
        if let reason = dropReason(mail, envelope: envelope) {
            counters["dropped-" + reason]?.increment()
            logger.info("inbound mail not relayed", metadata: [
                "reason": "\(reason)", "from": "\(envelope.mailFrom.prefix(120))", "message-id": "\(mail.headers["Message-ID"]?.prefix(120) ?? "-")"])
            return []
        }
        guard let peer = event.envelope.from.flatMap({ try? CPIMAddress(parsing: $0) })?.uri else {
            throw RouteError("the answered message has no sender")
        }
        let content = ReplyContent(mail)
        let accepts = gateway.liveSessions(of: peer)
        var text = content.text
        var attachments: [ReplyContent.Attachment] = []
        var named: [String] = []
        for a in content.attachments {
            // Sent as themselves only where a live session of the peer takes the type.
            if accepts.contains(where: { $0.peerAcceptsWrapped(a.contentType) || $0.peerAccepts(a.contentType) }) {
                attachments.append(a)
            } else {
                named.append("\(a.filename ?? "unnamed") (\(a.contentType), \(a.bytes.count) bytes)")
            }
        }
        if !named.isEmpty { text += (text.isEmpty ? "" : "\n\n") + "[Attachments not forwarded: " + named.joined(separator: "; ") + "]" }
        guard !text.isEmpty || !attachments.isEmpty else {
            counters["dropped-empty"]?.increment()
            logger.info("inbound mail reply has no new text", metadata: ["from": "\(envelope.mailFrom.prefix(120))"])
            return []
        }
        let from = Self.sender(mail, envelope: envelope)
        let subject = mail.headers.decoded("Subject").map { String($0.prefix(200)) }
        let dateTime = mail.headers["Date"].flatMap(MailDate.parse).map(RFC3339.string(from:))
        // The same mail again (its sender retrying after we died before the 250) is one event.
        let key = "mail|\(mail.headers["Message-ID"] ?? Self.digest(mail.rawBody))|\(event.id)"
        var ids: [String] = []
        if !text.isEmpty {
            ids += try await gateway.submit(OutboundMessage(
                to: .address(peer), text: text, from: from, subject: subject, idempotencyKey: key, dateTime: dateTime)).map(\.description)
        }
        for (i, a) in attachments.enumerated() {
            var message = OutboundMessage(to: .address(peer), text: "", contentType: a.contentType, from: from, subject: subject,
                                          idempotencyKey: key + "|\(i)", dateTime: dateTime)
            message.body = a.bytes
            ids += try await gateway.submit(message).map(\.description)
        }
        counters["reply"]?.increment()
        logger.info("inbound mail reply queued", metadata: ["from": "\(from)", "to": "\(peer)", "events": "\(ids.joined(separator: ","))", "answers": "\(event.id)"])
        return ids
    }

    /// A delivery status notification for one of our mails.
    func bounce(_ mail: MIMEPart, of event: QueuedEvent?, envelope: SMTPEnvelope) async throws -> [String] {
        guard let event else {
            logger.info("bounce for an event no longer kept", metadata: ["from": "\(envelope.mailFrom.prefix(120))"])
            return []
        }
        guard let report = DeliveryStatus(mail) else {
            counters["dropped-not-a-report"]?.increment()
            logger.info("mail to a bounce address that is no delivery status notification dropped", metadata: [
                "event": "\(event.id)", "from": "\(envelope.mailFrom.prefix(120))", "subject": "\(mail.headers.decoded("Subject")?.prefix(120) ?? "-")"])
            return []
        }
        if let failed = report.recipients.first(where: { $0.action == .failed }) {
            let reason = "bounced by \(report.reportingMTA ?? "a mail server"): \(failed.address) \(failed.status)" + (failed.diagnostic.map { " (\($0.prefix(200)))" } ?? "")
            let found = try await gateway.record(.bounced(code: failed.msrpCode, reason: reason), of: event)
            // A bounce faster than our record of the relay's 250 (the event still
            // leased): the DSN's sender is told to try again, so the bounce is not lost.
            if found == .leased || found == .queued { throw NotYetDelivered(event: event.id) }
            counters["bounce"]?.increment()
            logger.info("mail bounced", metadata: ["event": "\(event.id)", "status": "\(failed.status)", "code": "\(failed.msrpCode)",
                                                   "recorded": "\(found == .delivered)"])
        } else if let delayed = report.recipients.first(where: { $0.action == .delayed }) {
            try await gateway.record(.delayed(reason: "\(delayed.address) \(delayed.status)" + (delayed.diagnostic.map { " (\($0.prefix(200)))" } ?? "")), of: event)
            counters["delayed"]?.increment()
            logger.info("mail delayed", metadata: ["event": "\(event.id)", "status": "\(delayed.status)"])
        }
        return []
    }

    /// A DSN for a mail whose delivery is not recorded yet.
    struct NotYetDelivered: Error, CustomStringConvertible {
        var event: EventID
        var description: String { "event \(event) is not recorded as delivered yet" }
    }

    /// Why a reply is not relayed, or nil (RFC 3834: never answer what a machine sent).
    func dropReason(_ mail: MIMEPart, envelope: SMTPEnvelope) -> String? {
        if envelope.mailFrom.isEmpty { return "null-sender" }
        if let auto = mail.headers["Auto-Submitted"]?.lowercased(), !auto.hasPrefix("no") { return "auto-submitted" }
        if let precedence = mail.headers["Precedence"]?.lowercased(), ["bulk", "list", "junk"].contains(where: precedence.contains) { return "precedence" }
        if let id = mail.headers["Message-ID"]?.lowercased(), id.hasPrefix("<event."), id.hasSuffix("@\(messageIDDomain)>") { return "our-own" }
        return nil
    }

    /// `Name <mailto:address>` from the mail's From, else the envelope sender.
    static func sender(_ mail: MIMEPart, envelope: SMTPEnvelope) -> String {
        let from = mail.headers.decoded("From") ?? ""
        var name: String?
        var address = envelope.mailFrom
        if let open = from.lastIndex(of: "<"), let close = from.lastIndex(of: ">"), open < close {
            let a = from[from.index(after: open)..<close].trimmingCharacters(in: .whitespaces)
            if a.contains("@"), !a.contains(" ") { address = a }
            let n = from[..<open].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            if !n.isEmpty { name = String(n.prefix(100)) }
        } else if from.contains("@"), !from.contains(" ") {
            address = from.trimmingCharacters(in: .whitespaces)
        }
        let uri = "mailto:" + (address.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed.union(CharacterSet(charactersIn: "@"))) ?? address)
        return CPIMAddress(displayName: name, uri: uri).description
    }

    /// Stable across restarts (a mail without Message-ID is known by its text).
    static func digest(_ body: ArraySlice<UInt8>) -> String {
        SHA256.hash(data: Array(body)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }
}
