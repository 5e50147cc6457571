import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A fast webhook receiver for tests and benchmarks (the far side, in its own
/// process): answers every POST 204 and counts it by path; `GET /counts` answers
/// the counts as JSON (`{"/a": 12}`). Fast enough (NIO, keep-alive, nothing
/// checked) that the gateway, not the receiver, is what a benchmark measures.
///
/// Usage: msrpgw-webhook-sink [PORT] [THREADS]; prints "READY <port>" once listening.
let arguments = CommandLine.arguments
let port = arguments.count > 1 ? Int(arguments[1]) ?? 0 : 0
let threads = arguments.count > 2 ? Int(arguments[2]) ?? 1 : 1

let counts = NIOLockedValueBox<[String: Int]>([:])

final class SinkHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var head: HTTPRequestHead?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            if head.method == .GET, head.uri == "/counts" {
                let snapshot = counts.withLockedValue { $0 }
                let body = (try? JSONSerialization.data(withJSONObject: snapshot, options: [.sortedKeys])) ?? Data("{}".utf8)
                respond(context: context, status: .ok, body: ByteBuffer(bytes: body), keepAlive: head.isKeepAlive)
            } else {
                counts.withLockedValue { $0[head.uri, default: 0] += 1 }
                respond(context: context, status: .noContent, body: nil, keepAlive: head.isKeepAlive)
            }
        }
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, body: ByteBuffer?, keepAlive: Bool) {
        var headers = HTTPHeaders()
        if let body {
            headers.add(name: "content-type", value: "application/json")
            headers.add(name: "content-length", value: String(body.readableBytes))
        }
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if let body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) } }
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(SinkHandler())
        }
    }
    .bind(host: "127.0.0.1", port: port).wait()
print("READY \(channel.localAddress?.port ?? 0)")
fflush(nil)
try channel.closeFuture.wait()
