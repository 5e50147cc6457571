import Events
import Foundation
import GatewayTesting
import Queue
import SMTPInbound
import SMTPServer
import SMTPWire
import Testing

/// The intake against an in-process gateway: what a DSN does to the event it
/// names at each point of its life (the Postfix tests cover the whole path).
@Suite struct MailIntakeTests {
    static let keys = try! MailTokenKeys(secrets: ["the intake tests' secret, long"])

    static func dsn(to address: String, action: String, status: String) -> [UInt8] {
        Array("""
            From: MAILER-DAEMON@relay.test\r
            Auto-Submitted: auto-replied\r
            Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r
            \r
            --b\r
            Content-Type: text/plain\r
            \r
            Sorry.\r
            --b\r
            Content-Type: message/delivery-status\r
            \r
            Reporting-MTA: dns; relay.test\r
            \r
            Final-Recipient: rfc822; bob@example.org\r
            Action: \(action)\r
            Status: \(status)\r
            \r
            --b--\r

            """.utf8)
    }

    @Test func aBounceIsRecordedOnlyOnceTheDeliveryIs() async throws {
        let gw = try await TestGateway()
        let addressing = ReplyAddressing(domain: "reply.test", keys: Self.keys, lifetime: 3600)
        let intake = MailIntake(gateway: gw.gateway, addressing: addressing, messageIDDomain: "gw.example", logger: .init(label: "test"))
        let ids = try await gw.queue.enqueue([NewEvent(
            adapter: "smtp", target: "mailto:bob@example.org",
            origin: EventOrigin(sessionID: "s1", messageID: "m1", successReport: true, failureReport: .yes, imdnMessageID: "i1", imdnDispositions: ["negative-delivery"]),
            envelope: EventEnvelope(from: "<sip:alice@example.com>", to: ["<mailto:bob@example.org>"]), body: .inline(Array("hi".utf8)))])
        let bounce = addressing.address(.bounce, event: ids[0].rawValue)
        let envelope = SMTPEnvelope(mailFrom: "", recipients: [bounce])
        #expect(await intake.checkRecipient(bounce, envelope: envelope) == nil)
        // Leased, no outcome yet: the DSN's sender tries again later.
        _ = try await gw.queue.lease(adapter: "smtp", owner: "t", limit: 1, for: .seconds(30))
        #expect(await intake.store(envelope, mail: Self.dsn(to: bounce, action: "failed", status: "5.1.1")).code == 451)
        // Delivered (the relay's 250): a delay is noted, nothing owed.
        try await gw.queue.complete(ids[0], owner: "t", outcome: .delivered(proof: "250 ok"))
        #expect(await intake.store(envelope, mail: Self.dsn(to: bounce, action: "delayed", status: "4.4.1")).code == 250)
        #expect(try await gw.queue.event(ids[0])?.state == .delivered)
        #expect(try await gw.queue.event(ids[0])?.lastError?.hasPrefix("delayed: bob@example.org 4.4.1") == true)
        // Failed: bounced, a 404 REPORT and IMDN failed owed to the session; a second DSN owes nothing more.
        #expect(await intake.store(envelope, mail: Self.dsn(to: bounce, action: "failed", status: "5.1.1")).code == 250)
        #expect(await intake.store(envelope, mail: Self.dsn(to: bounce, action: "failed", status: "5.1.1")).code == 250)
        let event = try #require(try await gw.queue.event(ids[0]))
        #expect(event.state == .bounced && event.statusCode == 404)
        let owed = try await gw.queue.events(EventFilter(adapter: "msrp", limit: 10))
        #expect(owed.map { "\($0.kind.rawValue) \($0.envelope.headers["status"] ?? $0.envelope.headers["disposition"] ?? "")" }.sorted()
                == ["imdn failed", "report 200", "report 404"])
        // A mail to the bounce address that is no DSN is taken and dropped.
        #expect(await intake.store(envelope, mail: Array("Subject: out of office\r\n\r\nI am away.".utf8)).code == 250)
        // A reply token is no bounce token, and a token of another key is nobody's.
        #expect(await intake.checkRecipient("bounce+" + addressing.address(.reply, event: ids[0].rawValue).dropFirst(6), envelope: envelope)?.code == 550)
        await gw.stop()
    }
}
