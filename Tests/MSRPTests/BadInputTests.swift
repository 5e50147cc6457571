import NIOCore
import Testing

@testable import MSRP

/// The bad-input table for the parser: each case with its expected outcome.
/// `fatal` means the connection must close; `reject(code)` means the frame is
/// discarded, answered with that code, and the next frame still parses.
@Suite struct BadInputTests {
    enum Outcome: Equatable {
        case fatal(MSRPParseError.Kind)
        case reject(MSRPParseError.Kind, code: Int)
    }

    static let to = "To-Path: msrp://gw.example:2855/sess1;tcp\n"
    static let from = "From-Path: msrp://c.example:7777/abc;tcp\n"
    static let ok = "MSRP okay0001 SEND\n\(to)\(from)Message-ID: msg00001\nByte-Range: 1-2/2\nContent-Type: text/plain\n\nhi\n-------okay0001$\n"

    static let table: [(String, String, Outcome)] = [
        ("bad start line", "HTTP/1.1 200 OK\n\n", .fatal(.badStartLine)),
        ("lower-case method", "MSRP abcd1234 send\n\(to)\(from)-------abcd1234$\n", .fatal(.badStartLine)),
        ("no method", "MSRP abcd1234\n\(to)\(from)-------abcd1234$\n", .fatal(.badStartLine)),
        ("tid too short", "MSRP abc SEND\n\(to)\(from)-------abc$\n", .fatal(.badTransactionID)),
        ("tid too long", "MSRP \(String(repeating: "a", count: 33)) SEND\n", .fatal(.badTransactionID)),
        ("tid illegal char", "MSRP ab_cd123 SEND\n", .fatal(.badTransactionID)),
        ("tid starts with a dot", "MSRP .abcd123 SEND\n", .fatal(.badTransactionID)),
        ("start line never ends", "MSRP abcd1234 SEND" + String(repeating: "X", count: 20000), .fatal(.badStartLine)),
        ("bare LF", "MSRP abcd1234 SEND\u{0A}", .fatal(.bareLineFeed)),
        ("missing To-Path", "MSRP abcd1234 SEND\n\(from)Message-ID: msg00001\n-------abcd1234$\n", .reject(.misorderedPaths, code: 400)),
        ("no paths", "MSRP abcd1234 SEND\nMessage-ID: msg00001\n-------abcd1234$\n", .reject(.missingToPath, code: 400)),
        ("missing From-Path", "MSRP abcd1234 SEND\n\(to)Message-ID: msg00001\n-------abcd1234$\n", .reject(.missingFromPath, code: 400)),
        ("misordered paths", "MSRP abcd1234 SEND\n\(from)\(to)Message-ID: msg00001\n-------abcd1234$\n", .reject(.misorderedPaths, code: 400)),
        ("path after others", "MSRP abcd1234 SEND\n\(to)Message-ID: msg00001\n\(from)-------abcd1234$\n", .reject(.misorderedPaths, code: 400)),
        ("malformed To-Path", "MSRP abcd1234 SEND\nTo-Path: http://x\n\(from)-------abcd1234$\n", .reject(.malformedHeader, code: 400)),
        ("header without colon", "MSRP abcd1234 SEND\n\(to)\(from)Bogus\n-------abcd1234$\n", .reject(.malformedHeader, code: 400)),
        ("control char in value", "MSRP abcd1234 SEND\n\(to)\(from)X-A: a\u{01}b\n-------abcd1234$\n", .reject(.malformedHeader, code: 400)),
        ("invalid UTF-8 in value", "MSRP abcd1234 SEND\n\(to)\(from)X-A: \u{FFFD}\n-------abcd1234$\n", .reject(.malformedHeader, code: 400)),
        ("Byte-Range malformed", "MSRP abcd1234 SEND\n\(to)\(from)Message-ID: msg00001\nByte-Range: x\nContent-Type: text/plain\n\nhi\n-------abcd1234$\n", .reject(.malformedHeader, code: 400)),
        ("Byte-Range end < start", "MSRP abcd1234 SEND\n\(to)\(from)Message-ID: msg00001\nByte-Range: 10-3/20\nContent-Type: text/plain\n\nhi\n-------abcd1234$\n", .reject(.malformedHeader, code: 400)),
        ("Byte-Range overflows Int64", "MSRP abcd1234 SEND\n\(to)\(from)Message-ID: msg00001\nByte-Range: 1-2/99999999999999999999\nContent-Type: text/plain\n\nhi\n-------abcd1234$\n", .reject(.malformedHeader, code: 400)),
        ("message over the maximum", "MSRP abcd1234 SEND\n\(to)\(from)Message-ID: msg00001\nByte-Range: 1-2/999999999\nContent-Type: text/plain\n\nhi\n-------abcd1234$\n", .reject(.messageTooLarge, code: 413)),
        ("duplicate Message-ID", "MSRP abcd1234 SEND\n\(to)\(from)Message-ID: msg00001\nMessage-ID: msg00002\n-------abcd1234$\n", .reject(.duplicateHeader, code: 400)),
        ("bad Message-ID", "MSRP abcd1234 SEND\n\(to)\(from)Message-ID: a\n-------abcd1234$\n", .reject(.malformedHeader, code: 400)),
        ("bad Failure-Report", "MSRP abcd1234 SEND\n\(to)\(from)Failure-Report: maybe\n-------abcd1234$\n", .reject(.malformedHeader, code: 400)),
        ("header line over the limit", "MSRP abcd1234 SEND\n\(to)\(from)X-Long: \(String(repeating: "v", count: 17000))\n-------abcd1234$\n", .reject(.headerBlockTooLarge, code: 400)),
        ("too many headers", "MSRP abcd1234 SEND\n\(to)\(from)" + String(repeating: "X-A: b\n", count: 70) + "-------abcd1234$\n", .reject(.tooManyHeaders, code: 400)),
        ("chunk over the limit", "MSRP abcd1234 SEND\n\(to)\(from)Message-ID: msg00001\nContent-Type: text/plain\n\n" + String(repeating: "z", count: 300_000) + "\n-------abcd1234$\n", .reject(.chunkTooLarge, code: 413)),
    ]

