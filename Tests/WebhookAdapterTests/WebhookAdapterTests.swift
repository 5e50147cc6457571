import Events
import Foundation
import Testing

@testable import WebhookAdapter

@Suite struct WebhookSignerTests {
    /// The Standard Webhooks specification's example.
    @Test func matchesTheSpecificationExample() throws {
        let signer = try WebhookSigner(secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        let sig = signer.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1614265330, body: Array(#"{"test": 2432232314}"#.utf8))
        #expect(sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func oneSignaturePerSecretForRotation() throws {
        let signer = try WebhookSigner(secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + Data(repeating: 7, count: 32).base64EncodedString()])
        let parts = signer.signature(id: "msg_1", timestamp: 1, body: []).split(separator: " ")
        #expect(parts.count == 2)
        #expect(parts.allSatisfy { $0.hasPrefix("v1,") })
    }

    @Test func badSecretsAreRefused() {
        for s in ["", "whsec_", "whsec_not base64!", "whsec_" + Data(repeating: 1, count: 8).base64EncodedString()] {
            #expect(throws: WebhookSigner.SecretError.self, "\(s)") { _ = try WebhookSigner(secrets: [s]) }
        }
    }
}

@Suite struct WebhookResponsePolicyTests {
    static let table: [(Int, String?, DeliveryOutcome)] = [
        (200, nil, .delivered(proof: "HTTP 200")),
        (204, nil, .delivered(proof: "HTTP 204")),
        (410, nil, .deadLetter(code: 403, reason: "webhook answered HTTP 410 Gone: endpoint disabled")),
        (429, "120", .retry(after: .seconds(120), reason: "webhook answered HTTP 429")),
        (503, nil, .retry(after: nil, reason: "webhook answered HTTP 503")),
        (502, "garbage", .retry(after: nil, reason: "webhook answered HTTP 502")),
        (504, "999999", .retry(after: .seconds(86400), reason: "webhook answered HTTP 504")),
        (500, nil, .retry(after: nil, reason: "webhook answered HTTP 500")),
        (400, nil, .permanentFailure(code: 400, reason: "webhook answered HTTP 400")),
        (401, nil, .permanentFailure(code: 403, reason: "webhook answered HTTP 401")),
        (413, nil, .permanentFailure(code: 413, reason: "webhook answered HTTP 413")),
        (415, nil, .permanentFailure(code: 415, reason: "webhook answered HTTP 415")),
        (422, nil, .permanentFailure(code: 403, reason: "webhook answered HTTP 422")),
        (301, nil, .permanentFailure(code: 403, reason: "webhook answered HTTP 301: redirects are not followed")),
        (408, nil, .retry(after: nil, reason: "webhook answered HTTP 408")),
    ]

    @Test(arguments: table.indices)
    func statusMeans(_ i: Int) {
        let (status, retryAfter, expected) = Self.table[i]
        #expect(WebhookResponsePolicy.outcome(status: status, retryAfter: retryAfter) == expected)
    }

    @Test func retryAfterAsAnHTTPDate() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let later = "Tue, 14 Nov 2023 22:14:20 GMT"  // 1_700_000_060
        #expect(WebhookResponsePolicy.delay(retryAfter: later, now: now) == .seconds(60))
    }
}

@Suite struct WebhookPayloadTests {
    func event(_ type: String, _ body: [UInt8]) -> QueuedEvent {
        QueuedEvent(
            id: EventID(rawValue: 42), kind: .delivery, state: .leased, adapter: "webhook", target: "https://x/y",
            origin: EventOrigin(sessionID: "s1", messageID: "m1", imdnMessageID: "i1"),
            envelope: EventEnvelope(from: "Alice <sip:alice@example.com>", to: ["<sip:ops@gw.example>"], subject: "hi", dateTime: "2026-11-24T10:00:00Z", contentType: type, headers: ["x.Y": "z"]),
            body: .inline(body), parent: nil, attempts: 1, nextAttemptAt: Date(), leaseOwner: nil, lastError: nil, proof: nil, statusCode: nil,
            createdAt: Date(), updatedAt: Date())
    }

