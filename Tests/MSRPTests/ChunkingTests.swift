#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Testing

@testable import MSRP

@Suite struct ChunkingTests {
    static let template = MSRPRequestHead(
        transactionID: "unused0", method: .send,
        toPath: [try! MSRPURI("msrp://b.example:2855/bob;tcp")], fromPath: [try! MSRPURI("msrp://a.example:2855/al;tcp")],
        headers: [.messageID("msgABCD1"), .successReport(.yes), .contentType(.textPlain)])

    static func bytes(_ n: Int) -> ByteBuffer {
        ByteBuffer(bytes: (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
    }

    @Test func chunkerRanges() {
        let frames = MSRPChunker.frames(template: Self.template, body: Self.bytes(5000), chunkSize: 2048)
        #expect(frames.count == 3)
        #expect(frames.map { $0.request?.headers.byteRange } == [
            ByteRange(start: 1, end: 2048, total: 5000),
            ByteRange(start: 2049, end: 4096, total: 5000),
            ByteRange(start: 4097, end: 5000, total: 5000),
        ])
        #expect(frames.map(\.flag) == [.more, .more, .complete])
        #expect(Set(frames.compactMap { $0.request?.transactionID }).count == 3)
        // Content-Type stays the last header, after Byte-Range is added.
        #expect(frames[0].request?.headers.fields.last == .contentType(.textPlain))

        let big = MSRPChunker.frames(template: Self.template, body: Self.bytes(10000), chunkSize: 4096)
        #expect(big[0].request?.headers.byteRange == ByteRange(start: 1, end: nil, total: 10000))  // interruptible: "*"
        let empty = MSRPChunker.frames(template: Self.template, body: ByteBuffer())
        #expect(empty.count == 1)
        #expect(empty[0].request?.headers.byteRange == ByteRange(start: 1, end: 0, total: 0))
    }

    @Test func interruptionResumes() {
        var chunker = MSRPChunker(template: Self.template, totalSize: 10000, chunkSize: 8000)
        let first = chunker.next()!
        chunker.interrupt(first, after: 3000)  // sent with "+" after 3000 bytes
        let second = chunker.next()!
        #expect(second.offset == 3000)
        #expect(second.head.headers.byteRange?.start == 3001)
        #expect(second.flag == .complete)
        #expect(chunker.isFinished)
    }

