import Foundation
import MSRP
import MSRPTransport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Accepts every message at once (the transport's own cost, no gateway behind it).
final class AcceptAll: MSRPSessionDelegate {
    let onMessage: @Sendable (MSRPIncomingMessage) -> Void
    init(onMessage: @escaping @Sendable (MSRPIncomingMessage) -> Void = { _ in }) { self.onMessage = onMessage }
    /// Keeps the message, then answers 200: the sender, once it has its 200,
    /// finds the message kept (answering first let receive-1gib's check look too
    /// early under load, as a gateway answering before the message is durable would).
    func session(_ session: MSRPSession, didReceive message: MSRPIncomingMessage) {
        onMessage(message)
        message.acknowledgement.accept()
    }
}

enum TransportBenchmarks {
    /// SEND -> 200 over loopback with 64 sessions sharing one connection, each
    /// sending one message after another; beside a raw NIO ping-pong of the same
    /// sizes with 64 exchanges in flight (what TCP and NIO cost without MSRP).
    static func runLoopback(sessions: Int = 64, seconds: Double = 3) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let receiver = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group)
        try await receiver.listen(host: "127.0.0.1", port: 0)
        let sender = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group)
        var outgoing: [MSRPSession] = []
        for _ in 0..<sessions {
            let inbox = receiver.createSession(delegate: AcceptAll())
            let out = sender.createSession(setup: .active, remotePath: [inbox.localURI], delegate: nil)
            try await out.connect()
            outgoing.append(out)
        }
        let body = String(repeating: "m", count: 60)  // ~300 bytes on the wire with headers
        var rates: [Double] = []
        for _ in 0..<3 {
            let counter = NIOLockedValueBox(0)
            let start = ContinuousClock.now
            let end = start + .milliseconds(Int(seconds * 1000))
            try await withThrowingTaskGroup(of: Int.self) { tasks in
                for s in outgoing {
                    tasks.addTask {
                        var n = 0
                        while ContinuousClock.now < end {
                            let outcome = try await s.send(MSRPOutgoingMessage(text: body))
                            precondition(outcome == .accepted)
                            n += 1
                        }
                        return n
                    }
                }
                for try await n in tasks { counter.withLockedValue { $0 += n } }
            }
            let elapsed = ContinuousClock.now - start
            let secs = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            rates.append(Double(counter.withLockedValue { $0 }) / secs)
        }
        await sender.shutdown()
        await receiver.shutdown()
        let reference = try await rawPingPong(group: group, inFlight: sessions, seconds: seconds)
        try await group.shutdownGracefully()
        let rate = Harness.median(rates)
        Harness.print("loopback-send-200: \(sessions) sessions: \(Harness.format(rate)) transactions/s"
            + "; raw NIO ping-pong (300 B / 160 B, \(sessions) in flight): \(Harness.format(reference)) round trips/s"
            + "; msrp/raw = \(String(format: "%.2f", rate / reference))  [target >= 50 k/s]")
    }

    /// Fixed-size request/response over one NIO connection, `inFlight` outstanding.
    static func rawPingPong(group: any EventLoopGroup, inFlight: Int, seconds: Double) async throws -> Double {
        final class Server: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = ByteBuffer
            typealias OutboundOut = ByteBuffer
            var pending = 0
            let response = ByteBuffer(repeating: 0x52, count: 160)
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                pending += unwrapInboundIn(data).readableBytes
                while pending >= 300 {
                    pending -= 300
                    context.write(wrapOutboundOut(response), promise: nil)
                }
            }
            func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
        }
        final class Client: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = ByteBuffer
            typealias OutboundOut = ByteBuffer
            var pending = 0
            var count = 0
            var stop = false
            let request = ByteBuffer(repeating: 0x51, count: 300)
            let inFlight: Int
            init(inFlight: Int) { self.inFlight = inFlight }
            func channelActive(context: ChannelHandlerContext) {
                for _ in 0..<inFlight { context.write(wrapOutboundOut(request), promise: nil) }
                context.flush()
            }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                pending += unwrapInboundIn(data).readableBytes
                while pending >= 160 {
                    pending -= 160
                    count += 1
                    if !stop { context.write(wrapOutboundOut(request), promise: nil) }
                }
            }
            func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
        }
        let server = try await ServerBootstrap(group: group)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Server()) } }
            .bind(host: "127.0.0.1", port: 0).get()
        var rates: [Double] = []
        for _ in 0..<3 {
            let client = Client(inFlight: inFlight)
            let channel = try await ClientBootstrap(group: group)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { [client] ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(client) } }
                .connect(host: "127.0.0.1", port: server.localAddress!.port!).get()
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            let n = try await channel.eventLoop.submit { client.stop = true; return client.count }.get()
            rates.append(Double(n) / seconds)
            try await channel.close()
        }
        try await server.close()
        return Harness.median(rates)
    }

    /// A 1 GiB message in 64 KiB chunks into a spooling receiver: peak RSS of the
    /// process (sender and receiver both in it) beside its RSS before the transfer.
    static func runOneGiB() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let size: Int64 = 1 << 30
        let received = NIOLockedValueBox<AssembledMessage?>(nil)
        let receiver = try MSRPEndpoint(configuration: MSRPTransportConfiguration(
            parserLimits: MSRPParserLimits(maxMessageBytes: 2 << 30),
            assemblerLimits: ChunkAssemblerLimits(memoryThreshold: 1 << 20, maxMessageBytes: 2 << 30)), group: group)
        try await receiver.listen(host: "127.0.0.1", port: 0)
        let inbox = receiver.createSession(delegate: AcceptAll { m in received.withLockedValue { $0 = m.message } })
        let sender = try MSRPEndpoint(configuration: MSRPTransportConfiguration(chunkSize: 64 * 1024), group: group)
        let out = sender.createSession(setup: .active, remotePath: [inbox.localURI], delegate: nil)
        try await out.connect()
        let before = Harness.peakRSS()
        let start = ContinuousClock.now
        let outcome = try await out.send(MSRPOutgoingMessage(
            contentType: MediaType(type: "application", subtype: "octet-stream"), body: GeneratedBody(size: size)))
        let elapsed = ContinuousClock.now - start
        precondition(outcome == .accepted, "\(outcome)")
        let message = received.withLockedValue { $0 }
        precondition(message?.size == size)
        if case .file(let path)? = message?.body { try? FileManager.default.removeItem(atPath: path) }
        let peak = Harness.peakRSS()
        await sender.shutdown()
        await receiver.shutdown()
        try await group.shutdownGracefully()
        let secs = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        Harness.print("receive-1gib: 1 GiB in 64 KiB chunks in \(String(format: "%.1f", secs)) s (\(Harness.format(Double(size) / secs))B/s)"
            + "; peak RSS \(peak >> 20) MiB (before the transfer: \(before >> 20) MiB)  [target < 64 MiB]")
    }
}

