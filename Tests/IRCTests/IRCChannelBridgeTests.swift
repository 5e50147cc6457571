import IRCClient
import IRCWire
import Testing

@testable import IRCAdapter

/// What lines of bridged channels become on the MSRP side, as a table: no
/// server, no gateway.
@Suite struct IRCChannelBridgeTests {
    let bridge = IRCChannelBridge(
        network: "libera", me: "msrpgw", bridges: ["#ops": "sip:ops@gw.example", "#Dev": "sip:dev@gw.example"],
        announce: IRCToMSRP.announcements, isPuppet: { $0 == "alice[m]" })

    func lines(_ raw: String, channels: [String] = []) throws -> [IRCChannelBridge.Line] {
        bridge.lines(for: try IRCParser.parse(raw), channels: channels)
    }

    @Test func channelLinesGoToTheirRoute() throws {
        #expect(try lines(":carol!c@h PRIVMSG #ops :deploy done") == [
            .init(route: "sip:ops@gw.example", from: "carol <irc://libera/carol,isnick>", text: "deploy done", system: false)
        ])
        #expect(try lines(":carol!c@h NOTICE #OPS :heads up").first?.system == true)  // channel names fold
        #expect(try lines(":carol!c@h PRIVMSG #ops :\u{1}ACTION waves\u{1}").first?.text == "* carol waves")
    }

    @Test func whatIsNotPassedOn() throws {
        let ignored = [
            ":msrpgw!m@h PRIVMSG #ops :our own line",
            ":alice[m]!a@h PRIVMSG #ops :a puppet's line came from MSRP",
            "@draft/relaymsg=msrpgw :bob/m!m@h PRIVMSG #ops :our own RELAYMSG, echoed",
            ":carol!c@h PRIVMSG #elsewhere :not bridged",
            ":carol!c@h PRIVMSG msrpgw :a private line is not a channel's",
            ":irc.test 001 msrpgw :welcome",
        ]
        for raw in ignored { #expect(try lines(raw).isEmpty, "\(raw)") }
    }

    @Test func channelEventsAreAnnounced() throws {
        let system = "libera <irc://libera>"
        #expect(try lines(":carol!c@h JOIN #ops") == [.init(route: "sip:ops@gw.example", from: system, text: "carol joined #ops", system: true)])
        #expect(try lines(":carol!c@h PART #ops :bye").first?.text == "carol left #ops (bye)")
        #expect(try lines(":carol!c@h KICK #ops dave :spam").first?.text == "carol kicked dave from #ops (spam)")
        #expect(try lines(":carol!c@h TOPIC #ops :release day").first?.text == "carol set the topic of #ops: release day")
        // NICK and QUIT name no channel: the roster says which rooms hear of them.
        #expect(try lines(":carol!c@h NICK carol2", channels: ["#ops", "#dev"]).map(\.route) == ["sip:dev@gw.example", "sip:ops@gw.example"])
        #expect(try lines(":carol!c@h QUIT :gone", channels: ["#ops"]).first?.text == "carol quit (gone)")
        #expect(try lines(":msrpgw!m@h JOIN #ops").isEmpty)
        #expect(try lines(":alice[m]!a@h JOIN #ops").isEmpty)
    }

    @Test func announcementsCanBeTurnedOff() throws {
        var quiet = bridge
        quiet.announce = ["topic"]
        #expect(quiet.lines(for: try IRCParser.parse(":carol!c@h JOIN #ops"), channels: []).isEmpty)
        #expect(quiet.lines(for: try IRCParser.parse(":carol!c@h TOPIC #ops :t"), channels: []).count == 1)
    }

    @Test func puppetAddressesAreTheURIOfACPIMFrom() {
        #expect(IRCPuppets.address("Alice <sip:Alice@Example.com>") == "sip:alice@example.com")
        #expect(IRCPuppets.address("sip:bob@example.com") == "sip:bob@example.com")
        #expect(IRCPuppets.address("  ") == nil)
    }
}
