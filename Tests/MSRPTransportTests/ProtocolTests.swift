import Foundation
import MSRP
import NIOCore
import NIOPosix
import Testing

@testable import MSRPTransport

/// The receiving side's answers to what a raw client writes, byte for byte.
@Suite(.serialized) struct ProtocolTests {
    /// Loops of their own: on ExchangeTests' loops, busy with 10 MiB and 3 GiB
    /// transfers, a 200 ms idle timer was once not seen to fire within 15 s
    /// under load.
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    struct Server {
        var endpoint: MSRPEndpoint
        var port: Int
        var session: MSRPSession
        var delegate: RecordingDelegate
    }

    static func server(
        policy: RecordingDelegate.AckPolicy = .acceptNow, accept: [MediaType] = [],
        configure: (inout MSRPTransportConfiguration) -> Void = { _ in }
    ) async throws -> Server {
        var config = MSRPTransportConfiguration()
        configure(&config)
        let endpoint = try MSRPEndpoint(configuration: config, group: group)
        let port = try await endpoint.listen(host: "127.0.0.1", port: 0)
        let delegate = RecordingDelegate(policy: policy)
        let session = endpoint.createSession(id: "sess0001", acceptTypes: accept, delegate: delegate)
        return Server(endpoint: endpoint, port: port, session: session, delegate: delegate)
    }

    static func send(_ tid: String, to sid: String = "sess0001", port: Int, headers: String = "", body: String? = "hello",
                     flag: String = "$", method: String = "SEND", messageID: String = "msg00001") -> String {
        var s = "MSRP \(tid) \(method)\nTo-Path: msrp://127.0.0.1:\(port)/\(sid);tcp\nFrom-Path: msrp://127.0.0.1:9/cli1;tcp\n"
        if method == "SEND" { s += "Message-ID: \(messageID)\n" }
        s += headers
        if let body { s += "Content-Type: text/plain\n\n\(body)\n" }
        return s + "-------\(tid)\(flag)\n"
    }

    @Test func unknownSessionIs481() async throws {
        let srv = try await Self.server()
        defer { Task { await srv.endpoint.shutdown() } }
        let client = try await RawMSRPClient(port: srv.port, group: Self.group)
        try await client.write(Self.send("tid00001", to: "nosuchsession", port: srv.port))
        let frames = await client.waitFrames(1)
        #expect(frames.first?.response?.code == 481)
        #expect(frames.first?.response?.transactionID == "tid00001")
        #expect(frames.first?.response?.toPath.map(\.description) == ["msrp://127.0.0.1:9/cli1;tcp"])
        await client.close()
    }

    @Test func unknownMethodIs501AndReportIsNeverAnswered() async throws {
        let srv = try await Self.server()
        defer { Task { await srv.endpoint.shutdown() } }
        let client = try await RawMSRPClient(port: srv.port, group: Self.group)
        try await client.write(Self.send("tid00002", port: srv.port, body: nil, method: "REPORT") + Self.send("tid00003", port: srv.port, body: nil, method: "FROB"))
        let frames = await client.waitFrames(1)
        try await Task.sleep(for: .milliseconds(100))
        #expect(client.received.count == 1)
        #expect(frames.first?.response?.code == 501)
        #expect(frames.first?.response?.transactionID == "tid00003")
        #expect(srv.delegate.reports.count == 1)
        await client.close()
    }

    @Test func syntaxErrorIs400AndTheConnectionGoesOn() async throws {
        let srv = try await Self.server()
        defer { Task { await srv.endpoint.shutdown() } }
        let client = try await RawMSRPClient(port: srv.port, group: Self.group)
        try await client.write(Self.send("tid00004", port: srv.port, headers: "Byte-Range: 5-1/9\n") + Self.send("tid00005", port: srv.port))
        let frames = await client.waitFrames(2)
        #expect(frames.map { $0.response?.code } == [400, 200])
        #expect(srv.delegate.messages.count == 1)
        await client.close()
    }

    @Test func garbageClosesTheConnection() async throws {
        let srv = try await Self.server()
        defer { Task { await srv.endpoint.shutdown() } }
        let client = try await RawMSRPClient(port: srv.port, group: Self.group)
        try await client.write("GET / HTTP/1.1\nHost: x\n\n")
        #expect(await client.waitClosed())
    }

