import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import WebhookAdapter

/// A receiver on loopback that answers each request with bytes a script
/// chooses (by the request's number, counting from 0), so that the client
/// meets what real receivers do: keep-alive, `Connection: close`, closing an
/// idle connection, never answering, answering garbage.
final class ScriptedReceiver: @unchecked Sendable {
    enum Reply: Sendable {
        /// Write these bytes; close afterwards when `close`.
        case bytes(String, close: Bool)
        /// Read the request and say nothing.
        case silence
        /// Close the connection at once.
        case hangUp
    }

    let port: Int
    private let channel: any Channel
    let requests = NIOLockedValueBox(0)
    let connections = NIOLockedValueBox(0)
    /// Connections that ended (either side closed them).
    let ended = NIOLockedValueBox(0)

    init(group: any EventLoopGroup, script: @escaping @Sendable (Int) -> Reply) async throws {
        let requests = requests
        let connections = connections
        let ended = ended
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                connections.withLockedValue { $0 += 1 }
                return ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(RequestReader({ n in script(n) }, counter: requests, ended: ended))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
    }

    func close() async { try? await channel.close() }

    /// Reads requests (head up to the blank line, then content-length bytes) and
    /// answers each as the script says.
    private final class RequestReader: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private var buffer = ByteBuffer()
        private let reply: (Int) -> Reply
        private let counter: NIOLockedValueBox<Int>
        private let ended: NIOLockedValueBox<Int>

        init(_ reply: @escaping (Int) -> Reply, counter: NIOLockedValueBox<Int>, ended: NIOLockedValueBox<Int>) {
            self.reply = reply
            self.counter = counter
            self.ended = ended
        }

        func channelInactive(context: ChannelHandlerContext) {
            ended.withLockedValue { $0 += 1 }
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = unwrapInboundIn(data)
            buffer.writeBuffer(&incoming)
            while let text = buffer.getString(at: buffer.readerIndex, length: buffer.readableBytes),
                  let end = text.range(of: "\r\n\r\n") {
                let head = String(text[..<end.lowerBound]).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                let total = text.utf8.distance(from: text.startIndex, to: end.upperBound) + length
                guard buffer.readableBytes >= total else { return }
                buffer.moveReaderIndex(forwardBy: total)
                let n = counter.withLockedValue { n in defer { n += 1 }; return n }
                switch reply(n) {
                case .bytes(let s, let close):
                    context.writeAndFlush(NIOAny(ByteBuffer(string: s)), promise: nil)
                    if close { context.close(promise: nil) }
                case .silence:
                    break
                case .hangUp:
                    context.close(promise: nil)
                }
            }
        }
    }
}

/// Time bounds are generous (a loaded full run can hold a thread for seconds):
/// each says what must not happen (waiting out a connect time-out, hanging on a
/// silent receiver), not how fast this machine is.
@Suite struct WebhookHTTPClientTests {
    static let ok = "HTTP/1.1 204 No Content\r\n\r\n"
    /// Its own loop: other suites of a full run may hold the shared ones.
    static let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let group = Self.loop

