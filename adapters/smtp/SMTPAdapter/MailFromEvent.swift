import CPIM
import Events
import Foundation
import SMTPWire

/// How an event becomes a mail: who it is from, its subject, its thread.
public struct MailSettings: Sendable, Hashable {
    /// The mailbox the gateway sends from (the envelope sender and the From
    /// address; the MSRP sender's name is its display name).
    public var from: String
    public var replyTo: String?
    /// Subject when the CPIM message has none: `{from}` is the sender's name or URI.
    public var subjectTemplate: String
    /// With `[smtp.inbound]`: replies come back to `reply+TOKEN@domain` (the
    /// Reply-To of a message from an MSRP user) and bounces to
    /// `bounce+TOKEN@domain` (the envelope sender of every mail).
    public var replies: ReplyAddressing?

    public init(from: String, replyTo: String? = nil, subjectTemplate: String = "Message from {from}", replies: ReplyAddressing? = nil) {
        self.from = from
        self.replyTo = replyTo
        self.subjectTemplate = subjectTemplate
        self.replies = replies
    }

    /// The envelope sender of `event`'s mail: its VERP bounce address when
    /// bounces come back to the gateway, else `from`.
    func returnPath(for event: QueuedEvent, now: Date = Date()) -> String {
        replies?.address(.bounce, event: event.id.rawValue, now: now) ?? from
    }

    /// The domain of Message-IDs: the sender's.
    public var domain: String { from.split(separator: "@").last.map(String.init) ?? "msrpgw.invalid" }
}

extension MailDraft {
    /// The mail for `event`, to `recipients`. Its Message-ID is the event's, so
    /// a retry is the same mail; its thread is the MSRP session's.
    public init(event: QueuedEvent, recipients: [String], body: [UInt8], settings: MailSettings) {
        let sender = event.envelope.from.flatMap { try? CPIMAddress(parsing: $0) }
        let senderName = sender?.displayName ?? sender?.uri ?? event.envelope.from ?? "msrpgw"
        let domain = settings.domain
        let subject = event.envelope.subject ?? settings.subjectTemplate.replacingOccurrences(of: "{from}", with: senderName)
        let thread = event.origin.sessionID.map { "<session.\($0)@\(domain)>" }
        var extra: [(String, String)] = [("X-Mailer", "msrpgw")]
        // RFC 3834 §5: only what no person wrote (an ops alert) is auto-generated.
        if event.kind == .system { extra.append(("Auto-Submitted", "auto-generated")) }
        if let s = sender?.uri { extra.append(("X-MSRP-From", s)) }
        if let s = event.origin.sessionID { extra.append(("X-MSRP-Session", s)) }
        let type = event.envelope.contentType.lowercased()
        let essence = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? "text/plain"
        let content: MailContent
        if essence == "text/html", let html = String(validating: body, as: UTF8.self) {
            content = .html(html)
        } else if essence.hasPrefix("text/"), let text = String(validating: body, as: UTF8.self) {
            content = .text(text)
        } else {
            let ext = essence.split(separator: "/").last.map { String($0.prefix(10)) } ?? "bin"
            content = .attachment(
                contentType: event.envelope.contentType, filename: "message.\(ext)", bytes: body,
                note: "\(senderName) sent \(essence) (\(body.count) bytes) over MSRP: it is attached.")
        }
        self.init(
            from: MailAddress(name: senderName, address: settings.from), replyTo: Self.replyTo(event, settings: settings),
            to: recipients.map { MailAddress(address: $0) }, subject: subject, date: event.createdAt,
            messageID: "<event.\(event.id)@\(domain)>", inReplyTo: thread, references: thread.map { [$0] } ?? [], content: content,
            extraHeaders: extra)
    }
}

extension MailDraft {
    /// Where a reply goes: back to the MSRP sender through the gateway when
    /// replies come in (not for system messages: nobody to answer), else the
    /// configured `reply_to`.
    static func replyTo(_ event: QueuedEvent, settings: MailSettings) -> MailAddress? {
        if let replies = settings.replies, event.kind == .delivery {
            return MailAddress(address: replies.address(.reply, event: event.id.rawValue))
        }
        return settings.replyTo.map { MailAddress(address: $0) }
    }
}

/// The addresses of a `mailto:` URI (RFC 6068): comma-separated, percent-encoded,
/// with any `?headers` ignored.
func mailtoRecipients(_ target: String) -> [String]? {
    guard target.lowercased().hasPrefix("mailto:") else { return nil }
    let rest = target.dropFirst(7).split(separator: "?", maxSplits: 1).first ?? ""
    let list = rest.split(separator: ",").compactMap { String($0).removingPercentEncoding?.trimmingCharacters(in: .whitespaces) }
    guard !list.isEmpty, list.allSatisfy({ MailAddress(address: $0).isValid }) else { return nil }
    return list
}
