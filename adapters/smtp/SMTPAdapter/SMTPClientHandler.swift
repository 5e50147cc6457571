import NIOCore
import SMTPWire

/// The pipeline's end: turns bytes into replies and hands each to the oldest
/// waiting request, in order (which is what PIPELINING needs). Everything runs
/// on the channel's event loop.
final class SMTPClientHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private var parser = SMTPReplyParser()
    private var buffer = ByteBuffer()
    private var waiting = CircularBuffer<EventLoopPromise<SMTPReply>>()
    private var failure: SMTPError?

    /// Expects one more reply. Call on the event loop, before writing the command.
    func expect(_ promise: EventLoopPromise<SMTPReply>) {
        if let failure {
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
                    // A reply nobody asked for: the conversation is out of step.
                    fail(SMTPError(.protocolError(SMTPProtocolError(.malformedReply, "unexpected reply \(reply)"))), context: context)
                    return
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
        fail(SMTPError(.tls("\(error)")), context: context)
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