    @Test func unacceptableContentIs415() async throws {
        let srv = try await Self.server(accept: [.messageCPIM])
        defer { Task { await srv.endpoint.shutdown() } }
        let client = try await RawMSRPClient(port: srv.port, group: Self.group)
        try await client.write(Self.send("tid00006", port: srv.port))
        #expect(await client.waitFrames(1).first?.response?.code == 415)
        await client.close()
    }

    @Test func failureReportRules() async throws {
        let srv = try await Self.server(policy: .reject(403))
        defer { Task { await srv.endpoint.shutdown() } }
        let client = try await RawMSRPClient(port: srv.port, group: Self.group)
        // partial: no 200 for the first chunk, the error for the last one.
        try await client.write(
            Self.send("tid00007", port: srv.port, headers: "Failure-Report: partial\nByte-Range: 1-*/10\n", body: "12345", flag: "+", messageID: "msgpart1")
            + Self.send("tid00008", port: srv.port, headers: "Failure-Report: partial\nByte-Range: 6-10/10\n", body: "67890", messageID: "msgpart1"))
        // no: nothing, even for the rejection.
        try await client.write(Self.send("tid00009", port: srv.port, headers: "Failure-Report: no\n", messageID: "msgnone1"))
        // an unknown session with "no": no 481 either.
        try await client.write(Self.send("tid00010", to: "nosuchsession", port: srv.port, headers: "Failure-Report: no\n"))
        try await client.write(Self.send("tid00011", port: srv.port, messageID: "msgyes01"))
        let frames = await client.waitFrames(2)
        try await Task.sleep(for: .milliseconds(100))
        #expect(client.received.map { $0.response?.transactionID } == ["tid00008", "tid00011"])
        #expect(client.received.map { $0.response?.code } == [403, 403])
        _ = frames
        await client.close()
    }

    @Test func chunksOutOfOrderAndAbort() async throws {
        let srv = try await Self.server()
        defer { Task { await srv.endpoint.shutdown() } }
        let client = try await RawMSRPClient(port: srv.port, group: Self.group)
        try await client.write(
            Self.send("tid00012", port: srv.port, headers: "Byte-Range: 6-10/10\n", body: "67890", messageID: "msgooo01")
            + Self.send("tid00013", port: srv.port, headers: "Byte-Range: 1-*/10\n", body: "12345", flag: "+", messageID: "msgooo01")
            + Self.send("tid00014", port: srv.port, headers: "Byte-Range: 1-*/20\n", body: "abc", flag: "+", messageID: "msgabrt1")
            + Self.send("tid00015", port: srv.port, headers: "Byte-Range: 4-*/20\n", body: "def", flag: "#", messageID: "msgabrt1"))
        let frames = await client.waitFrames(4)
        #expect(frames.map { $0.response?.code } == [200, 200, 200, 200])
        let messages = await srv.delegate.waitMessages(1)
        #expect(messages.count == 1)
        #expect(try messages.first.map { try bodyBytes($0.message) } == Array("1234567890".utf8))
        await client.close()
    }

    @Test func bodilessSendIsAKeepalive() async throws {
        let srv = try await Self.server()
        defer { Task { await srv.endpoint.shutdown() } }
        let client = try await RawMSRPClient(port: srv.port, group: Self.group)
        try await client.write(Self.send("tid00016", port: srv.port, body: nil))
        #expect(await client.waitFrames(1).first?.response?.code == 200)
        #expect(srv.delegate.messages.isEmpty)
        await client.close()
    }

    @Test func sessionBoundElsewhereIs506() async throws {
        let srv = try await Self.server()
        defer { Task { await srv.endpoint.shutdown() } }
        let first = try await RawMSRPClient(port: srv.port, group: Self.group)
        try await first.write(Self.send("tid00017", port: srv.port, body: nil))
        #expect(await first.waitFrames(1).first?.response?.code == 200)
        let second = try await RawMSRPClient(port: srv.port, group: Self.group)
        try await second.write(Self.send("tid00018", port: srv.port, body: nil))
        #expect(await second.waitFrames(1).first?.response?.code == 506)
        await first.close()
        await second.close()
    }

