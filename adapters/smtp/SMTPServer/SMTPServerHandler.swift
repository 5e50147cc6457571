import Admission
import Foundation
import Logging
import NIOCore
import NIOSSL

/// One inbound SMTP connection on SwiftNIO: frames lines (bounded: an
/// over-long one is dropped as it streams in, never held), feeds them to the
/// `SMTPServerSession`, asks the sink, writes the replies (flushed once per
/// batch of pipelined commands). It reads nothing more while the gateway is
/// answering or the client is not reading our replies, so that a client
/// pipelining without end holds a bounded amount of memory. Time-outs: no
/// byte for `commandTimeout` (an `IdleStateHandler` in front), or a line still
/// unfinished after it (a client dribbling bytes), ends the connection with 421.
final class SMTPServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = Never
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var session: SMTPServerSession
    private let sink: any SMTPMailSink
    private let tls: NIOSSLContext?
    private let commandTimeout: TimeAmount
    private let logger: Logger
    /// The listener's: closes and time-outs logged once per kind per 10 s.
    private let closeLog: KeyedLogThrottle
    private var buffer = ByteBuffer()
    /// Dropping an over-long line up to its LF.
    private var discarding = false
    /// When the unfinished line in `buffer` began.
    private var lineStarted: NIODeadline?
    /// How much of `buffer` is known to hold no LF: a line arriving a byte at a
    /// time is searched once, not again from its start on every read.
    private var scanned = 0
    private var readPending = false
    private var unflushed = false
    /// Dropped in `handlerRemoved`: a context kept past it is a cycle (the context holds the handler).
    private var context: ChannelHandlerContext?

    init(session: SMTPServerSession, sink: any SMTPMailSink, tls: NIOSSLContext?, commandTimeout: TimeAmount, closeLog: KeyedLogThrottle, logger: Logger) {
        self.closeLog = closeLog
        self.session = session
        self.sink = sink
        self.tls = tls
        self.commandTimeout = commandTimeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        buffer = context.channel.allocator.buffer(capacity: 1024)
        if context.channel.isActive { greet(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        greet(context)
        context.fireChannelActive()
    }

    private var greeted = false
    private func greet(_ context: ChannelHandlerContext) {
        guard !greeted else { return }
        greeted = true
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: session.greeting.wire)), promise: nil)
    }

    // MARK: - Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if discarding {
            // Drop the rest of an over-long line without holding it.
            guard let lf = bytes.readableBytesView.firstIndex(of: 0x0A) else { return }
            bytes.moveReaderIndex(to: lf + 1)
            discarding = false
            lineStarted = nil
            perform(session.receive(.overlong), context)
        }
        // Lines taken leave their bytes behind the reader index: dropped when the
        // buffer is empty or they pass 64 KiB (a long mail never ends a read on a line end).
        if buffer.readableBytes == 0 || buffer.readerIndex > 64 << 10 { buffer.discardReadBytes() }
        buffer.writeBuffer(&bytes)
        process(context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context)
    }

    /// Feeds complete lines to the session while it can take them.
    private func process(_ context: ChannelHandlerContext) {
        while !session.waiting, !session.closed, context.channel.isWritable {
            let view = buffer.readableBytesView
            guard let lf = view[(view.startIndex + min(scanned, view.count))...].firstIndex(of: 0x0A) else {
                scanned = view.count
                let limit = session.readingData ? session.limits.maxDataLine : session.limits.maxCommandLine
                if buffer.readableBytes > limit {
                    buffer.clear()
                    scanned = 0
                    discarding = true
                    lineStarted = nil
                } else if buffer.readableBytes > 0 {
                    let now = NIODeadline.now()
                    if let started = lineStarted, now - started > commandTimeout {
                        return timedOut(context, "a line unfinished for \(commandTimeout)")
                    }
                    lineStarted = lineStarted ?? now
                }
                break
            }
            let start = view.startIndex
            let crlf = lf > start && view[lf - 1] == 0x0D
            let line: SMTPServerSession.Line = crlf ? .complete(Array(view[start..<(lf - 1)])[...]) : .bareLF
            let over = lf - start + 1 > (session.readingData ? session.limits.maxDataLine : session.limits.maxCommandLine)
            buffer.moveReaderIndex(to: lf + 1)
            scanned = 0
            lineStarted = nil
            perform(session.receive(over ? .overlong : line), context)
        }
        flushIfNeeded(context)
        resumeReadingIfPossible(context)
    }

    // MARK: - Actions

    private func perform(_ actions: [SMTPServerSession.Action], _ context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .reply(let reply):
                context.write(wrapOutboundOut(context.channel.allocator.buffer(string: reply.wire)), promise: nil)
                unflushed = true
                if reply.code == 421 || reply.code == 521 { logClose("SMTP connection closed", reason: "\(reply)", kind: "\(reply.code)") }
            case .checkRecipient(let address):
                let sink = sink
                let envelope = session.pendingEnvelope
                ask(context) { await sink.checkRecipient(address, envelope: envelope) } then: { handler, context, refusal in
                    handler.perform(handler.session.recipientChecked(address, refusal: refusal), context)
                }
            case .store(let envelope, let mail):
                let sink = sink
                ask(context) { await sink.store(envelope, mail: mail) } then: { handler, context, reply in
                    handler.perform(handler.session.stored(reply), context)
                }
            case .startTLS:
                // RFC 3207 §6 (CVE-2011-0411): what was pipelined after STARTTLS is not the TLS client's.
                buffer.clear()
                scanned = 0
                flushIfNeeded(context)
                guard let tls else { return close(context) }
                do {
                    try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
                } catch {
                    logger.warning("SMTP STARTTLS failed", metadata: ["peer": "\(session.peer)", "error": "\(error)"])
                    close(context)
                }
            case .close:
                close(context)
            }
        }
    }

    /// Runs `work` off the event loop and comes back to it with the answer; the
    /// session waits (nothing is read or fed) meanwhile.
    private func ask<T: Sendable>(_ context: ChannelHandlerContext, _ work: @escaping @Sendable () async -> T,
                                  then: @escaping (SMTPServerHandler, ChannelHandlerContext, T) -> Void) {
        flushIfNeeded(context)
        let promise = context.eventLoop.makePromise(of: T.self)
        promise.completeWithTask(work)
        let bound = NIOLoopBound((self, then), eventLoop: context.eventLoop)
        promise.futureResult.whenSuccess { answer in
            let (handler, then) = bound.value
            guard let context = handler.context else { return }  // the connection went meanwhile
            then(handler, context, answer)
            handler.process(context)
        }
    }

    private func close(_ context: ChannelHandlerContext) {
        unflushed = false
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    private func flushIfNeeded(_ context: ChannelHandlerContext) {
        guard unflushed else { return }
        unflushed = false
        context.flush()
    }

    private func timedOut(_ context: ChannelHandlerContext, _ what: String) {
        logClose("SMTP connection timed out", reason: "waiting for \(what)", kind: "timeout")
        session.end()
        context.write(wrapOutboundOut(context.channel.allocator.buffer(string: SMTPServerReply(421, "4.4.2", "\(session.hostname) Timeout, closing").wire)), promise: nil)
        close(context)
    }

    private func logClose(_ message: Logger.Message, reason: String, kind: String) {
        let (log, suppressed) = closeLog.admit(kind)
        guard log else { return }
        logger.info(message, metadata: ["peer": "\(session.peer)", "reason": "\(reason)", "like-this-not-logged": "\(suppressed)"])
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            // The client waits for us while the gateway answers: not its silence.
            if !session.waiting, !session.closed { timedOut(context, "a command for \(commandTimeout)") }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logClose("SMTP connection error", reason: "\(error)", kind: "error")
        session.end()
        context.close(promise: nil)
    }

    // MARK: - Back-pressure

    func read(context: ChannelHandlerContext) {
        if session.waiting || !context.channel.isWritable || buffer.readableBytes > session.limits.maxDataLine {
            readPending = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { process(context) }
        context.fireChannelWritabilityChanged()
    }

    private func resumeReadingIfPossible(_ context: ChannelHandlerContext) {
        guard readPending, !session.waiting, context.channel.isWritable, buffer.readableBytes <= session.limits.maxDataLine else { return }
        readPending = false
        context.read()
    }
}
