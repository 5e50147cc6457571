import Foundation
import IRCClient
import IRCWire
import Logging
import MSRPGatewayClient
import Testing
import TestPeers

/// Puppets through `msrpgw serve` and ngircd: an MSRP participant of a bridged
/// room is a nick of its own on IRC (`alice[m]`), past the limit participants
/// speak through the bot; IRC private messages to a puppet reach only its
/// participant, whose private reply (CPIM To = the IRC user's `irc:` URI)
/// comes from the puppet; the puppet quits when its session ends.
@Suite(.serialized, .enabled(if: Peers.available("ngircd"), "needs apt-get install ngircd"))
struct IRCPuppetTests {
    @Test func participantsAsNicksAndPrivateMessagesBothWays() async throws {
        let server = try await NgircdInstance()
        defer { server.stop() }
        let room = "sip:room@gw.example"
        let gw = try await GatewayProcess(extra: bridgedRoomConfiguration(port: server.port, room: room, extra: "puppets = 1"))
        defer { gw.stop() }
        try await gw.process.waitFor("IRC registered", in: \.stderr, timeout: .seconds(10))
        let (carol, inbox) = try await ircUser(port: server.port, nick: "carol", joining: "#room")
        let clients = try TestClients()
        let alice = clients.client(gw, address: "sip:alice@example.com")
        let bob = GatewayClientNamed.bob(clients, gw)
        try await alice.open(route: room)
        // Alice's puppet joins the channel; Bob, past the limit of one, gets none.
        #expect(await until(.seconds(10)) { inbox.messages.contains { $0.command == "JOIN" && $0.sourceParts?.nick == "alice[m]" } },
                "\(inbox.messages.map(\.serialized))")
        try await bob.open(route: room)
        try await Task.sleep(for: .seconds(1))
        #expect(!inbox.messages.contains { $0.command == "JOIN" && $0.sourceParts?.nick.hasPrefix("bob") == true })

        // In the room: Alice's line comes from her own nick, Bob's through the bot.
        let sent = try await alice.send("hi from alice", to: room, messageID: "puppet-1")
        #expect(sent == .accepted, "\(sent)")
        #expect(try await bob.send("hi from bob", to: room, messageID: "puppet-2") == .accepted)
        #expect(await until(.seconds(10)) {
            inbox.messages.contains { $0.command == "PRIVMSG" && $0.sourceParts?.nick == "alice[m]" && $0.params == ["#room", "hi from alice"] }
                && inbox.messages.contains { $0.sourceParts?.nick == "msrpgw" && $0.params == ["#room", "<Bob> hi from bob"] }
        }, "\(inbox.messages.map(\.serialized))")
        #expect(await alice.wait(timeout: .seconds(5)) { c in c.allReports.contains { $0.headers.messageID == "puppet-1" } })
        // The puppet's line is not passed back to the room: Bob has it once (the room's copy).
        try await Task.sleep(for: .milliseconds(500))
        #expect(bob.allReceived.filter { $0.text == "hi from alice" }.count == 1)
        #expect(!alice.allReceived.contains { $0.text == "hi from alice" })

        // Carol whispers to the puppet: only Alice hears it, from carol's irc: URI.
        try await carol.send(IRCMessage(command: "PRIVMSG", params: ["alice[m]", "psst, alice"])).get()
        #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "psst, alice" } })
        #expect(alice.allReceived.first { $0.text == "psst, alice" }?.cpim?.from?.uri == "irc://test/carol,isnick")
        try await Task.sleep(for: .milliseconds(300))
        #expect(!bob.allReceived.contains { $0.text == "psst, alice" })

        // Alice answers privately: to carol's irc: URI, from the puppet, and off the room.
        #expect(try await alice.send("psst back", to: "irc://test/carol,isnick", messageID: "puppet-3") == .accepted)
        #expect(await until(.seconds(10)) {
            inbox.messages.contains { $0.command == "PRIVMSG" && $0.sourceParts?.nick == "alice[m]" && $0.params == ["carol", "psst back"] }
        }, "\(inbox.messages.map(\.serialized))")
        #expect(await alice.wait(timeout: .seconds(5)) { c in c.allReports.contains { $0.headers.messageID == "puppet-3" && $0.headers.status?.code == 200 } })
        #expect(!bob.allReceived.contains { $0.text == "psst back" })
        // Someone on a network the room is not bridged to is not in the room: 427.
        #expect(try await alice.send("anyone?", to: "irc://elsewhere/dave,isnick", messageID: "puppet-4") == .accepted)
        #expect(await alice.wait(timeout: .seconds(5)) { c in c.allReports.contains { $0.headers.messageID == "puppet-4" && $0.headers.status?.code == 427 } })

        // Alice leaves: her puppet quits, and the room is not told (it was one of ours).
        let (status, _, _) = try await alice.call("DELETE", "/v1/sessions/\(alice.sessionID ?? "")")
        #expect(status == 204 || status == 200)
        #expect(await until(.seconds(10)) { inbox.messages.contains { $0.command == "QUIT" && $0.sourceParts?.nick == "alice[m]" } })
        try await Task.sleep(for: .milliseconds(500))
        #expect(!bob.allReceived.contains { $0.system && $0.text.contains("alice[m]") }, "\(bob.allReceived.map(\.text))")
        // Bob now gets the freed puppet slot.
        #expect(await until(.seconds(10)) { inbox.messages.contains { $0.command == "JOIN" && $0.sourceParts?.nick == "bob[m]" } })
        await carol.quit()
        await clients.shutdown()
    }
}
