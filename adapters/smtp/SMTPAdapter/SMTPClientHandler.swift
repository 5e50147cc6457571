import NIOCore
import NIOSSL
import SMTPWire

/// The pipeline's end: turns bytes into replies and hands each to the oldest
/// waiting request, in order (which is what PIPELINING needs). Everything runs
/// on the channel's event loop.
final class SMTPClientHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private var parser = SMTPReplyParser()
    private var buffer = ByteBuffer()
    private var waiting = CircularBuffer<EventLoopPromise<SMTPReply>>()
    /// Replies that came before anyone asked (the greeting, typically, which can
    /// arrive before the caller registers for it). A server that sends more than
    /// a few unasked is out of step.
    private var early = CircularBuffer<SMTPReply>()
    private var failure: SMTPError?

    /// Expects one more reply. Call on the event loop, before writing the command.
    func expect(_ promise: EventLoopPromise<SMTPReply>) {
        if let reply = early.popFirst() {
            promise.succeed(reply)
        } else if let failure {
            promise.fail(failure)
        } else {
            waiting.append(promise)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        do {
            while let reply = try parser.next(&buffer) {
                guard let promise = waiting.popFirst() else {
                    early.append(reply)
                    if early.count > 4 {
                        fail(SMTPError(.protocolError(SMTPProtocolError(.malformedReply, "replies nobody asked for: \(reply)"))), context: context)
                        return
                    }
                    continue
                }
                promise.succeed(reply)
            }
            buffer.discardReadBytes()
        } catch {
            fail(SMTPError(.protocolError(error)), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(SMTPError(.closed(stage: "the conversation")))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // TLS errors come from NIOSSL's handler below us; anything else is the socket.
        let isTLS = error is NIOSSLError || String(reflecting: type(of: error)).contains("SSL")
        fail(SMTPError(isTLS ? .tls("\(error)") : .closed(stage: "the conversation (\(error))")), context: context)
    }

    private func fail(_ error: SMTPError, context: ChannelHandlerContext) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: SMTPError) {
        if failure == nil { failure = error }
        while let p = waiting.popFirst() { p.fail(error) }
    }
}
