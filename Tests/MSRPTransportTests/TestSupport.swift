import Foundation
import Logging
import MSRP
import MSRPTransport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Testing
import TestPeers

/// A raw TCP client for tests: writes any bytes, and collects the frames it gets back.
final class RawMSRPClient: @unchecked Sendable {
    let channel: any Channel
    private let frames: NIOLockedValueBox<[MSRPFrame]>
    private let closedBox: NIOLockedValueBox<Bool>

    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var parser = MSRPParser()
        var buffer = ByteBuffer()
        var head: MSRPFrameHead?
        var body: ByteBuffer?
        let frames: NIOLockedValueBox<[MSRPFrame]>
        let closed: NIOLockedValueBox<Bool>
        init(_ frames: NIOLockedValueBox<[MSRPFrame]>, _ closed: NIOLockedValueBox<Bool>) {
            self.frames = frames
            self.closed = closed
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = unwrapInboundIn(data)
            buffer.writeBuffer(&incoming)
            while let event = try? parser.next(&buffer) {
                switch event {
                case .head(let h, let hasBody):
                    head = h
                    body = hasBody ? ByteBuffer() : nil
                case .body(var b): body?.writeBuffer(&b)
                case .end(let flag):
                    if let h = head {
                        let f = MSRPFrame(head: h, body: body, flag: flag)
                        frames.withLockedValue { $0.append(f) }
                    }
                case .invalid: break
                }
            }
            buffer.discardReadBytes()
        }
        func channelInactive(context: ChannelHandlerContext) {
            closed.withLockedValue { $0 = true }
        }
    }

    init(port: Int, group: any EventLoopGroup) async throws {
        let frames = NIOLockedValueBox<[MSRPFrame]>([])
        let closed = NIOLockedValueBox(false)
        self.frames = frames
        self.closedBox = closed
        channel = try await ClientBootstrap(group: group).channelInitializer { ch in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Collector(frames, closed)) }
        }.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: port)).get()
    }

    func write(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    func write(_ text: String) async throws {
        try await write(Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8))
    }

    var received: [MSRPFrame] { frames.withLockedValue { $0 } }
    var isClosed: Bool { closedBox.withLockedValue { $0 } }

    /// Waits until `count` frames have arrived (or the timeout passes).
    @discardableResult
    func waitFrames(_ count: Int, timeout: Duration = .seconds(15)) async -> [MSRPFrame] {
        _ = await until(timeout, every: .milliseconds(5)) { received.count >= count }
        return received
    }

    func waitClosed(timeout: Duration = .seconds(15)) async -> Bool {
        await until(timeout, every: .milliseconds(5)) { isClosed }
    }

    func close() async { try? await channel.close() }
}

/// Records what a session's delegate is told; decides acknowledgements.
final class RecordingDelegate: MSRPSessionDelegate, @unchecked Sendable {
    enum AckPolicy: Sendable {
        case acceptNow
        case hold
        case reject(Int)
    }

    private let lock = NIOLock()
    private var _messages: [MSRPIncomingMessage] = []
    private var _reports: [MSRPRequestHead] = []
    private var _closed: [MSRPSessionCloseReason] = []
    let policy: AckPolicy

    init(policy: AckPolicy = .acceptNow) { self.policy = policy }

    func session(_ session: MSRPSession, didReceive message: MSRPIncomingMessage) {
        lock.withLock { _messages.append(message) }
        switch policy {
        case .acceptNow: message.acknowledgement.accept()
        case .hold: break
        case .reject(let code): message.acknowledgement.reject(code: code, comment: "test rejects")
        }
        if message.successReport == .yes, case .acceptNow = policy {
            let report = MSRPReportBuilder(reportingOn: message.head, local: session.localURI).success(range: message.message.range)
            try? session.sendReport(report)
        }
    }

    func session(_ session: MSRPSession, didReceiveReport report: MSRPRequestHead) {
        lock.withLock { _reports.append(report) }
    }

    func sessionDidClose(_ session: MSRPSession, reason: MSRPSessionCloseReason) {
        lock.withLock { _closed.append(reason) }
    }

    var messages: [MSRPIncomingMessage] { lock.withLock { _messages } }
    var reports: [MSRPRequestHead] { lock.withLock { _reports } }
    var closedReasons: [MSRPSessionCloseReason] { lock.withLock { _closed } }

    func waitMessages(_ n: Int, timeout: Duration = .seconds(10)) async -> [MSRPIncomingMessage] {
        _ = await until(timeout, every: .milliseconds(5)) { messages.count >= n }
        return messages
    }

    func waitReports(_ n: Int, timeout: Duration = .seconds(10)) async -> [MSRPRequestHead] {
        _ = await until(timeout, every: .milliseconds(5)) { reports.count >= n }
        return reports
    }
}

/// Reads an assembled message body, from memory or its spool file.
func bodyBytes(_ m: AssembledMessage) throws -> [UInt8] {
    switch m.body {
    case .memory(let b): return Array(b.readableBytesView)
    case .file(let path):
        defer { try? FileManager.default.removeItem(atPath: path) }
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

struct TestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

extension String {
    func replacingOccurrences(of a: String, with b: String) -> String {
        components(separatedBy: a).joined(separator: b)
    }
}

/// A deterministic body of any size that is generated, not stored.
struct PatternBody: MSRPBodySource {
    let size: Int64
    /// The end of the furthest range read so far (how much the sender took), if asked for.
    var readUpTo: NIOLockedValueBox<Int64>? = nil
    func read(offset: Int64, length: Int, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        readUpTo?.withLockedValue { $0 = max($0, offset + Int64(length)) }
        var b = allocator.buffer(capacity: length)
        b.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { p in
            for i in 0..<length { p[i] = Self.byte(at: offset + Int64(i)) }
            return length
        }
        return b
    }
    /// Includes CR, LF and dashes so that bodies look like end-lines now and then.
    /// Made once: made per byte, a 10 MB body cost seconds of the test pool's CPU.
    private static let table: [UInt8] = Array("ab\r\n-------cd\r\n\0\u{7f}xyz".utf8)

    static func byte(at i: Int64) -> UInt8 {
        table[Int(i % Int64(table.count))] &+ UInt8(truncatingIfNeeded: i / 4099)
    }
    var bytes: [UInt8] { (0..<size).map { Self.byte(at: $0) } }
}
