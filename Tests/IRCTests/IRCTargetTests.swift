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
