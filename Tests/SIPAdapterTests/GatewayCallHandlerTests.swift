import Events
import Foundation
import Gateway
import GatewayTesting
import Logging
import Queue
import SIP
import Testing

@testable import SIPAdapter

/// The SIP side's glue to the gateway, with no SIP sockets: requests as the
/// user agent hands them over, a real gateway (queue, MSRP endpoint) behind.
@Suite(.serialized) struct GatewayCallHandlerTests {
    /// The in-process gateway (`GatewayTesting`) with the handler under test.
    struct Setup {
        let gw: TestGateway
        let handler: GatewayCallHandler
        var gateway: Gateway { gw.gateway }
        var queue: SQLiteEventQueue { gw.queue }

        init() async throws {
            gw = try await TestGateway()
            handler = GatewayCallHandler(gateway: gw.gateway, domain: "gw.example", logger: Logger(label: "test"))
        }

        func stop() async { await gw.stop() }
    }

    static let offer = """
        v=0\r
        o=alice 1 1 IN IP4 127.0.0.1\r
        s=-\r
        c=IN IP4 127.0.0.1\r
        t=0 0\r
        m=message 9 TCP/MSRP *\r
        a=accept-types:message/cpim text/plain\r
        a=path:msrp://127.0.0.1:9/alice1;tcp\r
        a=setup:active\r

        """

    func request(_ method: String, uri: String = "sip:ops@10.0.0.1;transport=udp", from: String = "<sip:alice@example.com>;tag=a1",
                 extra: [SIPHeader] = [], body: String = "", contentType: String? = nil) -> SIPRequest {
        var headers: SIPHeaders = [SIPHeader("From", from), SIPHeader("To", "<\(uri)>"), SIPHeader("Call-ID", "c\(method)"), SIPHeader("CSeq", "1 \(method)")]
        for h in extra { headers.fields.append(h) }
        if let contentType { headers.fields.append(SIPHeader("Content-Type", contentType)) }
        return SIPRequest(method: method, uri: uri, headers: headers, body: Array(body.utf8))
    }

    @Test func aCallIsASessionUntilItEnds() async throws {
        let s = try await Setup()
        let invite = request("INVITE", extra: [SIPHeader("P-Asserted-Identity", "<sip:alice@example.com;user=phone>")])
        let (session, answer) = try await s.handler.offer(invite, sdp: Self.offer)
        #expect(answer.contains("a=path:msrp://127.0.0.1:"))
        #expect(answer.contains("a=accept-types:message/cpim"))
        let live = try #require(s.gateway.liveSessions.first { $0.id == session })
        #expect(live.peerAddress == "sip:alice@example.com")  // the asserted identity, its parameters gone
        #expect(live.route == "sip:ops@gw.example")  // the called user in the configured domain
        let updated = try await s.handler.update(session: session, invite: invite, sdp: Self.offer)
        #expect(updated.contains("m=message"))
        s.handler.end(session: session, reason: "BYE")
        #expect(s.gateway.liveSessions.contains { $0.id == session } == false)
        await s.stop()
    }

    @Test func refusalsMapToSIPStatuses() async throws {
        let s = try await Setup()
        await #expect { try await s.handler.offer(request("INVITE"), sdp: "not sdp") } throws: { ($0 as? SIPRejection)?.code == 488 }
        await #expect { try await s.handler.update(session: "nosuch", invite: request("INVITE"), sdp: Self.offer) } throws: {
            guard let code = ($0 as? SIPRejection)?.code else { return false }
            return code == 404 || code == 488
        }
        await #expect { try await s.handler.message(request("MESSAGE", from: "")) } throws: { ($0 as? SIPRejection)?.code == 400 }
        await #expect { try await s.handler.message(request("MESSAGE", uri: "sip:nobody@gw.example", body: "hi", contentType: "text/plain")) } throws: {
            ($0 as? SIPRejection)?.code == 404
        }
        await s.stop()
    }

    @Test func pageModeMessagesAreStoredOnceEach() async throws {
        let s = try await Setup()
        let message = request("MESSAGE", body: "disk full", contentType: "text/plain")
        try await s.handler.message(message)
        try await s.handler.message(message)  // a retransmission: the same Call-ID, CSeq and tag
        let events = try await s.queue.events(EventFilter(adapter: "webhook"))
        #expect(events.count == 1)
        #expect(events.first?.origin.pageModeSender == "sip:alice@example.com")
        #expect(events.first?.envelope.to == ["sip:ops@gw.example"])
        await s.stop()
    }

    @Test func routesByTheCalledUserInTheDomain() async throws {
        let s = try await Setup()
        #expect(s.handler.route(for: "sip:ops@gw.example") == "sip:ops@gw.example")
        #expect(s.handler.route(for: "sip:ops@192.0.2.1:5060;transport=tcp") == "sip:ops@gw.example")
        #expect(s.handler.route(for: "sip:nobody@gw.example") == nil)
        #expect("<sip:ops@host:5060;transport=udp>".strippingURIParameters() == "sip:ops@host:5060")
        await s.stop()
    }
}
