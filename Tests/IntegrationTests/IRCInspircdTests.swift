import Foundation
import IRCClient
import IRCWire
import Logging
import MSRPGatewayClient
import Testing
import TestPeers

/// Against InspIRCd as a production network runs it: linked to Atheme for SASL
/// PLAIN, and with flood limits that disconnect a client sending too fast.
@Suite(.serialized, .enabled(if: Peers.available("inspircd") && Peers.available("atheme-services"), "needs apt-get install inspircd atheme-services"))
struct IRCInspircdTests {
    /// `msrpgw serve` logs in with SASL PLAIN over TLS: its lines carry the account
    /// (account-tag) to a client that asks; a wrong password is refused with 904.
    @Test func saslPlainThroughAtheme() async throws {
        let ircd = try await InspircdInstance(services: true)
        defer { ircd.stop() }
        let atheme = try await AthemeInstance(linkedTo: ircd)
        defer { atheme.stop() }
        try await atheme.register(account: "gwbot", password: "s3cret-pass", on: ircd)

        let gw = try await GatewayProcess(extra: """
            [irc.test]
            host = "127.0.0.1"
            port = \(ircd.tlsPort)
            ca_file = "\(ircd.certificates.caPath)"
            nick = "gwbot"
            sasl = "plain"
            sasl_user = "gwbot"
            sasl_password = "s3cret-pass"
            channels = ["#ops"]
            lines_per_second = 0
            [routes]
            "sip:ops@gw.example" = ["irc://test/ops"]
            """)
        defer { gw.stop() }
        try await gw.process.waitFor("IRC registered", in: \.stderr, timeout: .seconds(15))
        let (carol, inbox) = try await ircUser(
            port: ircd.tlsPort, nick: "carol", joining: "#ops", tlsCA: ircd.certificates.caPath,
            capabilities: IRCClientConfiguration.defaultCapabilities + ["account-tag"])
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open(route: "sip:ops@gw.example")
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await alice.send("signed in", to: "sip:ops@gw.example", messageID: "sasl-1") == .accepted)
        #expect(await until(.seconds(10)) { inbox.messages.contains { $0.params.last == "<Alice> signed in" } })
        let line = try #require(inbox.messages.first { $0.params.last == "<Alice> signed in" })
        #expect(line.tag("account") == "gwbot", "logged in as the account: \(line.serialized)")

        // The wrong password: SASL fails, and the connection says why.
        await #expect {
            _ = try await IRCConnection.connect(
                IRCClientConfiguration(host: "127.0.0.1", port: ircd.tlsPort, caFile: ircd.certificates.caPath, nick: "intruder",
                                       sasl: .plain(user: "gwbot", password: "guess"), linesPerSecond: 0),
                group: IRCConnectionTests.group, logger: Logger(label: "test.irc.intruder"))
        } throws: { "\($0)".contains("904") }
        await carol.quit()
        await clients.shutdown()
    }

    /// 200 messages to a channel on a server that disconnects flooders (past 10
    /// lines in its window): the bot's flood control (a burst of 3, then 5 lines a
    /// second; at most 8 in any second, even when a busy machine delays the bot
    /// and the burst comes on top of a second's lines) keeps it connected and
    /// every line arrives, in order, once. The same lines unpaced from a plain
    /// client get it disconnected for flooding, so the limits do bite.
    @Test func floodControlKeepsTheBotOnAStrictServer() async throws {
        let ircd = try await InspircdInstance(flood: InspircdInstance.floodLimits)
        defer { ircd.stop() }
        let (carol, inbox) = try await ircUser(port: ircd.port, nick: "carol", joining: "#ops", burst: 5, linesPerSecond: 1)

        // The limits bite: an unpaced client is thrown out.
        let (flooder, flooderInbox) = try await ircUser(port: ircd.port, nick: "flooder")
        for i in 1...60 { flooder.send(IRCMessage(command: "PRIVMSG", params: ["carol", "flood \(i)"])) }
        #expect(await until(.seconds(10)) { flooderInbox.messages.contains { $0.command == "ERROR" && ($0.params.last ?? "").contains("Flood") } },
                "\(flooderInbox.messages.map(\.serialized).suffix(3))")

        let gw = try await GatewayProcess(extra: """
            [irc.test]
            host = "127.0.0.1"
            port = \(ircd.tlsPort)
            ca_file = "\(ircd.certificates.caPath)"
            nick = "msrpgw"
            channels = ["#ops"]
            burst = 3
            lines_per_second = 5
            [routes]
            "sip:ops@gw.example" = ["irc://test/ops"]
            """)
        defer { gw.stop() }
        try await gw.process.waitFor("IRC registered", in: \.stderr, timeout: .seconds(15))
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open(route: "sip:ops@gw.example")
        try await Task.sleep(for: .milliseconds(500))
        for i in 1...200 {
            #expect(try await alice.send("flood test \(i)", to: "sip:ops@gw.example", messageID: "flood-\(i)", successReport: false) == .accepted)
        }
        let expected = (1...200).map { "<Alice> flood test \($0)" }
        #expect(await until(.seconds(90)) { inbox.received.filter { $0.hasPrefix("<Alice> flood test") }.count >= 200 },
                "\(inbox.received.count) lines")
        #expect(inbox.received.filter { $0.hasPrefix("<Alice> flood test") } == expected, "all 200, in order, once")
        #expect(!gw.process.stderr.contains("IRC connection lost"), "the bot stayed connected")
        await carol.quit()
        await clients.shutdown()
    }
}
