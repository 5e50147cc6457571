import Foundation
import IRCClient
import MSRPGatewayClient
import IRCWire
import Logging
import Testing
import TestPeers

/// MSRP and IRC through `msrpgw serve`: an MSRP client's messages reach a
/// channel on ngircd as `<Alice> text`, long ones split to fit, a system message
/// as a NOTICE, what is said in the channel comes back to the route's session, the sender gets its success REPORT once the bot has its proof,
/// and a server restart in the middle loses nothing and doubles nothing.
@Suite(.serialized, .enabled(if: Peers.available("ngircd"), "needs apt-get install ngircd"))
struct IRCBridgeTests {
    @Test func msrpMessagesReachTheChannelAndSurviveARestart() async throws {
        var server = try await NgircdInstance()
        let port = server.port
        defer { server.stop() }
        let gw = try await GatewayProcess(extra: """
            [irc.test]
            host = "127.0.0.1"
            port = \(port)
            tls = false
            nick = "msrpgw"
            channels = ["#ops"]
            lines_per_second = 20
            # Reconnect backoff as in production, not instantly.
            reconnect_min = "4s"
            bridges = { "#ops" = "sip:ops@gw.example" }
            [routes]
            "sip:ops@gw.example" = ["irc://test/ops"]
            "sip:dave@gw.example" = ["irc://test/dave,isnick"]
            "sip:carol@gw.example" = ["irc://test/carol,isnick"]
            """, queue: "retry_schedule = [\"0s\", \"1s\"]\nmax_attempts = 60\njitter = false")
        defer { gw.stop() }
        try await gw.process.waitFor("IRC registered", in: \.stderr, timeout: .seconds(10))

        func human() async throws -> (IRCConnection, IRCConnectionTests.Inbox) {
            try await ircUser(port: port, nick: "carol", joining: "#ops")
        }
        var (carol, inbox) = try await human()
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open(route: "sip:ops@gw.example")

        #expect(try await alice.send("hello IRC ✓", to: "sip:ops@gw.example", messageID: "irc-1") == .accepted)
        #expect(await until(.seconds(10)) { inbox.received.contains("<Alice> hello IRC ✓") }, "\(inbox.received)")
        #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReports.contains { $0.headers.messageID == "irc-1" } })

        // IRC → MSRP: what carol says in the channel reaches the route's session, from her irc: URI.
        try await carol.send(IRCMessage(command: "PRIVMSG", params: ["#ops", "hi from IRC ✓"])).get()
        try await carol.send(IRCMessage(command: "PRIVMSG", params: ["#ops", "\u{1}ACTION waves\u{1}"])).get()
        #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "* carol waves" } })
        let fromIRC = try #require(alice.allReceived.first { $0.text == "hi from IRC ✓" })
        #expect(fromIRC.cpim?.from?.uri == "irc://test/carol,isnick")
        #expect(!alice.allReceived.contains { $0.text.contains("hello IRC") }, "our own line does not come back")

        // A long message: several lines, none over 512 bytes on the wire, words intact.
        let long = (1...150).map { "wörd\($0)" }.joined(separator: " ")
        #expect(try await alice.send(long, to: "sip:ops@gw.example", messageID: "irc-2") == .accepted)
        #expect(await until(.seconds(10)) { inbox.received.filter { $0.hasPrefix("<Alice> wörd") || $0.contains("wörd150") }.count >= 3 })
        let pieces = inbox.received.filter { $0.hasPrefix("<Alice> ") && $0.contains("wörd") }.map { String($0.dropFirst(8)) }
        #expect(pieces.joined(separator: " ") == long, "\(pieces)")
        #expect(inbox.messages.allSatisfy { $0.serialized.utf8.count <= 510 })

        // A system message (an alert through the API) is a NOTICE.
        let (status, _, _) = try await alice.call("POST", "/v1/messages", body: #"{"to": "sip:ops@gw.example", "text": "db1 disk 95%", "system": true}"#)
        #expect(status == 202)
        #expect(await until(.seconds(10)) { inbox.messages.contains { $0.command == "NOTICE" && $0.params == ["#ops", "db1 disk 95%"] } })

        // A nick that is not online: the server's 401 is no proof; the event waits with the reason.
        #expect(try await alice.send("are you there, dave?", to: "sip:dave@gw.example", messageID: "irc-4") == .accepted)
        #expect(await until(.seconds(10)) {
            let (_, events, _) = (try? await alice.call("GET", "/v1/events?adapter=irc")) ?? (0, "", [:])
            return events.contains("401")
        }, "the 401 is the event's last error")

