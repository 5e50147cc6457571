import Logging
import MSRP
import NIOConcurrencyHelpers
import NIOCore

/// The channel handler of one MSRP connection: glue between NIO and the two
/// I/O-free state machines that decide everything, `MSRPConnectionStateMachine`
/// (what arrives: sessions, statuses, reassembly, relaying) and
/// `MSRPSenderStateMachine` (what leaves: chunks, transactions, time-outs). It
/// feeds them bytes, responses and timer ticks and performs what they return:
/// writes, promises, calls to session delegates, the relay's forwarding, timers.
///
/// Everything here runs on the channel's event loop.
final class MSRPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let endpoint: MSRPEndpoint
    let configuration: MSRPTransportConfiguration
    var logger: Logger
    /// The inbound protocol: frames, sessions, statuses (no I/O).
    var machine: MSRPConnectionStateMachine
    /// The outbound protocol: what to write, transactions, time-outs (no I/O).
    var sender: MSRPSenderStateMachine
    private var inbound: ByteBuffer?
    var context: ChannelHandlerContext?
    var timer: Scheduled<Void>?
    var idleTimer: Scheduled<Void>?
    /// A session was bound to it, or the relay granted or forwarded for it.
    var used = false
    var closed = false
    var pumpScheduled = false
    var resumeRequested = false
    /// Bytes written since the event loop last had a chance to poll sockets.
    var burstBytes = 0
    /// The connection object sessions bind to; set right after the handler is made.
    var connection: MSRPConnection?
    /// Connections a relay stopped reading because what it forwarded from them waits here.
    var holdBack = RelayHoldBack()
    var queuedOutboundBytes: Int { sender.queuedBytes }

    /// Counted in `endpoint.connectionHandlersAlive` from here to deinit.
    deinit { endpoint.handlersAlive.withLockedValue { $0 -= 1 } }

    init(endpoint: MSRPEndpoint, configuration: MSRPTransportConfiguration, logger: Logger) {
        endpoint.handlersAlive.withLockedValue { $0 += 1 }
        self.endpoint = endpoint
        self.configuration = configuration
        self.logger = logger
        self.machine = MSRPConnectionStateMachine(
            parserLimits: configuration.parserLimits, assemblerLimits: configuration.assemblerLimits, chunkSize: configuration.chunkSize)
        self.sender = MSRPSenderStateMachine(
            pieceSize: configuration.pieceSize, chunkSize: configuration.chunkSize, transactionTimeout: configuration.transactionTimeout)
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let remote = context.channel.remoteAddress { logger[metadataKey: "peer"] = "\(remote)" }
        if context.channel.isActive { armIdleTimer() }
    }

    /// The channel is gone: drop what holds us. The context holds this handler
    /// (through the pipeline), so keeping it after removal is a cycle that kept
    /// every closed connection's handler and buffers alive.
    func handlerRemoved(context: ChannelHandlerContext) {
        tearDown(reason: "connection closed")
        idleTimer?.cancel()
        idleTimer = nil
        self.context = nil
        inbound = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdleTimer()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        tearDown(reason: "connection closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.info("MSRP connection error, closing", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Fired from inside a flush: writing more from here would keep the flush
        // going for as long as the peer reads, starving the event loop.
        if context.channel.isWritable { schedulePump() }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let incoming = unwrapInboundIn(data)
        if inbound == nil || inbound!.readableBytes == 0 {
            inbound = incoming
        } else {
            var incoming = incoming
            inbound!.writeBuffer(&incoming)
        }
        guard var buffer = inbound else { return }
        inbound = nil  // keep the storage uniquely referenced while parsing
        while let action = machine.next(&buffer, environment: self) { perform(action) }
        if machine.isClosed {
            closed = true
            context.close(promise: nil)
            return
        }
        if buffer.readerIndex > 64 * 1024 || buffer.readableBytes == 0 { buffer.discardReadBytes() }
        inbound = buffer
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        pump()
        context.fireChannelReadComplete()
    }

    // MARK: - Inbound actions

    func perform(_ action: MSRPConnectionStateMachine.Action) {
        switch action {
        case .write(let response):
            write(response)
        case .report(let session, let request):
            session.delegate?.session(session, didReceiveReport: request)
        case .ask(let session, let request):
            let decision = session.delegate?.session(session, didReceiveRequest: request) ?? .unknownMethod
            if let response = MSRPConnectionStateMachine.answer(request, decision: decision, session: session) { write(response) }
        case .deliver(let session, let message, let head):
            // The answer to the chunk that completed the message waits for the owner.
            let ack = MSRPAcknowledgement(respond: makeDeferredResponder(for: head, session: session))
            if let delegate = session.delegate {
                delegate.session(session, didReceive: MSRPIncomingMessage(message: message, acknowledgement: ack))
            } else {
                ack.reject(code: 403, comment: "No receiver for this session")
            }
        case .forward(let head, let body, let flag, let sid, let grant, let part):
            guard let relay = endpoint.relayRole, let connection else { return }
            relay.forward(head, body: body, flag: flag, sid: sid, grant: grant, from: connection, endpoint: endpoint, part: part)
        case .refused(let error, let response):
            logger.info("rejected MSRP frame", metadata: ["error": "\(error)"])
            if let response { write(response) }
        case .response(let response):
            guard let completion = sender.response(response) else {
                logger.debug("response to no pending transaction (duplicate or late)", metadata: ["tid": "\(response.transactionID)"])
                return
            }
            complete(completion)
            if response.code != 200 { pump() }  // an error stopped a message: its "#" goes out
        case .close(let reason):
            logger.warning("closing the MSRP connection", metadata: ["reason": "\(reason)"])
        }
    }

    /// The owner's answer, from any thread, once (see `DeferredResponder`).
    /// It holds the handler weakly: an owner that keeps a message (and so its
    /// acknowledgement) must not keep a closed connection's handler alive, and
    /// once the handler is gone there is no connection to answer on.
    /// The answer is flushed by the pump `respond` schedules, after whatever else
    /// this loop runs now: the 200s of one group commit leave in one write, not
    /// one each (issue 15: a system call per message on a shared connection).
    func makeDeferredResponder(for head: MSRPRequestHead, session: MSRPSession) -> @Sendable (Int, String?) -> Void {
        guard let loop = context?.eventLoop else { return { _, _ in } }
        return DeferredResponder.make(on: loop) { [weak self] code, comment in
            self?.respond(to: head, code: code, comment: comment, session: session)
        }
    }

    /// Sends the response to `request` if its Failure-Report allows (§7.1.4, §7.2).
    func respond(
        to request: MSRPRequestHead, code: Int, comment: String? = nil, session: MSRPSession? = nil,
        headers: MSRPHeaderFields = []
    ) {
        guard !closed, let response = MSRPConnectionStateMachine.response(to: request, code: code, comment: comment, session: session, headers: headers)
        else { return }
        write(response)
        // From a read on this connection the read's end flushes it; from elsewhere
        // (a relay passing a response back, an owner's acknowledgement) nothing else would.
        schedulePump()
    }

    func write(_ response: MSRPResponseHead) {
        var bytes = context?.channel.allocator.buffer(capacity: 256) ?? ByteBuffer()
        bytes.writeMSRPResponse(response)
        sender.respond(bytes)
    }

    /// Completes a promise the sender state machine settled (after it returned:
    /// the promise's callbacks may send again).
    func complete(_ completion: MSRPSenderStateMachine.Completion) {
        switch completion {
        case .send(let promise, let result): promise.completeWith(result)
        case .request(let promise, let result): promise.completeWith(result)
        }
    }

    // MARK: - Teardown

    func closeNow() {
        context?.close(promise: nil)
    }

    func tearDown(reason: String) {
        guard !closed || !machine.sessions.isEmpty || !sender.isIdle else { return }
        closed = true
        timer?.cancel()
        idleTimer?.cancel()
        for completion in sender.close(MSRPSendError(reason: .connectionLost, detail: reason)) { complete(completion) }
        for session in machine.close() { session.connectionLost() }
        holdBack.release(queued: 0)
        if let connection { endpoint.connectionClosed(connection) }
        connection = nil
    }
}
