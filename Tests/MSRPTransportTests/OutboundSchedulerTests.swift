import MSRP
import NIOCore
import Testing

@testable import MSRPTransport

/// The scheduler's fairness rules, without sockets: a large chunk is interrupted
/// with "+" as soon as something else waits, and resumes in a new chunk.
@Suite struct OutboundSchedulerTests {
    static func template(_ id: String) -> MSRPRequestHead {
        MSRPRequestHead(transactionID: "", method: .send, toPath: [try! MSRPURI("msrp://b:1/s;tcp")],
                        fromPath: [try! MSRPURI("msrp://a:1/t;tcp")], headers: [.messageID(id), .contentType(.textPlain)])
    }

    /// Runs the scheduler to completion and parses the wire bytes back into frames.
    static func drain(_ s: inout OutboundScheduler, interleave: (Int, inout OutboundScheduler) -> Void = { _, _ in }) throws -> [MSRPFrame] {
        var wire = ByteBuffer()
        var step = 0
        while let w = try s.next(allocator: ByteBufferAllocator()) {
            var bytes = w.bytes
            wire.writeBuffer(&bytes)
            interleave(step, &s)
            step += 1
        }
        var parser = MSRPParser()
        var frames: [MSRPFrame] = []
        var head: MSRPFrameHead?
        var body = ByteBuffer()
        while let e = try parser.next(&wire) {
            switch e {
            case .head(let h, _): head = h; body = ByteBuffer()
            case .body(var b): body.writeBuffer(&b)
            case .end(let f): frames.append(MSRPFrame(head: head!, body: body, flag: f))
            case .invalid(let i): Issue.record("invalid frame \(i)")
            }
        }
        return frames
    }

    /// Two parts of one message (a relay re-chunking two chunks it received) go
    /// out in order, while another message still gets its turns between them.
    @Test func partsOfOneMessageKeepTheirOrder() throws {
        var s = OutboundScheduler(pieceSize: 4096)
        let part = ByteBuffer(repeating: 0x41, count: 20_000)
        _ = s.enqueueMessage(MSRPChunker(template: Self.template("relayed1"), part: 0, length: 20_000, of: 40_000, lastFlag: .more, chunkSize: 8192),
                             source: MemoryBodySource(part), orderKey: "relayed1")
        _ = s.enqueueMessage(MSRPChunker(template: Self.template("relayed1"), part: 20_000, length: 20_000, of: 40_000, lastFlag: .complete, chunkSize: 8192),
                             source: MemoryBodySource(part), orderKey: "relayed1")
        _ = s.enqueueMessage(MSRPChunker(template: Self.template("other001"), totalSize: 9000, chunkSize: 4096), source: MemoryBodySource(ByteBuffer(repeating: 0x42, count: 9000)))
        let frames = try Self.drain(&s)
        let starts = frames.filter { $0.request?.headers.messageID == "relayed1" }.compactMap { $0.request?.headers.byteRange?.start }
        #expect(starts == starts.sorted(), "the relayed message's bytes in order: \(starts)")
        #expect(frames.last?.request?.headers.messageID == "relayed1" && frames.last?.flag == .complete)
        let ids = frames.compactMap { $0.request?.headers.messageID }
        let firstOther = try #require(ids.firstIndex(of: "other001"))
        let firstPartEnd = try #require(frames.firstIndex { $0.request?.headers.byteRange?.start ?? 0 > 20_000 })
        #expect(firstOther < firstPartEnd, "the other message gets a turn within the first part: \(ids)")
    }

    /// What the scheduler holds in memory: frames and in-memory bodies, counted
    /// down as they are written or dropped; a file's body is not counted.
    @Test func queuedBytesCountsWhatIsHeldInMemory() throws {
        var s = OutboundScheduler(pieceSize: 4096)
        s.enqueueFrame(ByteBuffer(string: String(repeating: "f", count: 100)))
        let big = s.enqueueMessage(MSRPChunker(template: Self.template("bigmsg01"), totalSize: 50_000, chunkSize: 65536),
                                   source: MemoryBodySource(ByteBuffer(repeating: 0x42, count: 50_000)))
        #expect(s.queuedBytes == 50_100)
        _ = try s.next(allocator: ByteBufferAllocator())  // the frame
        _ = try s.next(allocator: ByteBufferAllocator())  // the head and a first piece
        #expect(s.queuedBytes == 50_000 - 4096)
        s.abort(big)  // in flight: ends with "#", the rest is dropped
        while try s.next(allocator: ByteBufferAllocator()) != nil {}
        #expect(s.queuedBytes == 0)
        _ = s.enqueueMessage(MSRPChunker(template: Self.template("short001"), totalSize: 5), source: MemoryBodySource(ByteBuffer(string: "short")))
        while try s.next(allocator: ByteBufferAllocator()) != nil {}
        #expect(s.queuedBytes == 0)
    }