        // The server goes away; a message for carol sent meanwhile waits (no server, then
        // 401 until she is back) and reaches her once. To her nick, not the channel: a line
        // in a channel nobody has rejoined yet would count as delivered, and be unseen.
        await server.stop()
        #expect(try await alice.send("sent while IRC was down", to: "sip:carol@gw.example", messageID: "irc-3") == .accepted)
        try await Task.sleep(for: .seconds(1))
        server = try await NgircdInstance(port: port)
        (carol, inbox) = try await human()
        #expect(await until(.seconds(30)) { inbox.received.contains("<Alice> sent while IRC was down") },
                "\(inbox.received)\n\(gw.process.stderr.components(separatedBy: "\n").filter { $0.contains("irc") || $0.contains("IRC") }.suffix(30).joined(separator: "\n"))")
        try await Task.sleep(for: .seconds(2))
        #expect(inbox.received.filter { $0 == "<Alice> sent while IRC was down" }.count == 1, "once: \(inbox.received)")
        await carol.quit()
        await clients.shutdown()
    }
}

/// The same bridge against InspIRCd over TLS with IRCv3: the delivery proof is
/// the echo of our line, and IRC → MSRP messages carry the server's time.
@Suite(.serialized, .enabled(if: Peers.available("inspircd"), "needs apt-get install inspircd"))
struct IRCv3BridgeTests {
    @Test func echoIsTheProofAndServerTimeTheDateTime() async throws {
        let server = try await InspircdInstance()
        defer { server.stop() }
        let gw = try await GatewayProcess(extra: """
            [irc.test]
            host = "127.0.0.1"
            port = \(server.tlsPort)
            ca_file = "\(server.certificates.caPath)"
            nick = "msrpgw"
            channels = ["#ops"]
            lines_per_second = 0
            bridges = { "#ops" = "sip:ops@gw.example" }
            [routes]
            "sip:ops@gw.example" = ["irc://test/ops"]
            """)
        defer { gw.stop() }
        try await gw.process.waitFor("IRC registered", in: \.stderr, timeout: .seconds(10))
        let (carol, inbox) = try await ircUser(port: server.tlsPort, nick: "carol", joining: "#ops", tlsCA: server.certificates.caPath)
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open(route: "sip:ops@gw.example")

        #expect(try await alice.send("over TLS", to: "sip:ops@gw.example", messageID: "v3-1") == .accepted)
        #expect(await until(.seconds(10)) { inbox.received.contains("<Alice> over TLS") })
        #expect(await until(.seconds(10)) {
            let (_, events, _) = (try? await alice.call("GET", "/v1/events?adapter=irc")) ?? (0, "", [:])
            return events.contains("echoed by test")
        }, "the echo is the proof")

        try await carol.send(IRCMessage(command: "PRIVMSG", params: ["#ops", "timed"])).get()
        #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "timed" } })
        let dated = try #require(alice.allReceived.first { $0.text == "timed" })
        let dateTime = try #require(dated.cpim?.dateTime)
        #expect(dateTime.hasSuffix("Z") && dateTime.contains("."), "the server-time tag, milliseconds and all: \(dateTime)")
        await carol.quit()
        await clients.shutdown()
    }
}

