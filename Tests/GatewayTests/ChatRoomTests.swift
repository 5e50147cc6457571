import CPIM
import Events
import Foundation
import GatewayTesting
import MSRP
import Queue
import Testing
@testable import Gateway

/// RFC 7701 chat rooms: a message to the room reaches every other participant,
/// private messages only those named (by address or nickname), unknown ones get
/// a 427 REPORT; nicknames are unique in a room and released with the session.
@Suite(.serialized) struct ChatRoomTests {
    static let room = "sip:room@gw.example"

    func message(from: String, to: [String], text: String) -> String {
        "From: <\(from)>\n" + to.map { "To: <\($0)>\n" }.joined() + "DateTime: 2026-11-24T10:00:00Z\n\nContent-Type: text/plain\n\n\(text)"
    }

    func texts(_ peer: TestPeer) -> [String] {
        peer.messages.compactMap { try? CPIMParser().parse($0.body) }.map { String(decoding: $0.content, as: UTF8.self) }
    }

    @Test func roomMessagesPrivateMessagesAndNicknames() async throws {
        let gw = try await TestGateway(rooms: [Self.room: ChatRoom(nicknames: true)])
        let (alice, bob, carol) = (try TestPeer(group: TestGateway.group), try TestPeer(group: TestGateway.group), try TestPeer(group: TestGateway.group))
        _ = try await alice.join(gw.gateway, peer: "sip:alice@example.com", route: Self.room)
        let bobSession = try await bob.join(gw.gateway, peer: "sip:bob@example.com", route: Self.room)
        _ = try await carol.join(gw.gateway, peer: "sip:carol@example.com", route: Self.room)

        // To the room: everyone else, with the sender's From and the room's To kept.
        #expect(try await alice.send(cpim: message(from: "sip:alice@example.com", to: [Self.room], text: "hello room")) == .accepted)
        await eventually("both others") { texts(bob).contains("hello room") && texts(carol).contains("hello room") }
        let copy = try CPIMParser().parse(try #require(bob.messages.first).body)
        #expect(copy.from?.uri == "sip:alice@example.com")
        #expect(copy.to.first?.uri == Self.room)
        #expect(!texts(alice).contains("hello room"), "not back to the sender")

        // Nicknames: one holder per room, case-insensitively.
        #expect(try await bob.nickname("Bobby") == 200)
        #expect(try await carol.nickname("BOBBY") == 425)
        #expect(try await carol.nickname("cee") == 200)
        // Unusable nicknames: empty, control characters, over 64 characters.
        #expect(try await carol.nickname("") == 400)
        #expect(try await carol.nickname("a\u{1}b") == 400)
        #expect(try await carol.nickname(String(repeating: "n", count: 65)) == 400)

        // Private: by nickname and by address, only to them.
        #expect(try await alice.send(cpim: message(from: "sip:alice@example.com", to: ["sip:bobby@gw.example"], text: "psst bob")) == .accepted)
        #expect(try await alice.send(cpim: message(from: "sip:alice@example.com", to: ["sip:carol@example.com"], text: "psst carol")) == .accepted)
        await eventually("the private messages") { texts(bob).contains("psst bob") && texts(carol).contains("psst carol") }
        try await Task.sleep(for: .milliseconds(300))
        #expect(!texts(carol).contains("psst bob") && !texts(bob).contains("psst carol"))

        // Nobody by that name: 200, then a REPORT 427.
        #expect(try await alice.send(cpim: message(from: "sip:alice@example.com", to: ["sip:nobody@example.com"], text: "hello?"), id: "priv-404") == .accepted)
        await eventually("the 427") { alice.reports.contains { $0.headers.messageID == "priv-404" && $0.headers.status?.code == 427 } }
        #expect(alice.reports.first { $0.headers.messageID == "priv-404" }?.headers.contentType?.essence == "message/cpim",
                "the 427 carries a CPIM wrapper naming who was not found (RFC 7701 §7.2)")
        let report427 = try #require(try await gw.queue.events(EventFilter(kind: .report)).first { $0.envelope.headers["status"] == "427" })
        let wrapper = try #require(MSRPSessionAdapter.unresolvedWrapper(report427))
        let cpim = try CPIMParser().parse(Array(wrapper.readableBytesView))
        #expect(cpim.values("From").first?.contains("sip:alice@example.com") == true)
        #expect(cpim.values("To") == ["<sip:nobody@example.com>"], "only the recipients not found")

        // A spoofed From is refused (403) and goes nowhere.
        let spoofed = try await alice.send(cpim: message(from: "sip:bob@example.com", to: [Self.room], text: "spoofed"))
        guard case .rejected(let code, _) = spoofed, code == 403 else {
            Issue.record("a spoofed From was not refused with 403: \(spoofed)")
            return
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(!texts(carol).contains("spoofed"))

        // Bob leaves (his call ends): his nickname is free again.
        gw.gateway.closeSession(bobSession.id)
        await eventually("bob gone") { gw.gateway.session(bobSession.id) == nil }
        #expect(try await carol.nickname("bobby") == 200)
        await gw.stop()
    }

    /// A nickname is no way into someone else's private messages: a recipient is
    /// matched by whole address first, and a nickname only in the room's own
    /// domain (`sip:nick@gw.example` here), never by another domain's user part.
    @Test func aNicknameCannotCaptureAnotherParticipantsPrivateMessages() async throws {
        let sameDomainRoom = "sip:lounge@example.com"
        let gw = try await TestGateway(rooms: [Self.room: ChatRoom(nicknames: true), sameDomainRoom: ChatRoom(nicknames: true)])
        let (alice, bob, mallory) = (try TestPeer(group: TestGateway.group), try TestPeer(group: TestGateway.group), try TestPeer(group: TestGateway.group))
        _ = try await alice.join(gw.gateway, peer: "sip:alice@example.com", route: Self.room)
        let bobSession = try await bob.join(gw.gateway, peer: "sip:bob@example.com", route: Self.room)
        _ = try await mallory.join(gw.gateway, peer: "sip:mallory@evil.example", route: Self.room)
        #expect(try await bob.nickname("bobby") == 200)
        #expect(try await mallory.nickname("BOB") == 200)

        // To bob's address: bob only.
        #expect(try await alice.send(cpim: message(from: "sip:alice@example.com", to: ["sip:bob@example.com"], text: "for bob")) == .accepted)
        // Bob's user part in another domain: nobody in the room (427), not mallory.
        #expect(try await alice.send(cpim: message(from: "sip:alice@example.com", to: ["sip:bob@other.invalid"], text: "other bob"),
                                     id: "other-bob") == .accepted)
        // Mallory's nickname in the room's own form reaches mallory.
        #expect(try await alice.send(cpim: message(from: "sip:alice@example.com", to: ["sip:bob@gw.example"], text: "for nick bob")) == .accepted)
        await eventually("the private messages") { texts(bob).contains("for bob") && texts(mallory).contains("for nick bob") }
        await eventually("the 427") { alice.reports.contains { $0.headers.messageID == "other-bob" && $0.headers.status?.code == 427 } }
        #expect(!texts(mallory).contains("for bob") && !texts(mallory).contains("other bob"))
        #expect(!texts(bob).contains("for nick bob") && !texts(bob).contains("other bob"))

