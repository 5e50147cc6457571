import Events
import Foundation
import GatewayTesting
import MSRP
import MSRPTransport
import Queue
import Testing

@testable import Gateway

/// Every way an MSRP message can be refused at the door, with the status the
/// sender gets, and nothing stored for it.
@Suite(.serialized) struct IngressRefusalTests {
    static let cases: [(name: String, body: String, code: Int)] = [
        ("To not configured", cpim(to: "sip:elsewhere@example.net"), 403),
        ("cc not configured", "From: <sip:alice@example.com>\nTo: <sip:ops@gw.example>\ncc: <mailto:someone@example.net>\n\nContent-Type: text/plain\n\nhi", 403),
        ("spoofed From", cpim(from: "sip:mallory@example.com"), 403),
        ("wrapped type not accepted", cpim(type: "image/png"), 415),
        ("no From", "To: <sip:ops@gw.example>\n\nContent-Type: text/plain\n\nhi", 400),
        ("no To", "From: <sip:alice@example.com>\n\nContent-Type: text/plain\n\nhi", 400),
        ("malformed address", "From: Alice sip:alice@example.com>\nTo: <sip:ops@gw.example>\n\nContent-Type: text/plain\n\nhi", 400),
        ("no blank line", "From: <sip:alice@example.com>\nTo: <sip:ops@gw.example>\n", 400),
        ("no inner Content-Type", "From: <sip:alice@example.com>\nTo: <sip:ops@gw.example>\n\nContent-ID: <x>\n\nhi", 400),
        ("malformed inner Content-Type", "From: <sip:alice@example.com>\nTo: <sip:ops@gw.example>\n\nContent-Type: text\n\nhi", 400),
        ("header line without colon", "From <sip:alice@example.com>\n\nContent-Type: text/plain\n\nhi", 400),
    ]

    @Test func eachIsRefusedWithItsCode() async throws {
        let gw = try await TestGateway()
        let peer = try TestPeer(group: TestGateway.group)
        let session = try await peer.join(gw.gateway)
        for (name, body, code) in Self.cases {
            let outcome = try await peer.send(cpim: body, successReport: .no)
            guard case .rejected(let got, let comment) = outcome else {
                Issue.record("\(name): \(outcome)")
                continue
            }
            #expect(got == code, "\(name): \(got) \(comment ?? "")")
            #expect(comment?.isEmpty == false, "\(name): the refusal says why")
        }
        // Refused means not stored.
        #expect(try await gw.queue.events(EventFilter(sessionID: session.id)).isEmpty)
        await gw.stop()
    }

    @Test func plainTextNeedsARoute() async throws {
        let gw = try await TestGateway()
        let peer = try TestPeer(group: TestGateway.group)
        _ = try await peer.join(gw.gateway)
        let outcome = try await peer.session.send(MSRPOutgoingMessage(text: "no CPIM, no route"))
        #expect(outcome == .rejected(code: 403, comment: "no route for text/plain without a CPIM To: send message/cpim"))
        await gw.stop()

        let routed = try await TestGateway()
        let other = try TestPeer(group: TestGateway.group)
        _ = try await other.join(routed.gateway, route: "sip:ops@gw.example")
        #expect(try await other.session.send(MSRPOutgoingMessage(text: "plain text to the session's route")) == .accepted)
        await eventually("the delivery") { routed.adapter.delivered.count == 1 }
        #expect(routed.adapter.delivered.first?.envelope.to == ["sip:ops@gw.example"])
        #expect(routed.adapter.delivered.first?.envelope.from == "sip:alice@example.com")
        await routed.stop()
    }

    @Test func sessionOffersThatCannotBeAnswered() async throws {
        let gw = try await TestGateway()
        let peer = try TestPeer(group: TestGateway.group)
        await #expect(throws: SessionSetupError.self) { _ = try await peer.join(gw.gateway, route: "sip:unknown@gw.example") }
        await #expect(throws: SessionSetupError.self) { _ = try await peer.join(gw.gateway, peer: "not a uri") }
        await gw.stop()
    }

    @Test func configurationErrorsAtSetUp() async throws {
        await #expect(throws: GatewaySetupError.self) { _ = try await TestGateway(routes: ["sip:ops@gw.example": ["gopher://x"]]) }
        await #expect(throws: GatewaySetupError.self) { _ = try await TestGateway(routes: ["not-a-uri": ["https://x"]]) }
        await #expect(throws: GatewaySetupError.self) { _ = try await TestGateway(defaultRoute: "sip:missing@gw.example") }
    }

    @Test func addressesNormalise() {
        #expect(RouteTable.normalize("<SIP:ops@GW.Example;transport=tcp>") == "sip:ops@gw.example")
        #expect(RouteTable.normalize("sip:Ops@gw.example") == "sip:Ops@gw.example")
        #expect(RouteTable.normalize("https://Hooks.example/Path") == "https://Hooks.example/Path")
        #expect(RouteTable.normalize("nothing") == nil)
        #expect(RouteTable.normalize("sip:") == nil)
        // The byte-level reading (the hot path) against cases it must get right.
        let table: [(String, String?)] = [
            ("  sip:Alice@Example.COM  ", "sip:Alice@example.com"), ("\tsip:a@b\n", "sip:a@b"), ("<sip:a@b>", "sip:a@b"), ("<>", nil), ("<", nil),
            (":a@b", nil), ("s p:a@b", nil), ("SIPS:bob@GW;transport=tls", "sips:bob@gw"), ("sip:;x", nil), ("tel:+1555;phone-context=x", "tel:+1555"),
            ("xmpp:Room@Conference.Example/Nick", "xmpp:Room@conference.example/nick"), ("mailto:A@B.c,c@D", "mailto:A@B.c,c@d"),
            ("HTTP://X/Y", "http://X/Y"), ("irc://Libera/Ops", "irc://libera/ops"), ("\u{A0}sip:a@b\u{A0}", "sip:a@b"), ("sip:ü@Ä.example", "sip:ü@ä.example"),
            ("", nil), ("   ", nil), ("sip", nil), ("1x:a", "1x:a"),
        ]
        for (address, expected) in table {
            #expect(RouteTable.normalize(address) == expected, "\(address.debugDescription)")
        }
    }
}

@Suite struct RFC3339Tests {
    @Test func matchesFoundation() {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let d = Date(timeIntervalSince1970: Double(Int64.random(in: 0...4_102_444_800, using: &rng)) + 0.75)
            #expect(RFC3339.string(from: d) == f.string(from: d))
        }
    }
}
