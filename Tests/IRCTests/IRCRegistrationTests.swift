import IRCClient
import IRCWire
import Testing

/// The registration dialogue against scripted servers: what we answer to each line.
struct IRCRegistrationTests {
    func run(_ config: IRCClientConfiguration, _ script: [String]) throws -> (IRCRegistration, [String]) {
        var r = IRCRegistration(configuration: config)
        var sent = r.start().map(\.serialized)
        for line in script { sent += r.receive(try IRCParser.parse(line)).map(\.serialized) }
        return (r, sent)
    }

    let plain = IRCClientConfiguration(host: "x", port: 6667, tls: false, nick: "msrpgw")

    @Test func capabilitiesOfferedAreAskedForAndRegistrationEnds() throws {
        let (r, sent) = try run(plain, [
            ":irc.test CAP * LS * :multi-prefix server-time",
            ":irc.test CAP * LS :echo-message message-tags sasl=PLAIN account-notify",
            ":irc.test CAP * ACK :multi-prefix server-time echo-message message-tags",
            ":irc.test 001 msrpgw :Welcome",
        ])
        #expect(sent == ["CAP LS 302", "NICK msrpgw", "USER msrpgw 0 * :msrpgw bridge",
                         "CAP REQ :server-time message-tags echo-message multi-prefix", "CAP END"])
        #expect(r.outcome == .registered(nick: "msrpgw", capabilities: ["multi-prefix", "server-time", "echo-message", "message-tags"]))
    }

    @Test func saslPlainWithPassword() throws {
        var c = plain
        c.sasl = .plain(user: "bot", password: "pw")
        c.password = "serverpw"
        let (r, sent) = try run(c, [
            ":irc.test CAP * LS :sasl=PLAIN,EXTERNAL server-time",
            ":irc.test CAP msrpgw ACK :server-time sasl",
            "AUTHENTICATE +",
            ":irc.test 900 msrpgw msrpgw!bot@h bot :You are now logged in as bot",
            ":irc.test 903 msrpgw :SASL authentication successful",
            ":irc.test 001 msrpgw :Welcome",
        ])
        #expect(sent == ["CAP LS 302", "PASS serverpw", "NICK msrpgw", "USER msrpgw 0 * :msrpgw bridge", "CAP REQ :server-time sasl",
                         "AUTHENTICATE PLAIN", "AUTHENTICATE Ym90AGJvdABwdw==", "CAP END"])
        if case .registered = r.outcome {} else { Issue.record("not registered: \(r.outcome)") }
    }

    @Test func saslRefusedFailsRegistration() throws {
        var c = plain
        c.sasl = .plain(user: "bot", password: "wrong")
        let (r, _) = try run(c, [":s CAP * LS :sasl", ":s CAP * ACK :sasl", "AUTHENTICATE +", ":s 904 msrpgw :SASL authentication failed"])
        #expect(r.outcome == .failed("SASL failed: 904 SASL authentication failed"))
        let (noSASL, _) = try run(c, [":s CAP * LS :server-time"])
        #expect(noSASL.outcome == .failed("SASL is configured but the server does not offer it"))
    }

    @Test func takenNicksFallBack() throws {
        let (r, sent) = try run(plain, [
            ":s 421 * CAP :Unknown command",
            ":s 433 * msrpgw :Nickname is already in use", ":s 433 * msrpgw_ :Nickname is already in use",
            ":s 433 * msrpgw__ :Nickname is already in use", ":s 001 msrpgw1 :Welcome",
        ])
        #expect(sent.suffix(3) == ["NICK msrpgw_", "NICK msrpgw__", "NICK msrpgw1"])
        #expect(r.outcome == .registered(nick: "msrpgw1", capabilities: []))
    }

    @Test func pingDuringRegistrationIsAnswered() throws {
        let (_, sent) = try run(plain, ["PING :12345"])
        #expect(sent.last == "PONG 12345")
    }

    @Test func longSASLPayloadsAreChunked() {
        #expect(IRCRegistration.chunks(String(repeating: "a", count: 800)) == [String(repeating: "a", count: 400), String(repeating: "a", count: 400), "+"])
        #expect(IRCRegistration.chunks("abc") == ["abc"])
    }
}
