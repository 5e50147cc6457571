import CPIM
import Events
import Foundation
import MSRP
import Queue

/// The IMDN (RFC 5438) an `.imdn` follow-up event stands for, wrapped in CPIM:
/// from the original recipient (the event's envelope From) to the original
/// sender, quoting the original imdn.Message-ID and DateTime. Shared by the MSRP
/// and page-mode adapters.
public enum IMDNFollowUp {
    /// nil when the original message had no imdn.Message-ID.
    /// - Parameters:
    ///   - identity: the gateway's own URI, when the envelope names nobody.
    ///   - sender: the original sender when the envelope has no To.
    public static func cpim(for event: QueuedEvent, identity: String, sender fallback: String?) -> CPIMMessage? {
        guard let imdnID = event.origin.imdnMessageID else { return nil }
        let recipient = event.envelope.from.flatMap { try? CPIMAddress(parsing: $0) } ?? CPIMAddress(uri: identity)
        let sender = event.envelope.to.first.flatMap { try? CPIMAddress(parsing: $0) } ?? fallback.map { CPIMAddress(uri: $0) }
            ?? CPIMAddress(uri: identity)
        let now = RFC3339.string(from: Date())
        let notification = IMDNNotification(
            messageID: imdnID, dateTime: event.envelope.dateTime ?? now, recipientURI: recipient.uri,
            originalRecipientURI: recipient.uri, status: event.envelope.headers["disposition"] ?? "delivered")
        return notification.cpim(from: recipient, to: sender, notificationID: MSRPIdentifier.make(length: 20), dateTime: now)
    }
}