    @Test func idleConnectionIsClosed() async throws {
        let srv = try await Self.server { $0.idleTimeout = .milliseconds(200) }
        defer { Task { await srv.endpoint.shutdown() } }
        let client = try await RawMSRPClient(port: srv.port, group: Self.group)
        // The bound is generous: the whole suite shares two event loops on two
        // cores with tests that push gigabytes, so the 200 ms timer can fire late.
        #expect(await client.waitClosed(timeout: .seconds(15)))
    }

    @Test func oversizeMessageIs413() async throws {
        let srv = try await Self.server {
            $0.parserLimits.maxMessageBytes = 1000
            $0.assemblerLimits.maxMessageBytes = 1000
        }
        defer { Task { await srv.endpoint.shutdown() } }
        let client = try await RawMSRPClient(port: srv.port, group: Self.group)
        try await client.write(Self.send("tid00019", port: srv.port, headers: "Byte-Range: 1-*/5000\n", body: "x", flag: "+")
            + Self.send("tid00020", port: srv.port, headers: "Byte-Range: 1-*/*\n", body: String(repeating: "y", count: 3000), messageID: "msgbig02"))
        let frames = await client.waitFrames(2)
        #expect(frames.map { $0.response?.code } == [413, 413])
        await client.close()
    }
}

/// The sending side's timers: no answer within the transaction timeout, and a 408.
@Suite(.serialized) struct SenderTimeoutTests {
    /// Loops of their own: on the loops ExchangeTests fills with 10 MiB and
    /// 3 GiB transfers, the peer's 200 to the binding SEND once came after the
    /// one-second timer (a loaded machine, the whole suite in parallel).
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// A listener that reads everything and answers nothing (or 408 to each SEND).
    static func silentPeer(answer408: Bool) async throws -> (any Channel, Int) {
        final class Sink: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = ByteBuffer
            typealias OutboundOut = ByteBuffer
            let answer: Bool
            var parser = MSRPParser()
            var buffer = ByteBuffer()
            init(answer: Bool) { self.answer = answer }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                var b = unwrapInboundIn(data)
                buffer.writeBuffer(&b)
                while let e = try? parser.next(&buffer) {
                    if case .head(.request(let r), _) = e, answer || r.headers.byteRange?.total == 0 {
                        var out = ByteBuffer()
                        out.writeMSRPResponse(MSRPResponseBuilder.response(to: r, code: r.headers.byteRange?.total == 0 ? 200 : 408))
                        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
                    }
                }
                buffer.discardReadBytes()
            }
        }
        let ch = try await ServerBootstrap(group: Self.group).childChannelInitializer { c in
            c.eventLoop.makeCompletedFuture { try c.pipeline.syncOperations.addHandler(Sink(answer: answer408)) }
        }.bind(host: "127.0.0.1", port: 0).get()
        return (ch, ch.localAddress!.port!)
    }

    @Test(arguments: [false, true])
    func noResponseOr408IsATimeout(answer408: Bool) async throws {
        let (peer, port) = try await Self.silentPeer(answer408: answer408)
        defer { peer.close(promise: nil) }
        let endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(transactionTimeout: .seconds(2)), group: Self.group)
        defer { Task { await endpoint.shutdown() } }
        let session = endpoint.createSession(setup: .active, remotePath: [try MSRPURI("msrp://127.0.0.1:\(port)/peer0001;tcp")], delegate: nil)
        try await session.connect()
        let start = ContinuousClock.now
        let outcome = try await session.send(MSRPOutgoingMessage(text: "anyone there?"))
        #expect(outcome == .timedOut)
        // (2 s, not less: the binding SEND in connect() runs on the same timer,
        // and the suite's parallel load can delay the peer's 200.)
        if !answer408 { #expect(ContinuousClock.now - start >= .milliseconds(1950)) }
        // A non-SEND request gets a synthesised 408.
        let response = try await session.request(MSRPRequestHead(
            transactionID: "nick0001", method: .nickname, toPath: session.remotePath, fromPath: [session.localURI],
            headers: [.useNickname("\"bob\"")]), body: nil)
        #expect(response.code == 408)
    }
}
