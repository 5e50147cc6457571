import CPIM
import Events
import XMPPWire

/// The stanzas the bridge writes, and what the errors it reads mean for MSRP.
enum XMPPStanzas {
    static let ns = XMPPNamespace.component

    /// A chat message with a receipt request (XEP-0184), a markable flag when
    /// display notifications are wanted (XEP-0333), an origin-id that
    /// stays the same across retries (XEP-0359) and, when it waited, the time it
    /// was said (XEP-0203).
    static func message(from: String, to: String, id: String, originID: String, text: String, delayedSince stamp: String?,
                        markable: Bool = false) -> XMPPElement {
        var children = [
            XMPPElement("body", namespace: ns, text: text),
            XMPPElement("request", namespace: XMPPNamespace.receipts),
            XMPPElement("origin-id", namespace: XMPPNamespace.stanzaID, ["id": originID]),
        ]
        // The sender asked to know when it is shown: the recipient may say so (XEP-0333).
        if markable { children.append(XMPPElement("markable", namespace: XMPPNamespace.chatMarkers)) }
        if let stamp { children.append(XMPPElement("delay", namespace: XMPPNamespace.delay, ["from": JID(from)?.domain, "stamp": stamp])) }
        return XMPPElement("message", namespace: ns, ["from": from, "to": to, "type": "chat", "id": id], children: children)
    }

    /// A message to a MUC room (no receipt request: XEP-0184 §5.3; the room's
    /// reflection is the proof).
    static func groupchat(from: String, to: String, id: String, originID: String, text: String, delayedSince stamp: String?) -> XMPPElement {
        var children = [
            XMPPElement("body", namespace: ns, text: text),
            XMPPElement("origin-id", namespace: XMPPNamespace.stanzaID, ["id": originID]),
        ]
        if let stamp { children.append(XMPPElement("delay", namespace: XMPPNamespace.delay, ["from": JID(from)?.domain, "stamp": stamp])) }
        return XMPPElement("message", namespace: ns, ["from": from, "to": to, "type": "groupchat", "id": id], children: children)
    }

    /// A private message to a MUC occupant (XEP-0045 §7.5), marked as such.
    static func privateMessage(from: String, to: String, id: String, originID: String, text: String) -> XMPPElement {
        XMPPElement("message", namespace: ns, ["from": from, "to": to, "type": "chat", "id": id], children: [
            XMPPElement("body", namespace: ns, text: text),
            XMPPElement("x", namespace: XMPPNamespace.mucUser),
            XMPPElement("origin-id", namespace: XMPPNamespace.stanzaID, ["id": originID]),
        ])
    }

    /// `Alice <sip:alice@example.com>` → `Alice`; `sip:alice@example.com` → `alice`.
    static func speaker(_ from: String?) -> String {
        guard let from, let address = try? CPIMAddress(parsing: from) else { return from ?? "msrp" }
        if let name = address.displayName, !name.isEmpty { return name }
        return XMPPRooms.nickname(for: address.uri)
    }

    /// The XEP-0184 receipt for message `id`.
    static func receipt(from: String, to: String, of id: String) -> XMPPElement {
        XMPPElement("message", namespace: ns, ["from": from, "to": to, "id": "receipt-" + id], children: [
            XMPPElement("received", namespace: XMPPNamespace.receipts, ["id": id]),
        ])
    }

    /// The error reply to a message (RFC 6120 §8.3): its id, from its recipient.
    static func bounce(of id: String?, from: String, to: String, _ error: XMPPStanzaError) -> XMPPElement {
        XMPPElement("message", namespace: ns, ["from": from, "to": to, "type": "error", "id": id], children: [error.element])
    }

    /// What a stanza error means for the MSRP sender: a status for a failure
    /// REPORT, or another try later (the recipient or its server may come back).
    static func outcome(for error: XMPPStanzaError, to target: String) -> DeliveryOutcome {
        let reason = "\(target) refused it: \(error)"
        switch error.condition {
        case "item-not-found", "jid-malformed", "gone":
            return .permanentFailure(code: 404, reason: reason)
        case "forbidden", "not-allowed", "not-authorized", "registration-required", "subscription-required", "policy-violation":
            return .permanentFailure(code: 403, reason: reason)
        case "not-acceptable", "bad-request", "payment-required":
            return .permanentFailure(code: 400, reason: reason)
        case "service-unavailable", "remote-server-not-found", "remote-server-timeout", "recipient-unavailable",
             "resource-constraint", "internal-server-error":
            return .retry(after: nil, reason: reason)
        default:
            return error.type == "wait" ? .retry(after: nil, reason: reason) : .permanentFailure(code: 400, reason: reason)
        }
    }
}