    @Test func textBodiesAsTextOthersAsBase64() throws {
        let text = try JSONSerialization.jsonObject(with: Data(WebhookPayload(event: event("text/plain;charset=UTF-8", Array("héllo".utf8)), body: Array("héllo".utf8), now: Date()).encoded())) as? [String: Any]
        let data = try #require(text?["data"] as? [String: Any])
        #expect(data["text"] as? String == "héllo")
        #expect(data["body_base64"] == nil)
        #expect((data["from"] as? [String: Any])?["name"] as? String == "Alice")
        #expect((data["to"] as? [[String: Any]])?.first?["uri"] as? String == "sip:ops@gw.example")
        #expect((data["origin"] as? [String: Any])?["imdn_message_id"] as? String == "i1")
        #expect(text?["id"] as? String == "42")

        let bin = try JSONSerialization.jsonObject(with: Data(WebhookPayload(event: event("image/png", [0, 255, 1]), body: [0, 255, 1], now: Date()).encoded())) as? [String: Any]
        let binData = try #require(bin?["data"] as? [String: Any])
        #expect(binData["body_base64"] as? String == "AP8B")
        #expect(binData["text"] == nil)
    }

    /// Hostile and random text in every string field comes back unchanged
    /// through a JSON parser (the payload is written by hand: `JSONText`).
    @Test func everyStringSurvivesAJSONParser() throws {
        var texts = ["", "plain", "quote \" backslash \\ slash /", "nul \u{0} bell \u{7} esc \u{1B} del \u{7F}", "crlf \r\n tab \t ff \u{C} bs \u{8}",
                     "héllo ✓ 𝄞 \u{2028}\u{2029}", "\\u0041 not an escape", "}]},\"x\":1"]
        // (No U+FEFF: Foundation's JSON parser drops it inside strings, whoever wrote them.)
        var random = SystemRandomNumberGenerator()
        let pool: [Unicode.Scalar] = (0..<0x80).compactMap(Unicode.Scalar.init) + ["é", "✓", "𝄞", "\u{2028}"]
        for _ in 0..<200 {
            texts.append(String(String.UnicodeScalarView((0..<Int.random(in: 0...40, using: &random)).map { _ in pool.randomElement(using: &random) ?? "a" })))
        }
        for t in texts {
            // Not a literal `[t: t, "a": t]`: a random "a" made it a duplicate key (a trap).
            var headers = ["a": t]
            headers[t] = t
            let e = QueuedEvent(
                id: EventID(rawValue: 7), kind: .delivery, state: .leased, adapter: "webhook", target: "https://x/y",
                origin: EventOrigin(sessionID: t, messageID: t, imdnMessageID: t),
                envelope: EventEnvelope(from: t, to: [t, "<sip:b@x>"], cc: [t], subject: t, dateTime: t, contentType: "text/plain", headers: headers),
                body: .inline(Array(t.utf8)), parent: nil, attempts: 1, nextAttemptAt: Date(), leaseOwner: nil, lastError: nil, proof: nil, statusCode: nil,
                createdAt: Date(), updatedAt: Date())
            let bytes = WebhookPayload(event: e, body: Array(t.utf8), now: Date()).encoded()
            let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], "\(t.debugDescription)")
            let data = try #require(object["data"] as? [String: Any])
            #expect(data["text"] as? String == t)
            #expect(data["subject"] as? String == t)
            #expect(data["datetime"] as? String == t)
            #expect((data["headers"] as? [String: String])?[t] == t)
            #expect((data["origin"] as? [String: Any])?["session"] as? String == t)
            #expect((data["to"] as? [[String: Any]])?.count == 2)
            #expect(data["size"] as? Int == t.utf8.count)
        }
    }

    @Test func endpointValidation() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        #expect(throws: WebhookConfigurationError.self) { try WebhookEndpoint(name: "a", url: "ftp://x/", secrets: [secret]).validate() }
        #expect(throws: WebhookConfigurationError.self) { try WebhookEndpoint(name: "a", url: "https://x/", secrets: []).validate() }
        #expect(throws: WebhookConfigurationError.self) { try WebhookEndpoint(name: "a", url: "https:///nohost", secrets: [secret]).validate() }
        #expect(WebhookEndpoint(name: "a", url: "http://10.0.0.1/", secrets: [secret]).isCleartextOffHost)
        #expect(!WebhookEndpoint(name: "a", url: "http://127.0.0.1:9/", secrets: [secret]).isCleartextOffHost)
    }
}
