import NIOCore
import NIOHTTP1

/// One request on its way, written to a connection's channel.
struct WebhookHTTPExchange: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer
    var deadline: NIODeadline
    var promise: EventLoopPromise<WebhookHTTPResponse>
}

/// The end of a webhook connection's pipeline: writes one request at a time
/// (HTTP/1.1, no pipelining), answers its promise with the response's status
/// once the whole response has been read (its body dropped), or with the
/// reason it will not come: the deadline, the connection closing, an error.
/// A response that comes with no request asked (a server's 408 before it
/// closes an idle connection) closes the connection.
final class WebhookHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = WebhookHTTPExchange
    typealias OutboundOut = HTTPClientRequestPart

    private var current: WebhookHTTPExchange?
    private var timer: Scheduled<Void>?
    private var head: HTTPResponseHead?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        guard current == nil else {
            exchange.promise.fail(WebhookHTTPError.malformed("a second request on a busy connection"))
            promise?.fail(WebhookHTTPError.malformed("busy"))
            return
        }
        current = exchange
        head = nil
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: exchange.deadline) { [weak self] in
            self?.fail(.timedOut)
            context.close(promise: nil)
        }
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(exchange.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            // 1xx is not the answer (we send no Expect, but a server may say 100 anyway).
            if h.status.code >= 200 { head = h }
        case .body:
            break
        case .end:
            guard let exchange = current, let h = head else {
                context.close(promise: nil)
                return
            }
            current = nil
            head = nil
            timer?.cancel()
            let keepAlive = h.isKeepAlive
            exchange.promise.succeed(WebhookHTTPResponse(status: Int(h.status.code), retryAfter: h.headers.first(name: "retry-after"), keepAlive: keepAlive))
            if !keepAlive { context.close(promise: nil) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(.closed(answered: head != nil, "closed by the receiver"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parser = error as? HTTPParserError {
            // The connection ending before the body it announced is a close, not garbage.
            fail(parser == .invalidEOFState ? .closed(answered: true, "the answer was cut short") : .malformed("\(error)"))
        } else {
            fail(.closed(answered: head != nil, "\(error)"))
        }
        context.close(promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(.closed(answered: head != nil, "the connection was taken down"))
    }

    private func fail(_ error: WebhookHTTPError) {
        guard let exchange = current else { return }
        current = nil
        timer?.cancel()
        timer = nil
        exchange.promise.fail(error)
    }
}