/// Bytes made on demand, so the sender holds no 1 GiB buffer.
struct GeneratedBody: MSRPBodySource {
    let size: Int64
    func read(offset: Int64, length: Int, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        var b = allocator.buffer(capacity: length)
        b.writeRepeatingByte(UInt8(truncatingIfNeeded: offset >> 16) | 0x40, count: length)
        return b
    }
}

/// One session, one message at a time: SEND -> 200 latency over loopback.
enum LatencyBenchmark {
    static func run(count: Int = 5000) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let receiver = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group)
        try await receiver.listen(host: "127.0.0.1", port: 0)
        let sender = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group)
        let inbox = receiver.createSession(delegate: AcceptAll())
        let out = sender.createSession(setup: .active, remotePath: [inbox.localURI], delegate: nil)
        try await out.connect()
        var samples: [Double] = []
        for _ in 0..<count {
            let t0 = ContinuousClock.now
            _ = try await out.send(MSRPOutgoingMessage(text: "latency probe"))
            let d = ContinuousClock.now - t0
            samples.append(Double(d.components.attoseconds) / 1e12 + Double(d.components.seconds) * 1e6)
        }
        samples.sort()
        await sender.shutdown()
        await receiver.shutdown()
        try await group.shutdownGracefully()
        Harness.print("send-200-latency: one session, \(count) sequential SENDs: median \(String(format: "%.0f", samples[count / 2])) µs, p99 \(String(format: "%.0f", samples[count * 99 / 100])) µs")
    }
}
