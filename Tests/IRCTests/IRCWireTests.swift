import NIOCore
import Testing
import IRCWire

/// Hostile and malformed input from an IRC server, framing, and the splitting of
/// outgoing text into lines.
struct IRCWireTests {
    @Test(arguments: [
        ("", IRCParseError.Kind.empty), ("    ", .empty), ("@a=b", .noCommand), (":only.source", .noCommand), ("@a=b :src", .noCommand),
        ("CMD " + (1...16).map(String.init).joined(separator: " "), .tooManyParams),
        // Found by the fuzzer: "@ @" parsed with the command "@", which serialised into a tags word.
        ("@ @ ", .badCommand), ("@a=b :src :x y", .badCommand), ("PRIV\u{0}MSG #c :x", .badCommand), ("ÄÖ x", .badCommand),
    ])
    func refusedLines(_ line: String, _ kind: IRCParseError.Kind) {
        #expect(throws: IRCParseError(kind)) { try IRCParser.parse(line) }
    }

    @Test func oddButValidLines() throws {
        #expect(try IRCParser.parse("999 me :unknown numeric").numeric == 999)
        #expect(try IRCParser.parse("PRIVMSG #c :").params == ["#c", ""])
        #expect(try IRCParser.parse("PRIVMSG #c ::-)").params == ["#c", ":-)"])
        #expect(try IRCParser.parse("PING").params.isEmpty)
        let nul = try IRCParser.parse("PRIVMSG #c :a\u{0}b")
        #expect(nul.params.last == "a\u{0}b", "kept as received; the bridge decides")
    }

    /// Found by the fuzzer: a tag without a key did not survive a round trip.
    @Test func tagsWithoutAKeyAreSkipped() throws {
        let m = try IRCParser.parse("@a=1;=x;;b CMD")
        #expect(m.tags == [IRCTag("a", "1"), IRCTag("b")])
        #expect(try IRCParser.parse(m.serialized) == m)
    }

    @Test func invalidUTF8IsReadAsLatin1() throws {
        let (m, lossy) = try IRCParser.parse(Array("PRIVMSG #c :caf".utf8) + [0xE9] + Array(" ok".utf8))
        #expect(lossy)
        #expect(m.params.last == "café ok")
        let (clean, notLossy) = try IRCParser.parse(Array("PRIVMSG #c :café".utf8))
        #expect(!notLossy && clean.params.last == "café")
    }

    @Test func framingHandlesSplitReadsCRLFAndBareLF() {
        var framer = IRCLineFramer()
        var buffer = ByteBuffer()
        var lines: [String] = []
        for byte in Array(":a PRIVMSG #c :one\r\n\r\nPING :x\n:b NOTICE me :three\r\n".utf8) {
            buffer.writeInteger(byte)
            while let e = framer.next(&buffer) {
                if case .line(let l) = e { lines.append(String(buffer: l)) }
            }
        }
        #expect(lines == [":a PRIVMSG #c :one", "PING :x", ":b NOTICE me :three"])
    }

    @Test func overlongLinesAreDroppedWithBoundedMemory() {
        var framer = IRCLineFramer(maxLineBytes: 100)
        var buffer = ByteBuffer()
        var events: [IRCLineFramer.Event] = []
        for _ in 0..<1000 {
            buffer.writeString(String(repeating: "x", count: 97))
            while let e = framer.next(&buffer) { events.append(e) }
            #expect(buffer.readableBytes <= 200, "held bytes stay bounded")
        }
        buffer.writeString("\r\nPING :after\r\n")
        while let e = framer.next(&buffer) { events.append(e) }
        #expect(events == [.tooLong(97_001), .line(ByteBuffer(string: "PING :after"))])
    }

    // MARK: - Splitting outgoing text

    @Test func budgetCountsWhatTheServerAdds() {
        // ":alice!a@host PRIVMSG #ops :" is 28 bytes, plus CR LF.
        #expect(IRCTextSplitter.budget(source: "alice!a@host", target: "#ops") == 512 - 2 - 28)
    }

    @Test func longTextSplitsAtWordsWithinTheBudget() {
        let splitter = IRCTextSplitter(budget: 40)
        let words = (1...60).map { "word\($0)" }.joined(separator: " ")
        let lines = IRCTextSplitter(budget: 40, maxLines: 100).split(words)
        #expect(lines.allSatisfy { $0.utf8.count <= 40 && !$0.hasPrefix(" ") && !$0.hasSuffix(" ") })
        #expect(lines.joined(separator: " ") == words)
        #expect(splitter.split("short") == ["short"])
        #expect(splitter.split("one\ntwo\r\n\r\nthree") == ["one", "two", "three"])
    }

    @Test(arguments: ["é", "日本語", "👍🏽", "👩‍👩‍👧", "e\u{301}"])
    func utf8AndGraphemesAreNeverCut(_ unit: String) {
        let text = String(repeating: unit, count: 200)
        let lines = IRCTextSplitter(budget: 50, maxLines: 1000).split(text)
        #expect(lines.allSatisfy { $0.utf8.count <= 50 })
        #expect(lines.joined() == text, "nothing lost, no sequence or grapheme split")
        if unit.count == 1 {
            // Whole graphemes only: a cut inside one would leave a different character.
            #expect(lines.allSatisfy { $0.allSatisfy { String($0) == unit } })
        }
    }

    @Test func pastTheLimitTheLastLineSaysWhatWasCut() {
        let text = (1...50).map { "line \($0)" }.joined(separator: "\n")
        let lines = IRCTextSplitter(budget: 60, maxLines: 4).split(text)
        #expect(lines.count == 4)
        #expect(lines[0] == "line 1")
        #expect(lines[3].contains("[… 47 more lines"), "\(lines[3])")
        #expect(lines.allSatisfy { $0.utf8.count <= 60 })
    }

    /// Found by the fuzzer: with a budget smaller than the note, the note alone
    /// was longer than a line may be.
    @Test func theNoteFitsATinyBudget() {
        let lines = IRCTextSplitter(budget: 23, maxLines: 5).split(String(repeating: "x", count: 500))
        #expect(lines.count == 5)
        #expect(lines.allSatisfy { $0.utf8.count <= 23 }, "\(lines)")
        #expect(lines.last?.hasSuffix(" [… cut]") == true)
    }

    /// Random text, random budgets: every line fits, and without truncation the
    /// words come back in order.
    @Test func randomTextAlwaysFits() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("ab c\té日本👍🏽 ") + ["e\u{301}"]
        for _ in 0..<300 {
            let text = String((0..<Int.random(in: 0...600, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            let budget = Int.random(in: 16...120, using: &rng)
            let lines = IRCTextSplitter(budget: budget, maxLines: 10_000).split(text)
            #expect(lines.allSatisfy { $0.utf8.count <= budget && !$0.isEmpty })
            #expect(lines.joined().filter { $0 != " " } == text.filter { $0 != " " })
        }
    }
}

