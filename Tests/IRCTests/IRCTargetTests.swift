import Testing
@testable import IRCAdapter

/// Route targets for IRC, and how a sender is named in the channel.
struct IRCTargetTests {
    @Test(arguments: [
        ("irc://libera/ops", "libera", "#ops"), ("ircs://libera/%23ops", "libera", "#ops"), ("irc://net/&local", "net", "&local"),
        ("IRC://net/alice,isnick", "net", "alice"),
    ])
    func parsed(_ uri: String, _ network: String, _ recipient: String) throws {
        let t = try #require(IRCTarget(uri))
        #expect(t.network == network && t.recipient == recipient)
    }

    @Test(arguments: ["irc://libera", "irc:///ops", "irc://net/", "irc://net/a b", "irc://net/a,b", "https://net/ops", "irc://net/x\u{7}y", "irc://net/#"])
    func refused(_ uri: String) {
        #expect(IRCTarget(uri) == nil)
    }

    @Test func speakers() {
        #expect(IRCAdapter.speaker("Alice <sip:alice@example.com>") == "Alice")
        #expect(IRCAdapter.speaker("\"Bob B\" <sip:bob@example.com>") == "Bob B")
        #expect(IRCAdapter.speaker("<sip:carol@example.com>") == "carol")
        #expect(IRCAdapter.speaker("sip:dave@example.com") == "dave")
        #expect(IRCAdapter.speaker(nil) == "msrp")
    }
}

/// The lines a message becomes: `<alice> text`, a NOTICE for a system message,
/// `RELAYMSG` from `alice/msrp` where the server relays (`draft/relaymsg`).
struct IRCLinesTests {
    @Test func chatAsPrivmsgWithTheSpeaker() {
        let lines = IRCAdapter.lines(text: "hello\nworld", system: false, from: "Alice <sip:alice@example.com>", to: "#ops",
                                     relay: false, ourSource: "gw!gw@host", maxLines: 10)
        #expect(lines.map { $0.serialized } == ["PRIVMSG #ops :<Alice> hello", "PRIVMSG #ops :<Alice> world"])
    }

    @Test func systemAsNoticeWithoutSpeaker() {
        let lines = IRCAdapter.lines(text: "disk full", system: true, from: "Alerts <sip:alerts@gw>", to: "#ops", relay: true, ourSource: nil, maxLines: 10)
        #expect(lines.map { $0.serialized } == ["NOTICE #ops :disk full"])
    }

    @Test func relayedUnderTheSpeakersName() {
        let lines = IRCAdapter.lines(text: "hi all", system: false, from: "\"Bob B\" <sip:bob@example.com>", to: "#ops",
                                     relay: true, ourSource: "gw!gw@host", maxLines: 10)
        #expect(lines.map { $0.serialized } == ["RELAYMSG #ops BobB/msrp :hi all"])
    }

    @Test func relayedLongTextFitsTheRelayedLine() {
        let text = String(repeating: "word ", count: 300)
        let lines = IRCAdapter.lines(text: text, system: false, from: "alice", to: "#ops", relay: true, ourSource: nil, maxLines: 10)
        #expect(lines.count > 1)
        for l in lines {
            // What the server sends on: ":<relayed source> PRIVMSG #ops :text\r\n" within 512 with the longest source.
            let relayed = ":" + String(repeating: "x", count: 138) + " PRIVMSG #ops :" + (l.params.last ?? "") + "\r\n"
            #expect(relayed.utf8.count <= 512)
        }
    }

    @Test(arguments: [("alice", "alice/msrp"), ("Bob B", "BobB/msrp"), ("7eleven", "msrp7eleven/msrp"), ("", "msrp/msrp"),
                      ("名前", "msrp/msrp"), ("-x", "msrp-x/msrp"), (String(repeating: "a", count: 40), String(repeating: "a", count: 24) + "/msrp")])
    func relayNicks(_ speaker: String, _ nick: String) {
        #expect(IRCAdapter.relayNick(speaker) == nick)
    }
}
