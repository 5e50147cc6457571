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
    private var machine: MSRPConnectionStateMachine
    /// The outbound protocol: what to write, transactions, time-outs (no I/O).
    private var sender: MSRPSenderStateMachine
    private var inbound: ByteBuffer?
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    private var idleTimer: Scheduled<Void>?
    private var closed = false
    private var pumpScheduled = false
    private var resumeRequested = false
    /// Bytes written since the event loop last had a chance to poll sockets.
    private var burstBytes = 0
    /// The connection object sessions bind to; set right after the handler is made.
    var connection: MSRPConnection?
    /// Connections a relay stopped reading because what it forwarded from them
    /// waits here, beyond `holdBackAbove`; read again below `resumeBelow`.
    private var heldBack: [MSRPConnection] = []
    static let holdBackAbove = 4 << 20
    var queuedOutboundBytes: Int { sender.queuedBytes }
    static let resumeBelow = 1 << 20

    init(endpoint: MSRPEndpoint, configuration: MSRPTransportConfiguration, logger: Logger) {
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

    private func perform(_ action: MSRPConnectionStateMachine.Action) {
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

    /// A responder that may be called from any thread, once.
    private func makeDeferredResponder(for head: MSRPRequestHead, session: MSRPSession) -> @Sendable (Int, String?) -> Void {
        guard let channel = context?.channel else { return { _, _ in } }
        let loopBound = NIOLoopBound(self, eventLoop: channel.eventLoop)
        let once = OnceFlag()
        return { code, comment in
            guard once.claim() else { return }
            if channel.eventLoop.inEventLoop {
                loopBound.value.respond(to: head, code: code, comment: comment, session: session)
                loopBound.value.pump()
            } else {
                channel.eventLoop.execute {
                    loopBound.value.respond(to: head, code: code, comment: comment, session: session)
                    loopBound.value.pump()
                }
            }
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

    private func write(_ response: MSRPResponseHead) {
        var bytes = context?.channel.allocator.buffer(capacity: 256) ?? ByteBuffer()
        bytes.writeMSRPResponse(response)
        sender.respond(bytes)
    }

    /// Completes a promise the sender state machine settled (after it returned:
    /// the promise's callbacks may send again).
    private func complete(_ completion: MSRPSenderStateMachine.Completion) {
        switch completion {
        case .send(let promise, let result): promise.completeWith(result)
        case .request(let promise, let result): promise.completeWith(result)
        }
    }

    // MARK: - Sessions

    func attach(_ session: MSRPSession) {
        guard machine.attach(session) else { return }
        idleTimer?.cancel()
        idleTimer = nil
    }

    func detach(_ sessionID: String) {
        machine.detach(sessionID)
        if machine.sessions.isEmpty { armIdleTimer() }
    }

    private func armIdleTimer() {
        guard let context, idleTimer == nil, machine.sessions.isEmpty else { return }
        let channel = context.channel
        idleTimer = context.eventLoop.scheduleTask(in: configuration.idleTimeout) { [logger] in
            logger.info("closing idle MSRP connection")
            channel.close(promise: nil)
        }
    }

    // MARK: - Outbound

    @discardableResult
    func enqueue(_ message: MSRPOutgoingMessage, session: MSRPSession, promise: EventLoopPromise<MSRPSendOutcome>) -> OutboundScheduler.JobID? {
        guard !closed else {
            promise.fail(MSRPSendError(reason: .connectionLost, detail: "connection closed"))
            return nil
        }
        let id = sender.send(message, from: session.localURI, to: session.remotePath, promise: promise)
        pump()
        return id
    }

    /// A SEND chunk the relay forwards (see `MSRPSenderStateMachine.forward`).
    func enqueueForwarded(_ head: MSRPRequestHead, body: ByteBuffer, flag: ContinuationFlag, promise: EventLoopPromise<MSRPSendOutcome>) {
        guard !closed else {
            promise.fail(MSRPSendError(reason: .connectionLost, detail: "connection closed"))
            return
        }
        sender.forward(head, body: body, flag: flag, promise: promise)
        pump()
    }

    /// Abandons a message being sent (its sender gave up): the chunk on the wire ends with "#".
    func cancel(_ job: OutboundScheduler.JobID) {
        guard let completion = sender.cancel(job) else { return }
        complete(completion)
        pump()
    }

    func enqueueRequest(_ head: MSRPRequestHead, body: ByteBuffer?, flag: ContinuationFlag = .complete, promise: EventLoopPromise<MSRPResponseHead>?) {
        guard !closed else {
            promise?.fail(MSRPSendError(reason: .connectionLost, detail: "connection closed"))
            return
        }
        var bytes = context?.channel.allocator.buffer(capacity: 512) ?? ByteBuffer()
        bytes.writeMSRPRequest(head, body: body, flag: flag)
        if let deadline = sender.request(bytes, transactionID: head.transactionID, promise: promise, now: .now()) { armTimer(deadline) }
        // Written with whatever else this event-loop tick queues (a relay forwards
        // many requests per read): one flush, one system call, not one each.
        schedulePump()
    }

    /// Writes while the channel accepts more, then flushes once. A burst of
    /// writes (pumps chained by writability changes within one event-loop tick) is
    /// capped at `maxBurstBytes`: past it, writing resumes only after the event
    /// loop has polled its sockets again (`LoopPollGate`), because a peer that
    /// reads as fast as we write (loopback) keeps the channel writable, and
    /// without a poll between bursts neither this connection's reads (the
    /// receiver's 413) nor any other channel on the loop would be served.
    func pump() {
        guard let context, !closed else { return }
        var wrote = false
        var burstEnded = false
        var settled: [MSRPSenderStateMachine.Completion] = []
        while context.channel.isWritable {
            guard burstBytes < Self.maxBurstBytes else {
                burstEnded = true
                break
            }
            guard let write = sender.nextWrite(allocator: context.channel.allocator, now: .now()) else {
                burstBytes = 0
                break
            }
            if write.bytes.readableBytes > 0 {
                burstBytes += write.bytes.readableBytes
                context.write(wrapOutboundOut(write.bytes), promise: nil)
                wrote = true
            }
            if let deadline = write.armTimer { armTimer(deadline) }
            if let completion = write.completion { settled.append(completion) }
        }
        if wrote { context.flush() }
        // Asked for after the flush: the pause covers the burst's system calls too.
        if burstEnded { resumeAfterNextPoll() }
        if !heldBack.isEmpty, sender.queuedBytes < Self.resumeBelow { releaseHeldBack() }
        for completion in settled { complete(completion) }
    }

    /// Called by the relay after queuing what it forwards from `upstream`: past
    /// the high-water mark, `upstream` is not read until this connection has
    /// written most of it (back-pressure, so that a client faster than its next
    /// hop cannot make the relay hold without bound).
    func holdBackIfFull(_ upstream: MSRPConnection) {
        guard sender.queuedBytes > Self.holdBackAbove, !closed, upstream !== connection,
              !heldBack.contains(where: { $0 === upstream })
        else { return }
        heldBack.append(upstream)
        logger.debug("relay holding back a faster client", metadata: ["queued": "\(sender.queuedBytes)"])
        upstream.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
    }

    private func releaseHeldBack() {
        let held = heldBack
        heldBack = []
        for upstream in held {
            upstream.channel.setOption(ChannelOptions.autoRead, value: true).whenSuccess { upstream.channel.read() }
        }
    }

    static let maxBurstBytes = 512 * 1024

    /// Runs `pump` soon, outside the flush that is calling us (once, however often asked).
    private func schedulePump() {
        guard !pumpScheduled, let context else { return }
        pumpScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            loopBound.value.pumpScheduled = false
            loopBound.value.pump()
        }
    }

    /// Ends a burst: writing goes on after the event loop has polled its sockets.
    private func resumeAfterNextPoll() {
        guard !resumeRequested, let context else { return }
        resumeRequested = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        endpoint.pollGate(for: context.eventLoop).afterNextPoll {
            loopBound.value.resumeRequested = false
            loopBound.value.burstBytes = 0
            loopBound.value.pump()
        }
    }

    // MARK: - Timers

    /// Arms the transaction timer the sender state machine asked for.
    private func armTimer(_ deadline: NIODeadline) {
        guard let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            loopBound.value.timerFired()
        }
    }

    private func timerFired() {
        timer = nil
        let (expired, next) = sender.timerFired(now: .now())
        if let next { armTimer(next) }
        for (tid, completion) in expired {
            logger.info("MSRP transaction timed out", metadata: ["tid": "\(tid)"])
            if let completion { complete(completion) }
        }
        if !expired.isEmpty { pump() }
    }

    // MARK: - Teardown

    func closeNow() {
        context?.close(promise: nil)
    }

    private func tearDown(reason: String) {
        guard !closed || !machine.sessions.isEmpty || !sender.isIdle else { return }
        closed = true
        timer?.cancel()
        idleTimer?.cancel()
        for completion in sender.close(MSRPSendError(reason: .connectionLost, detail: reason)) { complete(completion) }
        for session in machine.close() { session.connectionLost() }
        releaseHeldBack()
        if let connection { endpoint.connectionClosed(connection) }
        connection = nil
    }
}

/// A flag that can be claimed once, from any thread.
final class OnceFlag: Sendable {
    private let claimed = NIOLockedValueBox(false)
    func claim() -> Bool {
        claimed.withLockedValue { c in
            if c { return false }
            c = true
            return true
        }
    }
}

/// The connection's answers to its state machine: sessions from the endpoint's
/// registry (bound to this connection when they can be), the relay role's decisions.
extension MSRPConnectionHandler: MSRPConnectionEnvironment {
    func lookup(sessionID: String, fromPath: [MSRPURI]) -> MSRPConnectionStateMachine.SessionLookup {
        guard let session = endpoint.registry.session(id: sessionID), let connection else { return .unknown }
        // Bind the session to this connection, unless it already lives on another (§5.4).
        if session.bind(to: connection) {
            idleTimer?.cancel()
            idleTimer = nil
            return .found(session)
        }
        if session.isClosed { return .unknown }
        // Through relays the way back need not be the way out: a relay forwarding
        // to our URI opens a connection of its own (RFC 4976 §7.3). Taken from the
        // session's peer (the last From-Path URI) and only when its path has relays.
        let remote = session.remotePath
        if remote.count > 1, let origin = fromPath.last, origin == remote.last {
            idleTimer?.cancel()
            idleTimer = nil
            return .found(session)
        }
        return .boundElsewhere
    }

    func relayDecision(for request: MSRPRequestHead) -> MSRPRelayRole.Decision? {
        guard let relay = endpoint.relayRole, let connection else { return nil }
        return relay.classify(request, on: connection)
    }
}
