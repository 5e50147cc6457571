import NIOCore
import Testing
import TestPeers

@testable import MSRP

/// Generated frames with hostile bodies (CRLF, NUL, binary, fake end-lines),
/// serialised back to back and cut at random points: the parser must give back
/// exactly the frames that went in.
@Suite struct RandomizedTests {
    static func randomBody(_ rng: inout SplitMix, otherTIDs: [String], tid: String) -> [UInt8] {
        var body: [UInt8] = []
        let parts = Int.random(in: 0...12, using: &rng)
        for _ in 0..<parts {
            switch Int.random(in: 0...7, using: &rng) {
            case 0: body += [0x0D, 0x0A]
            case 1: body += [0, 0, 0]
            case 2: body += (0..<Int.random(in: 1...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 3: body += Array("\r\n-------\(otherTIDs.randomElement(using: &rng)!)$\r\n".utf8)
            case 4: body += Array("\r\n-------\(tid)".utf8) + [UInt8(ascii: "x")]  // own tid, wrong flag
            case 5: body += Array("\r\n-------\(tid)$".utf8)  // own end-line without CRLF after it
            case 6: body += Array("-------\(tid)$\r\n".utf8)  // own end-line not preceded by CRLF
            default: body += Array("plain text é ü 漢字 ".utf8)
            }
        }
        return body
    }

    /// Whether the first end-line in `CRLF body CRLF end-line` is the real one.
    static func isFramable(_ body: [UInt8], tid: String) -> Bool {
        let full = [0x0D, 0x0A] + body + Array("\r\n-------\(tid)$\r\n".utf8)
        let needle = Array("\r\n-------\(tid)".utf8)
        let expected = 2 + body.count
        var i = 0
        while i + needle.count + 3 <= full.count {
            if Array(full[i..<(i + needle.count)]) == needle, [0x24, 0x2B, 0x23].contains(full[i + needle.count]),
                full[i + needle.count + 1] == 0x0D, full[i + needle.count + 2] == 0x0A
            {
                return i == expected
            }
            i += 1
        }
        return false
    }

    static func randomFrame(_ rng: inout SplitMix, index: Int) -> MSRPFrame {
        let tid = MSRPIdentifier.make(length: Int.random(in: 4...32, using: &rng), using: &rng)
        let to = try! MSRPURI("msrp://gw.example:2855/s\(index % 7);tcp")
        let from = try! MSRPURI("msrp://[::1]:\(1000 + index)/c\(index);tcp")
        if Int.random(in: 0...4, using: &rng) == 0 {
            let head = MSRPResponseHead(transactionID: tid, code: [200, 400, 408, 481][index % 4], comment: index % 2 == 0 ? nil : "why not",
                                        toPath: [from], fromPath: [to])
            return MSRPFrame(head: .response(head))
        }
        var headers: MSRPHeaderFields = [.messageID("msg\(index)x")]
        var body: [UInt8]? = nil
        if Int.random(in: 0...5, using: &rng) != 0 {
            // Near-misses of the own end-line are fine; a real one is a sender bug (§5.1).
            repeat {
                body = randomBody(&rng, otherTIDs: ["zzzz9999", "abcdEFGH"], tid: tid)
            } while !isFramable(body!, tid: tid)
        }
        if let body { headers.append(.byteRange(ByteRange(start: 1, end: Int64(body.count), total: Int64(body.count)))) }
        if Bool.random(using: &rng) { headers.append(.failureReport([.yes, .no, .partial][index % 3])) }
        if Bool.random(using: &rng) { headers.append(.other(name: "X-Ext-\(index)", value: "v \(index) ✓")) }
        if body != nil { headers.append(.contentType(.textPlain)) }
        let head = MSRPRequestHead(transactionID: tid, method: [.send, .report, .other("FOO")][index % 3],
                                   toPath: [to], fromPath: [from], headers: headers)
        return MSRPFrame(head: .request(head), body: body.map { ByteBuffer(bytes: $0) },
                         flag: [.complete, .more, .aborted][index % 3])
    }

    @Test(arguments: 0..<40)
    func generatedFramesSurviveRandomCuts(seed: Int) {
        var rng = SplitMix(state: UInt64(seed) &* 7919)
        let frames = (0..<Int.random(in: 1...20, using: &rng)).map { Self.randomFrame(&rng, index: $0) }
        let bytes = serialize(frames)
        for _ in 0..<8 {
            let cuts = (0..<Int.random(in: 0...40, using: &rng)).map { _ in Int.random(in: 1..<max(2, bytes.count), using: &rng) }
            let run = parse(bytes, cuts: cuts)
            #expect(run.fatal == nil)
            #expect(run.invalid.isEmpty)
            #expect(run.frames == frames, "seed \(seed) cuts \(cuts)")
            #expect(run.leftover == 0)
        }
    }

    @Test(arguments: 0..<200)
    func randomGarbageNeverCrashesAndStaysBounded(seed: Int) {
        var rng = SplitMix(state: UInt64(seed) &+ 12345)
        // Mutate a valid stream: flip, insert and delete bytes.
        var bytes = serialize((0..<4).map { Self.randomFrame(&rng, index: $0) })
        for _ in 0..<Int.random(in: 1...20, using: &rng) where !bytes.isEmpty {
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0...2, using: &rng) {
            case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)
            case 1: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: i)
            default: bytes.remove(at: i)
            }
        }
        let run = parse(bytes, cuts: (0..<10).map { _ in Int.random(in: 1...max(1, bytes.count), using: &rng) },
                        limits: MSRPParserLimits(maxHeaderBytes: 4096, maxHeaderCount: 32, maxChunkBodyBytes: 8192))
        // Whatever happened, the parser kept no more than a line or an end-line's worth.
        #expect(run.leftover <= 4096)
    }
}
