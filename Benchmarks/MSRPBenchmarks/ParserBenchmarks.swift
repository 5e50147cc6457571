import CMSRPSupport
import Foundation
import MSRP
import NIOCore

/// Parser throughput, beside `memchr` over the same bytes.
enum ParserBenchmarks {
    /// A 300-byte SEND such as a chat client sends.
    static func smallSend(_ i: Int, distinctPaths: Bool = false) -> [UInt8] {
        let tid = ("t" + String(i, radix: 36)).padding(toLength: 12, withPad: "x", startingAt: 0)
        func render(_ bodyLength: Int) -> [UInt8] {
            let text = "MSRP \(tid) SEND\r\n"
                + "To-Path: msrp://gw.example.com:2855/\(distinctPaths ? "s" + String(i, radix: 36).padding(toLength: 13, withPad: "q", startingAt: 0) : "kjhd37s2s20w2a");tcp\r\n"
                + "From-Path: msrp://alice.example.com:7654/jshA7weztas;tcp\r\n"
                + "Message-ID: m\(tid)\r\nSuccess-Report: yes\r\nByte-Range: 1-\(bodyLength)/\(bodyLength)\r\n"
                + "Content-Type: text/plain\r\n\r\n" + String(repeating: "b", count: bodyLength) + "\r\n-------\(tid)$\r\n"
            return Array(text.utf8)
        }
        var length = 40
        while render(length).count < 300 { length += 1 }
        return render(length)
    }

    /// Cuts `input` into separate `readSize` buffers, as socket reads arrive.
    /// (Separate storage matters: NIO copies a slice that starts past 16 MiB.)
    static func reads(_ input: ByteBuffer, readSize: Int) -> [ByteBuffer] {
        var out: [ByteBuffer] = []
        var rest = input
        while rest.readableBytes > 0 {
            let n = min(readSize, rest.readableBytes)
            out.append(ByteBuffer(bytes: rest.readBytes(length: n)!))
        }
        return out
    }

    /// Parses the reads in order, keeping what the parser leaves, as a connection does.
    static func parseAll(_ reads: [ByteBuffer], limits: MSRPParserLimits) -> Int {
        var parser = MSRPParser(limits: limits)
        var pending = ByteBuffer()
        var frames = 0
        for piece in reads {
            var buffer: ByteBuffer
            if pending.readableBytes > 0 {
                var piece = piece
                pending.writeBuffer(&piece)
                buffer = pending
            } else {
                buffer = piece
            }
            pending = ByteBuffer()
            while let event = try! parser.next(&buffer) {
                if case .end = event { frames += 1 }
            }
            if buffer.readableBytes > 0 { pending = buffer }
        }
        return frames
    }

    /// memchr for a byte that is not there: one pass over every read.
    static func memchrScan(_ reads: [ByteBuffer]) -> Int {
        var found = 0
        for piece in reads {
            piece.withUnsafeReadableBytes { raw in
                if let hit = memchr(raw.baseAddress!, 0x07, raw.count) { found += Int(bitPattern: hit) & 1 }
            }
        }
        return found
    }

    static func runSmallSends() {
        for distinct in [false, true] {
            let count = Int(ProcessInfo.processInfo.environment["BENCH_COUNT"] ?? "") ?? 200_000
            var input = ByteBuffer()
            for i in 0..<count { input.writeBytes(smallSend(i, distinctPaths: distinct)) }
            let bytes = input.readableBytes
            var frames = 0
            let pieces = reads(input, readSize: 64 * 1024)
            let parse = Harness.time(runs: Harness.runs) { frames = parseAll(pieces, limits: MSRPParserLimits()) }
            precondition(frames == count, "parsed \(frames) of \(count)")
            let scan = Harness.time(runs: Harness.runs) { Harness.sink &+= memchrScan(pieces) }
            let rate = Double(count) / parse
            Harness.print("parse-small-sends\(distinct ? " (every SEND on another session)" : ""): \(count) SENDs of \(bytes / count) bytes: \(Harness.format(rate)) msg/s"
                + " (\(Harness.format(Double(bytes) / parse))B/s); memchr over the same bytes: \(Harness.format(Double(bytes) / scan))B/s"
                + "; parser/memchr = \(String(format: "%.3f", scan / parse))  [target >= 1 M msg/s]")
        }
    }

    static func runLargeBodies() {
        let chunks = 64
        let bodySize = 1 << 20
        var input = ByteBuffer()
        var rng = SystemRandomNumberGenerator()
        // Bodies of text lines with CRLFs and dashes, the worst case for an end-line search.
        var body = [UInt8](repeating: 0, count: bodySize)
        let line = Array("-- a line of chat text, with dashes ---- and CRLF endings --\r\n".utf8)
        for i in 0..<bodySize { body[i] = line[i % line.count] }
        for i in 0..<chunks {
            let tid = MSRPIdentifier.make(length: 16, using: &rng)
            input.writeString("MSRP \(tid) SEND\r\nTo-Path: msrp://gw:2855/s;tcp\r\nFrom-Path: msrp://a:1/c;tcp\r\n"
                + "Message-ID: bigmessage1\r\nByte-Range: \(i * bodySize + 1)-*/\(chunks * bodySize)\r\nContent-Type: application/octet-stream\r\n\r\n")
            input.writeBytes(body)
            input.writeString("\r\n-------\(tid)\(i == chunks - 1 ? "$" : "+")\r\n")
        }
        let bytes = input.readableBytes
        let limits = MSRPParserLimits(maxChunkBodyBytes: 1 << 30, maxMessageBytes: 1 << 40)
        var frames = 0
        let pieces = reads(input, readSize: 64 * 1024)
        let parse = Harness.time(runs: Harness.runs) { frames = parseAll(pieces, limits: limits) }
        precondition(frames == chunks)
        let scan = Harness.time(runs: Harness.runs) { Harness.sink &+= memchrScan(pieces) }
        Harness.print("parse-1mib-chunks: \(chunks) chunks of 1 MiB: parser \(Harness.format(Double(bytes) / parse))B/s"
            + "; memchr \(Harness.format(Double(bytes) / scan))B/s; parser/memchr = \(String(format: "%.2f", scan / parse))  [target >= 0.5]")
    }
}
