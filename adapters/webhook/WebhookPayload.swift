import CPIM
import Events
import Foundation

/// The JSON body of every webhook request (documented in README, "Webhook payload").
///
/// ```json
/// {"type": "message", "id": "7331...", "timestamp": "2026-11-24T10:00:00Z",
///  "data": {"from": {"uri": "sip:alice@example.com", "name": "Alice"},
///           "to": [{"uri": "sip:ops@gw.example"}], "cc": [],
///           "subject": "hi", "datetime": "2026-11-24T09:59:59Z",
///           "content_type": "text/plain", "text": "hello", "size": 5,
///           "headers": {"imdn.Message-ID": "34jk324j"},
///           "origin": {"session": "abc", "message_id": "m1", "imdn_message_id": "34jk324j"}}}
/// ```
/// `text` holds text bodies (text/*, JSON, XML in UTF-8); any other body is in
/// `body_base64` instead.
struct WebhookPayload {
    struct Address {
        var uri: String
        var name: String?
    }

    struct Origin {
        var session: String?
        var message_id: String?
        var imdn_message_id: String?
    }

    struct Message {
        var from: Address?
        var to: [Address]
        var cc: [Address]
        var subject: String?
        var datetime: String?
        var content_type: String
        var text: String?
        var body_base64: String?
        var size: Int
        var headers: [String: String]
        var origin: Origin
    }

    var type: String
    var id: String
    var timestamp: String
    var data: Message

    init(event: QueuedEvent, body: [UInt8], now: Date) {
        func address(_ s: String?) -> Address? {
            guard let s else { return nil }
            if let a = try? CPIMAddress(parsing: s) { return Address(uri: a.uri, name: a.displayName) }
            return Address(uri: s, name: nil)
        }
        let e = event.envelope
        let isText = Self.isText(e.contentType)
        let text = isText ? String(validating: body, as: UTF8.self) : nil
        type = "message"
        id = event.id.description
        timestamp = RFC3339.string(from: now)
        data = Message(
            from: address(e.from), to: e.to.compactMap(address), cc: e.cc.compactMap(address), subject: e.subject, datetime: e.dateTime,
            content_type: e.contentType, text: text, body_base64: text == nil ? Data(body).base64EncodedString() : nil, size: body.count,
            headers: e.headers,
            origin: Origin(session: event.origin.sessionID, message_id: event.origin.messageID, imdn_message_id: event.origin.imdnMessageID))
    }

    static func isText(_ contentType: String) -> Bool {
        // The media type before any parameter, lowercased, spaces and tabs out
        // (none belong in it; Foundation's trimming was a visible cost here).
        let t = String(decoding: contentType.utf8.prefix { $0 != UInt8(ascii: ";") }.filter { $0 != 0x20 && $0 != 0x09 }, as: UTF8.self).lowercased()
        return t.hasPrefix("text/") || t == "application/json" || t.hasSuffix("+json") || t.hasSuffix("+xml") || t == "application/xml"
    }

    /// The payload's JSON, keys in ascending order at every level (the bytes
    /// JSONEncoder wrote with `.sortedKeys` before, so receivers see no change).
    func encoded() -> [UInt8] {
        var json = JSONText(capacity: 384 + data.size + data.size / 3)
        json.beginObject()
        json.key("data")
        data.write(to: &json)
        json.member("id", id)
        json.member("timestamp", timestamp)
        json.member("type", type)
        json.endObject()
        return json.bytes
    }
}

extension WebhookPayload.Address {
    func write(to json: inout JSONText) {
        json.beginObject()
        json.member("name", name)
        json.member("uri", uri)
        json.endObject()
    }
}

extension WebhookPayload.Message {
    func write(to json: inout JSONText) {
        json.beginObject()
        json.member("body_base64", body_base64)
        json.array("cc", cc) { json, a in a.write(to: &json) }
        json.member("content_type", content_type)
        json.member("datetime", datetime)
        if let from {
            json.key("from")
            from.write(to: &json)
        }
        json.member("headers", headers)
        json.key("origin")
        json.beginObject()
        json.member("imdn_message_id", origin.imdn_message_id)
        json.member("message_id", origin.message_id)
        json.member("session", origin.session)
        json.endObject()
        json.member("size", size)
        json.member("subject", subject)
        json.member("text", text)
        json.array("to", to) { json, a in a.write(to: &json) }
        json.endObject()
    }
}