    /// A relay re-chunking a chunk it received (bytes 10001-16000 of 20000, ended
    /// with "+"): the message's Byte-Ranges, the part's offsets, "+" kept last.
    @Test func rechunkingAPartOfAMessage() {
        var chunker = MSRPChunker(template: Self.template, part: 10000, length: 6000, of: 20000, lastFlag: .more, chunkSize: 2048)
        var chunks: [MSRPChunk] = []
        while let c = chunker.next() { chunks.append(c) }
        #expect(chunks.map(\.offset) == [0, 2048, 4096])
        #expect(chunks.map { $0.head.headers.byteRange } == [
            ByteRange(start: 10001, end: 12048, total: 20000),
            ByteRange(start: 12049, end: 14096, total: 20000),
            ByteRange(start: 14097, end: 16000, total: 20000),
        ])
        #expect(chunks.map(\.flag) == [.more, .more, .more])
        // An unknown total stays "*"; the part that ends the message ends with "$".
        var last = MSRPChunker(template: Self.template, part: 0, length: 5000, of: nil, lastFlag: .complete, chunkSize: 4096)
        let first = last.next()!
        #expect(first.head.headers.byteRange == ByteRange(start: 1, end: nil, total: nil))
        #expect(last.next()?.flag == .complete)
    }

    func feed(_ assembler: inout ChunkAssembler, _ frame: MSRPFrame, pieces: Int = 1) throws -> ChunkAssembler.Outcome {
        try assembler.begin(frame.request!)
        var body = frame.body ?? ByteBuffer()
        let step = max(1, body.readableBytes / pieces)
        while body.readableBytes > 0 {
            try assembler.append(body.readSlice(length: min(step, body.readableBytes))!)
        }
        return try assembler.end(frame.flag)
    }

    func assembledBytes(_ outcome: ChunkAssembler.Outcome) throws -> [UInt8]? {
        guard case .complete(let m) = outcome else { return nil }
        switch m.body {
        case .memory(let b): return Array(b.readableBytesView)
        case .file(let path):
            let fd = open(path, O_RDONLY)
            defer { close(fd); unlink(path) }
            var out = [UInt8](repeating: 0, count: Int(m.size))
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            #expect(n == Int(m.size))
            return out
        }
    }

    @Test(arguments: [1, 3], [100, 1 << 30])
    func outOfOrderAndOverlapping(pieces: Int, threshold: Int) throws {
        let original = Self.bytes(9000)
        var frames = MSRPChunker.frames(template: Self.template, body: original, chunkSize: 2048)
        frames.reverse()  // out of order: "$" first
        var assembler = ChunkAssembler(limits: ChunkAssemblerLimits(memoryThreshold: threshold))
        // An overlapping duplicate of bytes 1000..3000 first, with garbage the later chunks overwrite.
        var overlapHead = Self.template
        overlapHead.headers.set(.byteRange(ByteRange(start: 1001, end: 3000, total: 9000)))
        _ = try feed(&assembler, MSRPFrame(head: .request(overlapHead), body: ByteBuffer(repeating: 0xEE, count: 2000), flag: .more))
        var result: ChunkAssembler.Outcome = .incomplete
        for (i, f) in frames.enumerated() {
            result = try feed(&assembler, f, pieces: pieces)
            if i < frames.count - 1, case .complete = result { Issue.record("completed early") }
        }
        #expect(try assembledBytes(result) == Array(original.readableBytesView))
        #expect(assembler.pendingCount == 0)
    }

    @Test func starTotalsAndInterruptedChunks() throws {
        var assembler = ChunkAssembler()
        var h1 = Self.template
        h1.headers.set(.byteRange(ByteRange(start: 1, end: nil, total: nil)))
        // Interrupted after 5 bytes: "+" although the range said "*".
        #expect(try feed(&assembler, MSRPFrame(head: .request(h1), body: ByteBuffer(string: "hello"), flag: .more)).isIncomplete)
        var h2 = Self.template
        h2.headers.set(.byteRange(ByteRange(start: 6, end: nil, total: nil)))
        let out = try feed(&assembler, MSRPFrame(head: .request(h2), body: ByteBuffer(string: " world"), flag: .complete))
        #expect(try assembledBytes(out) == Array("hello world".utf8))
    }

    @Test func abortDropsTheMessage() throws {
        var assembler = ChunkAssembler(limits: ChunkAssemblerLimits(memoryThreshold: 10))
        let frames = MSRPChunker.frames(template: Self.template, body: Self.bytes(100), chunkSize: 40)
        _ = try feed(&assembler, frames[0])
        var aborted = frames[1]
        aborted.flag = .aborted
        guard case .aborted(let id) = try feed(&assembler, aborted) else {
            Issue.record("not aborted")
            return
        }
        #expect(id == "msgABCD1")
        #expect(assembler.pendingCount == 0)
    }

    @Test func overTheMaximumIs413() throws {
        let assembler = ChunkAssembler(limits: ChunkAssemblerLimits(memoryThreshold: 64, maxMessageBytes: 1000))
        var h = Self.template
        h.headers.set(.byteRange(ByteRange(start: 1, end: nil, total: 5000)))
        #expect(throws: ChunkAssemblyError(code: 413, reason: "message of 5000 bytes over 1000")) { try assembler.begin(h) }
        h.headers.set(.byteRange(ByteRange(start: 900, end: nil, total: nil)))
        try assembler.begin(h)
        #expect { try assembler.append(Self.bytes(200)) } throws: { ($0 as? ChunkAssemblyError)?.code == 413 }
    }

    @Test func tooManyPendingMessages() throws {
        var assembler = ChunkAssembler(limits: ChunkAssemblerLimits(maxPendingMessages: 2))
        for i in 0..<3 {
            var h = Self.template
            h.headers.set(.messageID("pending\(i)"))
            h.headers.set(.byteRange(ByteRange(start: 1, end: nil, total: 100)))
            if i < 2 {
                _ = try feed(&assembler, MSRPFrame(head: .request(h), body: Self.bytes(10), flag: .more))
            } else {
                #expect(throws: ChunkAssemblyError.self) { try assembler.begin(h) }
            }
        }
    }

    @Test func reportBuilder() throws {
        let send = Self.template
        let builder = MSRPReportBuilder(reportingOn: send)
        let ok = builder.success(range: .whole(9000), transactionID: "rep12345")
        #expect(ok.method == .report)
        #expect(ok.toPath == send.fromPath)
        #expect(ok.fromPath == [send.toPath.last!])
        #expect(ok.headers.messageID == "msgABCD1")
        #expect(ok.headers.status == MSRPStatus(code: 200, reason: "OK"))
        #expect(ok.headers.byteRange == ByteRange(start: 1, end: 9000, total: 9000))
        let bad = builder.failure(code: 408, range: ByteRange(start: 1, end: 10, total: 9000))
        #expect(bad.headers.status?.description == "000 408 Request Timeout")
        var out = ByteBuffer()
        out.writeMSRPRequest(ok, body: nil)
        #expect(String(buffer: out) == """
        MSRP rep12345 REPORT\r
        To-Path: msrp://a.example:2855/al;tcp\r
        From-Path: msrp://b.example:2855/bob;tcp\r
        Message-ID: msgABCD1\r
        Byte-Range: 1-9000/9000\r
        Status: 000 200 OK\r
        -------rep12345$\r

        """)
        // Responses: SEND goes to the previous hop only; others to the whole path reversed.
        var relayed = send
        relayed.fromPath = [try MSRPURI("msrp://r.example:1/r;tcp")] + send.fromPath
        #expect(MSRPResponseBuilder.response(to: relayed, code: 200).toPath == [send.fromPath.last!])
        relayed.method = .auth
        #expect(MSRPResponseBuilder.response(to: relayed, code: 200).toPath == relayed.fromPath.reversed())
    }
}

extension ChunkAssembler.Outcome {
    var isIncomplete: Bool {
        if case .incomplete = self { return true }
        return false
    }
}