        // Bob leaves: a message to his address is a 427, not mallory's.
        gw.gateway.closeSession(bobSession.id)
        await eventually("bob gone") { gw.gateway.session(bobSession.id) == nil }
        #expect(try await alice.send(cpim: message(from: "sip:alice@example.com", to: ["sip:bob@example.com"], text: "bob gone"),
                                     id: "bob-gone") == .accepted)
        await eventually("the 427 for bob") { alice.reports.contains { $0.headers.messageID == "bob-gone" && $0.headers.status?.code == 427 } }
        #expect(!texts(mallory).contains("bob gone"))

        // In a room whose domain is the participants' own, a nickname that is another
        // participant's address cannot be taken.
        let (carol, eve) = (try TestPeer(group: TestGateway.group), try TestPeer(group: TestGateway.group))
        _ = try await carol.join(gw.gateway, peer: "sip:carol@example.com", route: sameDomainRoom)
        _ = try await eve.join(gw.gateway, peer: "sip:eve@evil.example", route: sameDomainRoom)
        #expect(try await eve.nickname("Carol") == 425)
        #expect(try await eve.nickname("eve") == 200)
        await gw.stop()
    }

    @Test func nicknameOutsideARoomOrWithNicknamesOffIs501() async throws {
        let gw = try await TestGateway(rooms: [Self.room: ChatRoom(nicknames: false)])
        let inRoom = try TestPeer(group: TestGateway.group), outside = try TestPeer(group: TestGateway.group)
        _ = try await inRoom.join(gw.gateway, route: Self.room)
        _ = try await outside.join(gw.gateway, route: "sip:ops@gw.example")
        #expect(try await inRoom.nickname("x") == 501)
        #expect(try await outside.nickname("x") == 501)
        await gw.stop()
    }
}
