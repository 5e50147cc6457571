import Logging
import MSRP
import NIOCore

/// What leaves the connection: messages, forwarded chunks, requests and
/// responses, written in paced bursts, and the transaction timer.
extension MSRPConnectionHandler {
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
        holdBack.release(queued: sender.queuedBytes)
        for completion in settled { complete(completion) }
    }

    /// Called by the relay after queuing what it forwards from `upstream` (see `RelayHoldBack`).
    func holdBackIfFull(_ upstream: MSRPConnection) {
        guard !closed, upstream !== connection, holdBack.holdIfFull(upstream, queued: sender.queuedBytes) else { return }
        logger.debug("relay holding back a faster client", metadata: ["queued": "\(sender.queuedBytes)"])
    }

    static let maxBurstBytes = 512 * 1024

    /// Runs `pump` soon, outside the flush that is calling us (once, however often asked).
    func schedulePump() {
        guard !pumpScheduled, let context else { return }
        pumpScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            loopBound.value.pumpScheduled = false
            loopBound.value.pump()
        }
    }

    /// Ends a burst: writing goes on after the event loop has polled its sockets.
    func resumeAfterNextPoll() {
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
    func armTimer(_ deadline: NIODeadline) {
        guard let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            loopBound.value.timerFired()
        }
    }

    func timerFired() {
        timer = nil
        let (expired, next) = sender.timerFired(now: .now())
        if let next { armTimer(next) }
        for (tid, completion) in expired {
            logger.info("MSRP transaction timed out", metadata: ["tid": "\(tid)"])
            if let completion { complete(completion) }
        }
        if !expired.isEmpty { pump() }
    }
}
