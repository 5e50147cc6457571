import CPIM
import Events
import Foundation
import GatewayTesting
import MSRP
import MSRPTransport
import Queue
import SDP
import NIOConcurrencyHelpers
import Testing

@testable import Gateway

/// MSRP in, events through the queue, the scripted adapter out, and the REPORTs
/// and IMDNs back over the session: the gateway's whole loop, in process.
@Suite(.serialized) struct GatewayFlowTests {
    @Test func deliveredMessageOwesASuccessReportAndAnIMDN() async throws {
        let gw = try await TestGateway()
        let peer = try TestPeer(group: TestGateway.group)
        let session = try await peer.join(gw.gateway)
        let text = cpim()
        #expect(try await peer.send(cpim: text, id: "msg-1") == .accepted)
        // The 200 came after the commit: the event is there.
        let stored = try await gw.queue.events(EventFilter(sessionID: session.id))
        #expect(stored.count >= 1)
        await eventually("a REPORT and an IMDN") { peer.reports.count == 1 && peer.imdns.count == 1 }
        let report = try #require(peer.reports.first)
        #expect(report.headers.messageID == "msg-1")
        #expect(report.headers.status?.code == 200)
        let size = Int64(text.replacingOccurrences(of: "\n", with: "\r\n").utf8.count)
        #expect(report.headers.byteRange == ByteRange(start: 1, end: size, total: size))
        #expect(report.toPath == [peer.session.localURI])
        let imdn = try #require(peer.imdns.first)
        #expect(imdn.status == "delivered")
        #expect(imdn.messageID == "imdn-1")
        #expect(imdn.dateTime == "2026-11-24T10:00:00Z")
        #expect(imdn.recipientURI == "sip:ops@gw.example")
        let event = try #require(gw.adapter.delivered.first)
        #expect(event.target == "https://hooks.test/ops")
        #expect(event.envelope.from == "Alice <sip:alice@example.com>")
        #expect(event.envelope.contentType == "text/plain")
        #expect(event.body == .inline(Array("hello".utf8)))
        #expect(event.envelope.headers["imdn.Message-ID"] == "imdn-1")
        await gw.stop()
    }

    /// RFC 4975 §6: a SEND repeated after its message was delivered (same
    /// Message-ID, a new transaction) is one delivery, and still gets its 200 and
    /// a success REPORT of its own.
    @Test func repeatedSendAfterDeliveryGetsItsReportAgain() async throws {
        let gw = try await TestGateway()
        let peer = try TestPeer(group: TestGateway.group)
        _ = try await peer.join(gw.gateway)
        #expect(try await peer.send(cpim: cpim(imdn: nil), id: "msg-dup") == .accepted)
        await eventually("the first REPORT") { peer.reports.count == 1 }
        #expect(try await peer.send(cpim: cpim(imdn: nil), id: "msg-dup") == .accepted)
        await eventually("a REPORT for the repeat") { peer.reports.count == 2 }
        #expect(peer.reports.allSatisfy { $0.headers.messageID == "msg-dup" && $0.headers.status?.code == 200 })
        #expect(gw.adapter.delivered.count == 1)
        // A repeat that asks for no success REPORT gets none.
        #expect(try await peer.send(cpim: cpim(imdn: nil), id: "msg-dup", successReport: .no) == .accepted)
        #expect(try await peer.send(cpim: cpim(imdn: nil), id: "msg-next") == .accepted)
        await eventually("the next message's REPORT") { peer.reports.contains { $0.headers.messageID == "msg-next" } }
        #expect(peer.reports.filter { $0.headers.messageID == "msg-dup" }.count == 2)
        await gw.stop()
    }

    @Test func permanentFailureOwesAFailureReportAndIMDNFailed() async throws {
        let gw = try await TestGateway()
        gw.adapter.script("https://hooks.test/ops", [.permanentFailure(code: 403, reason: "HTTP 403")])
        let peer = try TestPeer(group: TestGateway.group)
        _ = try await peer.join(gw.gateway)
        #expect(try await peer.send(cpim: cpim(), id: "msg-2", successReport: .no) == .accepted)
        await eventually("a failure REPORT and an IMDN failed") { peer.reports.count == 1 && peer.imdns.count == 1 }
        #expect(peer.reports.first?.headers.status?.code == 403)
        #expect(peer.imdns.first?.status == "failed")
        await gw.stop()
    }