    func target(_ port: Int) throws -> WebhookTarget { try #require(WebhookTarget(url: "http://127.0.0.1:\(port)/hook?x=1", caFile: nil)) }

    /// (The default wait is long: a loaded run's first minute once starved an
    /// answered request past 30 s. Cases about time-outs give their own.)
    func post(_ client: WebhookHTTPClient, _ port: Int, timeout: Duration = .seconds(120)) async throws(WebhookHTTPError) -> WebhookHTTPResponse {
        let t = WebhookTarget(url: "http://127.0.0.1:\(port)/hook?x=1", caFile: nil)!
        return try await client.post(t, tls: nil, headers: HTTPHeaders([("content-type", "application/json")]), body: Array("{}".utf8), timeout: timeout)
    }

    @Test func keepAliveAnswersReuseOneConnection() async throws {
        let receiver = try await ScriptedReceiver(group: group) { _ in .bytes(Self.ok, close: false) }
        let client = WebhookHTTPClient(group: group)
        for _ in 0..<5 { #expect(try await post(client, receiver.port).status == 204) }
        #expect(receiver.connections.withLockedValue { $0 } == 1)
        await client.shutdown()
        await receiver.close()
    }

    /// The table of what receivers do and what the client makes of it.
    @Test func whatReceiversDo() async throws {
        struct Case: Sendable {
            var name: String
            var reply: ScriptedReceiver.Reply
            var status: Int?
            var retryAfter: String? = nil
            var error: String? = nil
        }
        let cases: [Case] = [
            Case(name: "Connection: close", reply: .bytes("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", close: true), status: 200),
            Case(name: "HTTP/1.0 body until close", reply: .bytes("HTTP/1.0 200 OK\r\n\r\nwhatever", close: true), status: 200),
            Case(name: "chunked body and Retry-After", reply: .bytes("HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", close: false),
                 status: 503, retryAfter: "7"),
            Case(name: "100 Continue first", reply: .bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", close: false), status: 202),
            Case(name: "a redirect is an answer", reply: .bytes("HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n", close: false), status: 302),
            Case(name: "garbage", reply: .bytes("hello there\r\n\r\n", close: false), status: nil, error: "not an HTTP answer"),
            Case(name: "a 1 MB header", reply: .bytes("HTTP/1.1 200 OK\r\nX-Big: " + String(repeating: "a", count: 1 << 20) + "\r\n\r\n", close: false),
                 status: nil, error: "not an HTTP answer"),
            Case(name: "a 4 MB body, dropped as it comes", reply: .bytes("HTTP/1.1 200 OK\r\nContent-Length: \(4 << 20)\r\n\r\n" + String(repeating: "b", count: 4 << 20), close: false),
                 status: 200),
            Case(name: "hangs up", reply: .hangUp, status: nil, error: "closed before an answer"),
            Case(name: "half an answer", reply: .bytes("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", close: true), status: nil, error: "in the middle of the answer"),
            Case(name: "never answers", reply: .silence, status: nil, error: "no answer in time"),
        ]
        for c in cases {
            let receiver = try await ScriptedReceiver(group: group) { _ in c.reply }
            let client = WebhookHTTPClient(group: group)
            let started = ContinuousClock.now
            // Only the silent receiver needs the deadline; the others answer (or close) at once.
            let timeout: Duration = { if case .silence = c.reply { return .seconds(1) } else { return .seconds(120) } }()
            do {
                let response = try await post(client, receiver.port, timeout: timeout)
                #expect(response.status == c.status, "\(c.name)")
                #expect(response.retryAfter == c.retryAfter, "\(c.name)")
            } catch {
                #expect(c.error.map { "\(error)".contains($0) } == true, "\(c.name): \(error)")
            }
            if case .silence = c.reply {
                #expect(ContinuousClock.now - started < .seconds(20), "a silent receiver holds a request only for its time (1 s)")
            }
            await client.shutdown()
            await receiver.close()
        }
    }

    /// A receiver that closes an idle keep-alive connection (without saying so)
    /// costs nothing: the next request finds the connection gone or hears
    /// nothing on it, and goes again once on a fresh one.
    @Test func aConnectionClosedWhileIdleIsReplacedOnce() async throws {
        let receiver = try await ScriptedReceiver(group: group) { n in n == 0 ? .bytes(Self.ok, close: true) : .bytes(Self.ok, close: false) }
        let client = WebhookHTTPClient(group: group)
        #expect(try await post(client, receiver.port).status == 204)
        #expect(try await post(client, receiver.port).status == 204)
        #expect(receiver.connections.withLockedValue { $0 } == 2)
        await client.shutdown()
        await receiver.close()
    }

    /// After a burst, idle connections are closed once idle for `maxIdle`, with
    /// no further request to notice them; the next request opens a fresh one.
    @Test func idleConnectionsAreClosedWithoutAnotherRequest() async throws {
        let receiver = try await ScriptedReceiver(group: group) { _ in .bytes(Self.ok, close: false) }
        let client = WebhookHTTPClient(group: group, maxIdle: .milliseconds(200))
        try await withThrowingTaskGroup(of: Int.self) { g in
            for _ in 0..<4 { g.addTask { try await post(client, receiver.port).status } }
            for try await status in g { #expect(status == 204) }
        }
        let opened = receiver.connections.withLockedValue { $0 }
        var waited = Duration.zero
        while receiver.ended.withLockedValue({ $0 }) < opened, waited < .seconds(30) {
            try await Task.sleep(for: .milliseconds(50))
            waited += .milliseconds(50)
        }
        #expect(receiver.ended.withLockedValue { $0 } == opened, "every idle connection closed")
        #expect(try await post(client, receiver.port).status == 204)
        #expect(receiver.connections.withLockedValue { $0 } == opened + 1)
        await client.shutdown()
        await receiver.close()
    }

    @Test func refusedAtOnce() async throws {
        // A port nobody listens on: bound, then closed.
        let bound = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = bound.localAddress?.port ?? 9
        try await bound.close()
        let client = WebhookHTTPClient(group: group, connectTimeout: .seconds(60))
        let started = ContinuousClock.now
        await #expect(throws: WebhookHTTPError.self) { _ = try await post(client, port, timeout: .seconds(120)) }
        #expect(ContinuousClock.now - started < .seconds(20), "a refused connection is not waited out (the connect time-out is 60 s)")
        await client.shutdown()
    }

    @Test func atMostConnectionsPerOriginOpenTheRestWait() async throws {
        let receiver = try await ScriptedReceiver(group: group) { _ in .bytes(Self.ok, close: false) }
        let client = WebhookHTTPClient(group: group, connectionsPerOrigin: 3)
        try await withThrowingTaskGroup(of: Int.self) { g in
            for _ in 0..<30 { g.addTask { try await post(client, receiver.port, timeout: .seconds(120)).status } }
            for try await status in g { #expect(status == 204) }
        }
        #expect(receiver.connections.withLockedValue { $0 } <= 3)
        #expect(receiver.requests.withLockedValue { $0 } == 30)
        await client.shutdown()
        await receiver.close()
    }

    @Test func targetsParse() throws {
        let a = try #require(WebhookTarget(url: "https://hooks.example.com/in?a=b&c", caFile: nil))
        #expect(a.origin == WebhookOrigin(tls: true, host: "hooks.example.com", port: 443, caFile: nil))
        #expect(a.requestTarget == "/in?a=b&c")
        #expect(a.hostHeader == "hooks.example.com")
        #expect(a.origin.serverName == "hooks.example.com")
        let b = try #require(WebhookTarget(url: "http://[::1]:8080", caFile: nil))
        #expect(b.origin.host == "::1")
        #expect(b.requestTarget == "/")
        #expect(b.hostHeader == "[::1]:8080")
        #expect(b.origin.serverName == nil)
        #expect(WebhookTarget(url: "http://10.1.2.3:81/x", caFile: nil)?.origin.serverName == nil)
        #expect(WebhookTarget(url: "ftp://x/", caFile: nil) == nil)
        #expect(WebhookTarget(url: "http:///nohost", caFile: nil) == nil)
    }
}