    @Test func largeChunkIsInterruptedForAShortMessage() throws {
        var s = OutboundScheduler(pieceSize: 4096)
        let big = ByteBuffer(repeating: 0x42, count: 100_000)
        _ = s.enqueueMessage(MSRPChunker(template: Self.template("bigmsg01"), totalSize: 100_000, chunkSize: 65536), source: MemoryBodySource(big))
        let frames = try Self.drain(&s) { step, s in
            if step == 2 {
                _ = s.enqueueMessage(MSRPChunker(template: Self.template("short001"), totalSize: 5), source: MemoryBodySource(ByteBuffer(string: "short")))
                var r = ByteBuffer()
                r.writeMSRPResponse(MSRPResponseHead(transactionID: "resp0001", code: 200, comment: "OK", toPath: [try! MSRPURI("msrp://a:1/t;tcp")], fromPath: [try! MSRPURI("msrp://b:1/s;tcp")]))
                s.enqueueFrame(r)
            }
        }
        // big chunk 1 interrupted after 3 pieces, the response, the short message, then big resumes.
        #expect(frames[0].request?.headers.messageID == "bigmsg01")
        #expect(frames[0].flag == .more)
        #expect(frames[0].body?.readableBytes == 3 * 4096)
        #expect(frames[0].request?.headers.byteRange == ByteRange(start: 1, end: nil, total: 100_000))
        #expect(frames[1].response?.transactionID == "resp0001")
        #expect(frames[2].request?.headers.messageID == "short001")
        #expect(frames[2].flag == .complete)
        #expect(frames[3].request?.headers.byteRange?.start == Int64(3 * 4096 + 1))
        // Reassembled, the big message is whole.
        let assembler = ChunkAssembler()
        var result: ChunkAssembler.Outcome = .incomplete
        for f in frames where f.request?.headers.messageID == "bigmsg01" {
            try assembler.begin(f.request!)
            try assembler.append(f.body!)
            result = try assembler.end(f.flag)
        }
        guard case .complete(let m) = result else {
            Issue.record("big message incomplete")
            return
        }
        #expect(m.size == 100_000)
    }

    @Test func twoLargeMessagesAlternate() throws {
        var s = OutboundScheduler(pieceSize: 4096)
        for id in ["aaaa0001", "bbbb0002"] {
            _ = s.enqueueMessage(MSRPChunker(template: Self.template(id), totalSize: 50_000, chunkSize: 65536),
                                 source: MemoryBodySource(ByteBuffer(repeating: 0x41, count: 50_000)))
        }
        let frames = try Self.drain(&s)
        let ids = frames.compactMap { $0.request?.headers.messageID }
        #expect(ids.prefix(4) == ["aaaa0001", "bbbb0002", "aaaa0001", "bbbb0002"])
        #expect(frames.filter { $0.flag == .complete }.count == 2)
    }

    @Test func smallChunkIsNeverInterrupted() throws {
        var s = OutboundScheduler(pieceSize: 2048)
        _ = s.enqueueMessage(MSRPChunker(template: Self.template("small001"), totalSize: 2000, chunkSize: 2048),
                             source: MemoryBodySource(ByteBuffer(repeating: 0x41, count: 2000)))
        s.enqueueFrame(ByteBuffer(string: ""))
        let frames = try Self.drain(&s)
        #expect(frames.count == 1)
        #expect(frames[0].request?.headers.byteRange == ByteRange(start: 1, end: 2000, total: 2000))
    }

    @Test func abortEndsTheChunkWithHash() throws {
        var s = OutboundScheduler(pieceSize: 4096)
        let id = s.enqueueMessage(MSRPChunker(template: Self.template("abort001"), totalSize: 100_000, chunkSize: 65536),
                                  source: MemoryBodySource(ByteBuffer(repeating: 0x41, count: 100_000)))
        let frames = try Self.drain(&s) { step, s in if step == 1 { s.abort(id) } }
        #expect(frames.count == 1)
        #expect(frames[0].flag == .aborted)
    }
}

@Suite struct TransactionTableTests {
    @Test func deadlinesExpireInOrderAndAnsweredOnesArePruned() {
        var table = TransactionTable<Int>()
        let t0 = NIODeadline.uptimeNanoseconds(1_000)
        for i in 0..<1000 { table.add("t\(i)", i, deadline: t0 + .nanoseconds(Int64(i))) }
        for i in 0..<990 { #expect(table.resolve("t\(i)") == i) }
        // In-order answers leave only what is still in flight in the queue.
        #expect(table.queuedDeadlines == 10)
        #expect(table.resolve("t5") == nil)  // a repeated response
        #expect(table.nextDeadline == t0 + .nanoseconds(990))
        let expired = table.expire(now: t0 + .nanoseconds(995))
        #expect(expired.map(\.1) == Array(990...995))
        #expect(table.count == 4)
        #expect(table.removeAll().count == 4)
    }
}