    @Test func failureReportNoMeansNoResponseAndNoReportEver() async throws {
        let gw = try await TestGateway()
        gw.adapter.script("https://hooks.test/ops", [.permanentFailure(code: 403, reason: "HTTP 403")])
        let peer = try TestPeer(group: TestGateway.group)
        _ = try await peer.join(gw.gateway)
        #expect(try await peer.send(cpim: cpim(imdn: nil), id: "msg-3", successReport: .no, failureReport: .no) == .sent)
        await eventually("the delivery") { gw.adapter.delivered.count == 1 }
        try await Task.sleep(for: .milliseconds(300))
        #expect(peer.reports.isEmpty)
        #expect(peer.messages.isEmpty)
        await gw.stop()
    }

    @Test func retriesSpentOwe408() async throws {
        let gw = try await TestGateway()
        gw.adapter.script("https://hooks.test/ops", [.retry(after: .zero, reason: "HTTP 503")])
        let peer = try TestPeer(group: TestGateway.group)
        _ = try await peer.join(gw.gateway)
        #expect(try await peer.send(cpim: cpim(), id: "msg-4", successReport: .no) == .accepted)
        await eventually("a 408 REPORT") { peer.reports.first?.headers.status?.code == 408 }
        #expect(gw.adapter.delivered.count == 3)
        let dead = try await gw.queue.events(EventFilter(state: .dead))
        #expect(dead.count == 1)
        #expect(dead.first?.lastError?.contains("HTTP 503") == true)
        await gw.stop()
    }

    /// A message stored while its endpoint has a free slot is stored already
    /// leased and started by the ingress; stopping waits for that delivery and
    /// records its outcome (nothing is given back to be sent a second time).
    @Test func aDeliveryStartedAtStoreFinishesBeforeTheGatewayStops() async throws {
        let gw = try await TestGateway()
        gw.adapter.hold("https://hooks.test/ops")
        let peer = try TestPeer(group: TestGateway.group)
        _ = try await peer.join(gw.gateway)
        #expect(try await peer.send(cpim: cpim(imdn: nil), id: "held-1", successReport: .no) == .accepted)
        await eventually("the delivery under way") { gw.adapter.delivered.count == 1 }
        let event = try #require(gw.adapter.delivered.first)
        #expect(event.state == .leased && event.attempts == 1)
        // The delivery is let go 300 ms into the stop, which must not end before.
        let released = NIOLockedValueBox(false)
        let releaser = Task { [adapter = gw.adapter] in
            try? await Task.sleep(for: .milliseconds(300))
            released.withLockedValue { $0 = true }
            adapter.releaseHeld()
        }
        await gw.stop(keepingFiles: true)
        #expect(released.withLockedValue { $0 }, "the gateway stopped with a delivery in flight")
        await releaser.value
        #expect(try await gw.queue.event(event.id)?.state == .delivered)
        try? FileManager.default.removeItem(atPath: gw.directory)
        #expect(gw.adapter.delivered.count == 1)
    }

    @Test func sameMessageIDAgainIsOneDelivery() async throws {
        let gw = try await TestGateway()
        let peer = try TestPeer(group: TestGateway.group)
        _ = try await peer.join(gw.gateway)
        #expect(try await peer.send(cpim: cpim(imdn: nil), id: "dup-1", successReport: .no) == .accepted)
        #expect(try await peer.send(cpim: cpim(imdn: nil), id: "dup-1", successReport: .no) == .accepted)
        await eventually("the delivery") { gw.adapter.delivered.count == 1 }
        try await Task.sleep(for: .milliseconds(200))
        #expect(gw.adapter.delivered.count == 1)
        await gw.stop()
    }

