import IRCClient
import IRCWire
import Testing

/// Who is where: NAMES, joins, parts, kicks, and the channels a NICK or QUIT concerns.
struct IRCChannelRosterTests {
    func line(_ s: String) throws -> IRCMessage { try IRCParser.parse(s) }

    @Test func namesJoinsPartsAndKicks() throws {
        var r = IRCChannelRoster()
        r.apply(try line(":gw!u@h JOIN #ops"), me: "gw")
        r.apply(try line(":irc.test 353 gw = #ops :@gw +alice ~&bob carol!c@host"), me: "gw")
        #expect(r.nicks(in: "#OPS") == ["alice", "bob", "carol", "gw"])
        r.apply(try line(":dave!d@h JOIN #ops"), me: "gw")
        r.apply(try line(":alice!a@h PART #ops :bye"), me: "gw")
        r.apply(try line(":gw!u@h KICK #ops bob :flood"), me: "gw")
        #expect(r.nicks(in: "#ops") == ["carol", "dave", "gw"])
        #expect(r.channels(of: "alice").isEmpty)
    }

    @Test func nickAndQuitNameTheChannelsTheyConcern() throws {
        var r = IRCChannelRoster()
        r.apply(try line(":gw!u@h JOIN #ops"), me: "gw")
        r.apply(try line(":gw!u@h JOIN #dev"), me: "gw")
        r.apply(try line(":gw!u@h JOIN #quiet"), me: "gw")
        r.apply(try line(":Alice[m]!a@h JOIN #ops"), me: "gw")
        r.apply(try line(":alice{M}!a@h JOIN #dev"), me: "gw")  // the same nick under RFC 1459 case mapping
        #expect(r.apply(try line(":ALICE[M]!a@h NICK :alice2"), me: "gw") == ["#dev", "#ops"])
        #expect(r.nicks(in: "#ops") == ["alice2", "gw"])
        #expect(r.apply(try line(":alice2!a@h QUIT :gone"), me: "gw") == ["#dev", "#ops"])
        #expect(r.channels(of: "alice2").isEmpty)
        #expect(r.apply(try line(":stranger!s@h QUIT :x"), me: "gw").isEmpty)
    }

    @Test func ourOwnPartOrKickForgetsTheChannelAndOurJoinStartsItAfresh() throws {
        var r = IRCChannelRoster()
        r.apply(try line(":gw!u@h JOIN #ops"), me: "gw")
        r.apply(try line(":alice!a@h JOIN #ops"), me: "gw")
        r.apply(try line(":op!o@h KICK #ops gw :out"), me: "gw")
        #expect(r.nicks(in: "#ops").isEmpty && r.channels(of: "alice").isEmpty)
        r.apply(try line(":gw!u@h JOIN #ops"), me: "gw")
        #expect(r.nicks(in: "#ops") == ["gw"])
    }

    @Test(arguments: [":x!y@z 353 gw = #ops", ":irc 353", ":x NICK", "QUIT", "JOIN", ":x!y@z KICK #ops", ":irc 353 gw = #ops :"])
    func incompleteLinesChangeNothing(_ text: String) throws {
        var r = IRCChannelRoster()
        r.apply(try line(":gw!u@h JOIN #ops"), me: "gw")
        r.apply(try line(text), me: "gw")
        #expect(r.nicks(in: "#ops") == ["gw"])
    }
}