/// A chat room with two MSRP participants bridged to an IRC channel, through
/// `msrpgw serve` and ngircd: room messages reach the other participant and the
/// channel, the channel reaches both participants, a private message only its
/// recipient.
@Suite(.serialized, .enabled(if: Peers.available("ngircd"), "needs apt-get install ngircd"))
struct ChatRoomBridgeTests {
    @Test func twoParticipantsAndAChannel() async throws {
        let server = try await NgircdInstance()
        defer { server.stop() }
        let room = "sip:room@gw.example"
        let gw = try await GatewayProcess(extra: bridgedRoomConfiguration(port: server.port, room: room))
        defer { gw.stop() }
        try await gw.process.waitFor("IRC registered", in: \.stderr, timeout: .seconds(10))
        let (carol, channel) = try await ircUser(port: server.port, nick: "carol", joining: "#room")
        let clients = try TestClients()
        let alice = clients.client(gw, address: "sip:alice@example.com")
        let bob = GatewayClientNamed.bob(clients, gw)
        try await alice.open(route: room)
        try await bob.open(route: room)

        #expect(try await alice.send("hi all", to: room, messageID: "room-1") == .accepted)
        #expect(await bob.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "hi all" } })
        #expect(await until(.seconds(10)) { channel.received.contains("<Alice> hi all") })
        #expect(bob.allReceived.first { $0.text == "hi all" }?.cpim?.from?.uri == "sip:alice@example.com")

        // Channel events as system messages: dave comes, sets the topic, goes; erin
        // comes, changes her nick and quits (those two name no channel: the bot's
        // roster knows she was in #room). Someone never in the channel quits unheard.
        let (stranger, _) = try await ircUser(port: server.port, nick: "stranger")
        for nick in ["dave", "erin"] {
            let (human, _) = try await ircUser(port: server.port, nick: nick, joining: "#room")
            if nick == "dave" {
                try await human.send(IRCMessage(command: "TOPIC", params: ["#room", "release day"])).get()
                try await human.send(IRCMessage(command: "PART", params: ["#room", "lunch"])).get()
                #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "dave left #room (lunch)" } })
                await human.quit()
            } else {
                try await Task.sleep(for: .milliseconds(200))
                try await human.send(IRCMessage(command: "NICK", params: ["erin2"])).get()
                try await Task.sleep(for: .milliseconds(200))
                await stranger.quit("not here")
                await human.quit("home time")
                #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text.hasPrefix("erin2 quit") } })
            }
        }
        let events = alice.allReceived.filter(\.system).map(\.text)
        #expect(events.contains("dave joined #room") && events.contains("dave set the topic of #room: release day"), "\(events)")
        #expect(events.contains("erin is now known as erin2") && events.contains { $0.hasPrefix("erin2 quit (") && $0.contains("home time") }, "\(events)")
        #expect(!events.contains { $0.contains("stranger") }, "\(events)")

        try await carol.send(IRCMessage(command: "PRIVMSG", params: ["#room", "hello from IRC"])).get()
        #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "hello from IRC" } })
        #expect(await bob.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "hello from IRC" } })

        #expect(try await alice.send("just for bob", to: "sip:bob@example.com", messageID: "room-2") == .accepted)
        #expect(await bob.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "just for bob" } })
        try await Task.sleep(for: .milliseconds(500))
        #expect(!channel.received.contains { $0.contains("just for bob") }, "a private message stays off the channel")
        await carol.quit()
        await clients.shutdown()
    }
}

/// A second MSRP client of the same gateway.
enum GatewayClientNamed {
    static func bob(_ clients: TestClients, _ gw: GatewayProcess) -> GatewayClient {
        GatewayClient(name: "Bob", address: "sip:bob@example.com", endpoint: clients.endpoint, http: clients.http, api: gw.api, token: GatewayProcess.token)
    }
}

/// `draft/relaymsg` (no Debian server offers it: a scripted server answering as
/// Ergo does): chat lines go out as RELAYMSG under `alice/msrp`, their relayed
/// echo (tagged with our nick) is the proof and the sender gets its REPORT;
/// a system message is still a NOTICE from the bot.
@Suite(.enabled(if: Peers.available("python3"), "needs python3"))
struct IRCRelayMsgTests {
    @Test func chatLinesAreRelayedUnderTheSpeakersName() async throws {
        let python = try Peers.require("python3", package: "python3")
        let port = try freePort()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Helpers/irc_relaymsg_server.py").path
        let server = try ChildProcess(python, [script, String(port)], name: "relaymsg IRC server")
        defer { server.stop() }
        try await server.waitFor("READY")
        let gw = try await GatewayProcess(extra: """
            [irc.relay]
            host = "127.0.0.1"
            port = \(port)
            tls = false
            nick = "msrpgw"
            channels = ["#ops"]
            lines_per_second = 0
            bridges = { "#ops" = "sip:ops@gw.example" }
            [routes]
            "sip:ops@gw.example" = ["irc://relay/ops"]
            """)
        defer { gw.stop() }
        try await gw.process.waitFor("IRC registered", in: \.stderr, timeout: .seconds(10))
        #expect(await until(.seconds(5)) { server.stdout.contains("C: JOIN #ops") })
        #expect(server.stdout.contains("draft/relaymsg"), "asked for: \(server.stdout.prefix(400))")
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open(route: "sip:ops@gw.example")
        #expect(try await alice.send("hello relayed", to: "sip:ops@gw.example", messageID: "relay-1") == .accepted)
        #expect(await until(.seconds(10)) { server.stdout.contains("C: RELAYMSG #ops Alice/msrp :hello relayed") }, "\(server.stdout.suffix(600))")
        #expect(await alice.wait(timeout: .seconds(10)) { c in
            c.allReports.contains { $0.headers.messageID == "relay-1" && $0.headers.status?.code == 200 }
        }, "the relayed echo proved it")
        #expect(!alice.allReceived.contains { $0.text.contains("hello relayed") }, "our relayed echo is not passed back")
        let (status, _, _) = try await alice.call("POST", "/v1/messages", body: #"{"to": "sip:ops@gw.example", "text": "maintenance at 6", "system": true}"#)
        #expect(status == 202)
        #expect(await until(.seconds(10)) { server.stdout.contains("C: NOTICE #ops :maintenance at 6") })
        #expect(!server.stdout.contains("RELAYMSG #ops Alice/msrp :maintenance"))
        await clients.shutdown()
    }
}
