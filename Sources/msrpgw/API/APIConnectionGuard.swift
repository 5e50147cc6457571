import Admission
import NIOCore
import NIOHTTPTypes

/// The HTTP API's guard on each connection (one of Hummingbird's additional
/// channel handlers, after HTTP decoding): the listener's connection limits, and
/// a deadline for each request's head. A request sent a byte at a time keeps an
/// idle time-out from ever firing (slowloris); a deadline does not reset.
///
/// The first head must arrive within `headerTimeout` of the connection opening,
/// each next one within `idleTimeout` of the last response.
final class APIConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let door: ListenerGuard
    private let headerTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private var deadline: Scheduled<Void>?
    private var admitted = false

    init(door: ListenerGuard, headerTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.door = door
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { opened(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        opened(context)
        context.fireChannelActive()
    }

    private func opened(_ context: ChannelHandlerContext) {
        guard !admitted else { return }
        admitted = true
        do {
            try door.admit(context.channel)
        } catch {
            context.close(promise: nil)
            return
        }
        arm(headerTimeout, context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { disarm() }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { arm(idleTimeout, context) }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disarm()
    }

    private func arm(_ timeout: TimeAmount, _ context: ChannelHandlerContext) {
        disarm()
        // The task holds the channel, not the context: cancelled when it closes.
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    private func disarm() {
        deadline?.cancel()
        deadline = nil
    }
}
