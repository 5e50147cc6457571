import Events
import NIOConcurrencyHelpers

/// Chat markers (XEP-0333) turned into IMDN `displayed` (RFC 5438). A message
/// whose MSRP sender asked for display notifications goes out `markable`; once
/// delivered it waits here, per conversation (XMPP recipient, our sender JID),
/// with the IMDN it would owe. A `displayed` marker is cumulative: it covers
/// the message it names and every earlier one of the conversation, and each of
/// them gets its IMDN, once. Kept in memory (a restart forgets what waited) and
/// bounded: the oldest go first.
final class XMPPDisplayMarkers: Sendable {
    private struct Waiting {
        /// The message's stanza id and origin-id: a marker may name either.
        let ids: Set<String>
        let imdn: NewEvent
    }

    private let conversations = NIOLockedValueBox<[String: [Waiting]]>([:])
    static let perConversation = 256
    static let conversationsKept = 10_000

    static func key(recipient: String, sender: String) -> String { "\(recipient.lowercased())|\(sender.lowercased())" }

    /// A delivered markable message and the IMDN it owes when displayed.
    func delivered(ids: Set<String>, recipient: String, sender: String, imdn: NewEvent) {
        conversations.withLockedValue { c in
            let key = Self.key(recipient: recipient, sender: sender)
            if c[key] == nil, c.count >= Self.conversationsKept, let any = c.keys.first { c[any] = nil }
            c[key, default: []].append(Waiting(ids: ids, imdn: imdn))
            if let n = c[key]?.count, n > Self.perConversation { c[key]?.removeFirst(n - Self.perConversation) }
        }
    }

    /// `recipient` has displayed the message `id` it got from `sender`: the IMDNs
    /// now owed (nothing when no waiting message has that id).
    func displayed(_ id: String, recipient: String, sender: String) -> [NewEvent] {
        conversations.withLockedValue { c in
            let key = Self.key(recipient: recipient, sender: sender)
            guard let waiting = c[key], let i = waiting.firstIndex(where: { $0.ids.contains(id) }) else { return [] }
            c[key] = i + 1 < waiting.count ? Array(waiting[(i + 1)...]) : nil
            return waiting[...i].map(\.imdn)
        }
    }
}
