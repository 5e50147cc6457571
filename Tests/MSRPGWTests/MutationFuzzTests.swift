import Foundation
import Testing
import TestPeers

@testable import msrpgw

/// Mutation fuzzing of the inputs whose parsers live in the executable (so
/// libFuzzer, which links libraries, cannot reach them): the configuration
/// reader and the HTTP API's JSON models with their checks. Each case starts
/// from a valid input, mutates it (bytes flipped, inserted, deleted, spliced
/// from a dictionary of tokens), and must end in a value or a typed error:
/// never a crash, never an untyped error. Seeded: a failure names its seed.
/// `MSRPGW_FUZZ_SECONDS` runs for that long instead of the CI count.
@Suite struct MutationFuzzTests {
    static func mutate(_ input: [UInt8], tokens: [[UInt8]], rng: inout SplitMix) -> [UInt8] {
        var b = input
        for _ in 0..<Int.random(in: 1...8, using: &rng) {
            let at = b.isEmpty ? 0 : Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0 where !b.isEmpty: b[at] = UInt8.random(in: 0...255, using: &rng)
            case 1: b.insert(UInt8.random(in: 0...255, using: &rng), at: at)
            case 2 where !b.isEmpty: b.removeSubrange(at..<min(b.count, at + Int.random(in: 1...16, using: &rng)))
            case 3: b.insert(contentsOf: tokens.randomElement(using: &rng) ?? [], at: at)
            case 4 where !b.isEmpty:  // duplicate a slice (repeated keys, sections)
                let end = min(b.count, at + Int.random(in: 1...64, using: &rng))
                b.insert(contentsOf: b[at..<end], at: Int.random(in: 0...b.count, using: &rng))
            default: b = Array(b.prefix(at))
            }
        }
        return b
    }

    /// Iterations for CI, or a time budget when asked.
    static func budget() -> (iterations: Int, deadline: ContinuousClock.Instant?) {
        if let s = ProcessInfo.processInfo.environment["MSRPGW_FUZZ_SECONDS"].flatMap(Int.init) {
            return (Int.max, ContinuousClock.now + .seconds(s))
        }
        return (3000, nil)
    }

    /// Seconds of CPU without a suspension: on a thread of its own (`OwnThread`).
    static func run(_ name: String, seeds: [String], tokens: [String], _ body: (String) throws -> Void) async {
        await OwnThread.run { mutateAndRun(name, seeds: seeds, tokens: tokens, body) }
    }

    private static func mutateAndRun(_ name: String, seeds: [String], tokens: [String], _ body: (String) throws -> Void) {
        let (iterations, deadline) = budget()
        let seed = UInt64(ProcessInfo.processInfo.environment["MSRPGW_FUZZ_SEED"].flatMap(UInt64.init) ?? 20261205)
        var rng = SplitMix(state: seed)
        let tokenBytes = tokens.map { Array($0.utf8) }
        var runs = 0, accepted = 0
        while runs < iterations, deadline.map({ ContinuousClock.now < $0 }) ?? true {
            let start = Array((seeds.randomElement(using: &rng) ?? "").utf8)
            let input = String(decoding: mutate(start, tokens: tokenBytes, rng: &rng), as: UTF8.self)
            // A crash (an abort in a C++ parser) leaves its input here.
            if let path = ProcessInfo.processInfo.environment["MSRPGW_FUZZ_LAST"] { try? input.write(toFile: path + "." + name, atomically: false, encoding: .utf8) }
            do {
                try body(input)
                accepted += 1
            } catch {
                // Typed errors are the answer; anything else is recorded by the body.
            }
            runs += 1
        }
        print("\(name): \(runs) mutated inputs (seed \(seed)), \(accepted) accepted")
    }

    @Test func theConfigurationReaderAnswersEveryMutation() async throws {
        let example = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/msrpgw.toml").path, encoding: .utf8)
        let small = """
            [msrp]
            port = 2855
            connect_allow = ["127.0.0.0/8"]
            max_messages_per_second = 10
            [api]
            token = "t"
            header_timeout = "10s"
            [routes]
            "sip:ops@gw.example" = ["webhook:ops"]
            [webhooks.ops]
            url = "https://x.example/"
            secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
            [rooms]
            "sip:r@gw.example" = { nicknames = true }
            """
        let tokens = ["[", "]", "[[", "]]", "=", "\"", "'''", "\"\"\"", "\n", ",", "{", "}", "#", "-1", "0", "99999999999999999999", "1e400",
                      "\"1ms\"", "\"0s\"", "true", "nan", "inf", "\\u0000", "\u{0}", "::1", "/33", "msrp.", "webhooks.x.", "sip:", "[sip]", "[irc.n]",
                      "[smtp]", "host = \"h\"", "port = 0", "ca_file = \"/nonexistent\"", "tls_port = 2856"]
        await Self.run("config", seeds: [example, small], tokens: tokens) { text in
            do {
                _ = try DaemonConfiguration.parse(text, environment: [:])
            } catch let error as ConfigError {
                #expect(!error.description.isEmpty)
                throw error
            }
        }
    }

    @Test func theAPIModelsAnswerEveryMutation() async throws {
        let seeds = [
            #"{"to": "sip:ops@gw.example", "text": "hello", "content_type": "text/plain;charset=utf-8", "subject": "s", "from": "sip:a@b"}"#,
            #"{"session": "abc123", "text": "x", "system": true}"#,
            #"{"version":"4","groupKey":"g","status":"firing","receiver":"r","alerts":[{"status":"firing","labels":{"alertname":"A"},"annotations":{"summary":"s"}}]}"#,
        ]
        let tokens = ["{", "}", "[", "]", "\"", ":", ",", "null", "true", "-0", "1e999", "\\u0000", "\\ud800", "\\r", "\\n", "\u{0}",
                      #""text""#, #""content_type""#, #""alerts""#, #""status""#, "text/", "/plain", ";a=\"", "sip:", "<", ">"]
        let decoder = JSONDecoder()
        await Self.run("api", seeds: seeds, tokens: tokens) { text in
            let data = Data(text.utf8)
            if let m = try? decoder.decode(MessageRequest.self, from: data) {
                _ = try? APIInput.mediaType(m.content_type ?? "text/plain", field: "content_type")
                _ = try? m.to.map { try APIInput.uri($0, field: "to") }
                _ = try? m.from.map { try APIInput.uri($0, field: "from") }
                _ = try? m.subject.map { try APIInput.headerText($0, field: "subject") }
                _ = try? m.session.map { try APIInput.token($0, field: "session") }
            }
            if let n = try? decoder.decode(AlertmanagerNotification.self, from: data) {
                try n.validate()
                _ = n.text
            }
        }
    }
}