    @Test func fanOutAndLargeBodiesAsFiles() async throws {
        let gw = try await TestGateway(inlineBodyLimit: 1024)
        let peer = try TestPeer(group: TestGateway.group)
        _ = try await peer.join(gw.gateway)
        let big = String(repeating: "0123456789abcdef", count: 20_000)  // 320 KB: spooled by the assembler, stored as files
        #expect(try await peer.send(cpim: cpim(to: "sip:both@gw.example", imdn: nil, body: big), id: "big-1", successReport: .no) == .accepted)
        await eventually("two deliveries") { gw.adapter.delivered.count == 2 }
        let paths = gw.adapter.delivered.compactMap { e -> String? in if case .file(let p, _) = e.body { return p } else { return nil } }
        #expect(paths.count == 2 && Set(paths).count == 2, "one file per event")
        for p in paths { #expect(FileManager.default.contents(atPath: p) == Data(big.utf8)) }
        #expect(Set(gw.adapter.delivered.map(\.target)) == ["https://hooks.test/a", "https://hooks.test/b"])
        await gw.stop()
    }

    @Test func reportForAnEndedSessionIsUndeliverableNotRetried() async throws {
        let gw = try await TestGateway()
        gw.adapter.script("https://hooks.test/ops", [.retry(after: .milliseconds(300), reason: "slow"), .delivered(proof: "200")])
        let peer = try TestPeer(group: TestGateway.group)
        let session = try await peer.join(gw.gateway)
        #expect(try await peer.send(cpim: cpim(imdn: nil), id: "gone-1") == .accepted)
        gw.gateway.closeSession(session.id)
        await eventually("the report event to fail") {
            (try? await gw.queue.events(EventFilter(kind: .report)).first?.state) == .failed
        }
        let report = try #require(try await gw.queue.events(EventFilter(kind: .report)).first)
        #expect(report.lastError?.hasPrefix("report undeliverable") == true)
        #expect(report.attempts == 1)
        await gw.stop()
    }

    @Test func imdnIsNotSentToAPeerThatDoesNotAcceptIt() async throws {
        let gw = try await TestGateway()
        let peer = try TestPeer(group: TestGateway.group)
        _ = try await peer.join(gw.gateway, acceptWrapped: ["text/plain"])
        #expect(try await peer.send(cpim: cpim(), id: "noimdn-1") == .accepted)
        await eventually("the IMDN event to fail") { (try? await gw.queue.events(EventFilter(kind: .imdn)).first?.state) == .failed }
        #expect(try await gw.queue.events(EventFilter(kind: .imdn)).first?.statusCode == 415)
        #expect(peer.imdns.isEmpty)
        #expect(peer.reports.count == 1)
        await gw.stop()
    }

    @Test func systemMessagesWaitForThePeersSession() async throws {
        let gw = try await TestGateway()
        let ids = try await gw.gateway.submit(OutboundMessage(to: .address("<SIP:alice@EXAMPLE.com>"), text: "maintenance at 22:00", system: true))
        await eventually("a first try") { (try? await gw.queue.event(ids[0]))?.lastError?.contains("no live MSRP session") == true }
        let waiting = try #require(try await gw.queue.event(ids[0]))
        #expect(waiting.state == .queued)
        #expect(waiting.attempts == 0, "waiting for a session is not an attempt")
        // The peer comes online: what waited for it goes at once, not at the next retry.
        let peer = try TestPeer(group: TestGateway.group)
        _ = try await peer.join(gw.gateway)
        await eventually("the system message") { !peer.messages.isEmpty }
        let m = try #require(peer.messages.first)
        #expect(m.head.headers.failureReport == .no)
        #expect(m.head.headers.successReport == .no)
        let cpim = try CPIMParser().parse(m.body)
        #expect(String(decoding: cpim.content, as: UTF8.self) == "maintenance at 22:00")
        #expect(cpim.from?.uri == "sip:gateway@gw.example")
        // The outcome is recorded after the peer's 200, a moment after it has the message.
        await eventually("the event delivered") { (try? await gw.queue.event(ids[0]))?.state == .delivered }
        #expect(try await gw.queue.event(ids[0])?.state == .delivered)
        await gw.stop()
    }

    @Test func aSessionNobodyConnectsToIsClosed() async throws {
        let gw = try await TestGateway(bindTimeout: .milliseconds(300))
        let peer = try TestPeer(group: TestGateway.group)
        let offer = MSRPOfferAnswer.answerDescription(
            media: MSRPMedia(port: 9, path: ["msrp://127.0.0.1:9/never;tcp"], acceptTypes: ["message/cpim"], setup: .active),
            host: "127.0.0.1", sessionVersion: 1)
        let (session, _) = try await gw.gateway.createSession(offer: offer)
        #expect(gw.gateway.session(session.id) != nil)
        await eventually("the unbound session to close") { gw.gateway.session(session.id) == nil }
        _ = peer
        await gw.stop()
    }
}
