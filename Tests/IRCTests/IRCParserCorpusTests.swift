import Foundation
import Testing
import IRCWire

/// The irc-parser-tests corpus (PyPI `irc-parser-tests`, read through
/// Tests/Helpers/irc_parser_tests.py): every msg-split, msg-join and
/// userhost-split case.
@Suite struct IRCParserCorpusTests {
    struct Atoms: Decodable {
        var tags: [String: String?]?
        var source: String?
        var verb: String
        var params: [String]?
    }
    struct Split: Decodable { var input: String; var atoms: Atoms }
    struct Join: Decodable { var desc: String?; var atoms: Atoms; var matches: [String] }
    struct UserHost: Decodable {
        struct Parts: Decodable { var nick: String?; var user: String?; var host: String? }
        var source: String
        var atoms: Parts
    }
    struct Corpus: Decodable {
        var split: [Split]
        var join: [Join]
        var userhost: [UserHost]
        enum CodingKeys: String, CodingKey { case split = "msg-split", join = "msg-join", userhost = "userhost-split" }
    }

    /// nil (skip) when python3 or the package is missing, unless MSRPGW_REQUIRE_PEERS=1.
    static func corpus() throws -> Corpus? {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Helpers/irc_parser_tests.py").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            if ProcessInfo.processInfo.environment["MSRPGW_REQUIRE_PEERS"] == "1" {
                throw CorpusMissing()
            }
            return nil
        }
        return try JSONDecoder().decode(Corpus.self, from: data)
    }

    struct CorpusMissing: Error, CustomStringConvertible {
        var description: String { "the irc-parser-tests corpus is missing: pip install irc-parser-tests" }
    }

    static func tags(_ a: Atoms) -> [String: String] {
        (a.tags ?? [:]).mapValues { $0 ?? "" }
    }

    @Test func msgSplit() throws {
        guard let corpus = try Self.corpus() else { return }
        #expect(corpus.split.count > 30)
        for c in corpus.split {
            let m = try IRCParser.parse(c.input)
            #expect(m.command == c.atoms.verb, "\(c.input)")
            #expect(m.source == c.atoms.source, "\(c.input)")
            #expect(m.params == (c.atoms.params ?? []), "\(c.input)")
            #expect(Dictionary(m.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b }) == Self.tags(c.atoms), "\(c.input)")
        }
    }

    @Test func msgJoin() throws {
        guard let corpus = try Self.corpus() else { return }
        #expect(corpus.join.count > 10)
        for c in corpus.join {
            let tags = Self.tags(c.atoms).sorted { $0.key < $1.key }.map { IRCTag($0.key, $0.value) }
            let m = IRCMessage(tags: tags, source: c.atoms.source, command: c.atoms.verb, params: c.atoms.params ?? [])
            #expect(c.matches.contains(m.serialized), "\(c.desc ?? ""): \(m.serialized) not in \(c.matches)")
        }
    }

    @Test func userhostSplit() throws {
        guard let corpus = try Self.corpus() else { return }
        for c in corpus.userhost {
            let u = IRCUserHost(c.source)
            #expect(u.nick == (c.atoms.nick ?? ""), "\(c.source)")
            #expect(u.user == (c.atoms.user ?? ""), "\(c.source)")
            #expect(u.host == (c.atoms.host ?? ""), "\(c.source)")
        }
    }
}