    static let limits = MSRPParserLimits(maxHeaderBytes: 16384, maxHeaderCount: 64, maxChunkBodyBytes: 200_000, maxMessageBytes: 1_000_000)

    @Test(arguments: table.map(\.0))
    func badInput(name: String) throws {
        let (_, text, outcome) = try #require(Self.table.first { $0.0 == name })
        var bytes = name == "bare LF" ? Array(text.utf8) : wire(text)
        if name == "invalid UTF-8 in value" {  // replace U+FFFD's encoding by a lone continuation byte
            let i = try #require(bytes.firstIndex(of: 0xEF))
            bytes.replaceSubrange(i..<(i + 3), with: [0x80])
        }
        let input = bytes + wire(Self.ok)
        for cuts in [[], Array(stride(from: 1, to: input.count, by: 997)), Array(1..<min(input.count, 400))] {
            let run = parse(input, cuts: cuts, limits: Self.limits)
            switch outcome {
            case .fatal(let kind):
                #expect(run.fatal?.kind == kind, "\(name): \(String(describing: run.fatal))")
                #expect(run.frames.isEmpty)
            case .reject(let kind, let code):
                #expect(run.fatal == nil, "\(name): \(String(describing: run.fatal))")
                #expect(run.invalid.count == 1)
                #expect(run.invalid.first?.error.kind == kind, "\(name): \(run.invalid)")
                #expect(run.invalid.first?.error.statusCode == code)
                #expect(run.invalid.first?.transactionID == "abcd1234")
                // The next frame on the connection still parses.
                #expect(run.frames.count == 1, "\(name): the following frame was lost")
                #expect(run.frames.last?.request?.transactionID == "okay0001")
            }
        }
    }

    @Test func rejectedRequestCanBeAnswered() throws {
        let run = parse(wire("MSRP abcd1234 SEND\n\(Self.to)\(Self.from)Message-ID: msg00001\nByte-Range: 9-1/1\n-------abcd1234$\n"))
        let invalid = try #require(run.invalid.first)
        let response = try #require(MSRPResponseBuilder.response(to: invalid))
        #expect(response.code == 400)
        #expect(response.transactionID == "abcd1234")
        #expect(response.toPath.map(\.description) == ["msrp://c.example:7777/abc;tcp"])
    }

    @Test func endlessBodyKeepsMemoryBounded() throws {
        // A body that never ends: the parser hands it out as it comes (nothing retained
        // beyond an end-line's length), then rejects it at the chunk limit and discards.
        var parser = MSRPParser(limits: MSRPParserLimits(maxChunkBodyBytes: 1 << 20))
        var buffer = ByteBuffer()
        buffer.writeBytes(wire("MSRP abcd1234 SEND\n\(Self.to)\(Self.from)Message-ID: msg00001\nContent-Type: text/plain\n\n"))
        let junk = [UInt8](repeating: 0x41, count: 64 * 1024)
        var sawInvalid = false
        for _ in 0..<100 {
            buffer.writeBytes(junk)
            while let event = try parser.next(&buffer) {
                if case .invalid(let inv) = event {
                    #expect(inv.error.kind == .chunkTooLarge)
                    #expect(inv.headEmitted)
                    sawInvalid = true
                }
            }
            buffer.discardReadBytes()
            #expect(buffer.readableBytes < 64)
        }
        #expect(sawInvalid)
    }

    @Test func endLineOfAnotherTransactionIsBody() throws {
        let body = "line\r\n-------other123$\r\n-------abcd1234x\r\n-------abcd1234$ \r\nend"
        let text = wire("MSRP abcd1234 SEND\n\(Self.to)\(Self.from)Message-ID: msg00001\nContent-Type: text/plain\n\n")
            + Array(body.utf8) + wire("\n-------abcd1234$\n")
        let run = parse(text)
        #expect(run.frames.count == 1)
        #expect(run.frames.first?.body.map { String(buffer: $0) } == body)
    }
}
