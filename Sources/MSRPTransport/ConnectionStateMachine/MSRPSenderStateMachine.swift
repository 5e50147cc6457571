import MSRP
import NIOCore

/// The outbound protocol of one MSRP connection, with no I/O: what to write
/// next, which transactions wait for which response, when they time out, and
/// when a send is done (RFC 4975 §7.1.1: a response for every chunk that asked
/// for one, 30 s from its last byte; §7.3.2: an error response stops the
/// message, its chunk in flight ending with `#`).
///
/// Inputs: messages and requests to send, responses read, timer ticks, the
/// connection's end. Outputs: bytes to write (`nextWrite`), promises to complete
/// (`Completion`) and the deadline a timer must be armed for. The handler
/// completes promises only once a call has returned: their callbacks may send
/// again, which would otherwise re-enter this machine.
struct MSRPSenderStateMachine {
    typealias JobID = OutboundScheduler.JobID

    /// A promise to complete, with its result.
    enum Completion {
        case send(EventLoopPromise<MSRPSendOutcome>, Result<MSRPSendOutcome, any Error>)
        case request(EventLoopPromise<MSRPResponseHead>, Result<MSRPResponseHead, any Error>)
    }

    /// Bytes to write, and what writing them settles.
    struct Write {
        var bytes: ByteBuffer
        /// A send that this write finished (every chunk written, every response in).
        var completion: Completion?
        /// A transaction timer to arm (none was armed).
        var armTimer: NIODeadline?
    }

    private enum Pending {
        case chunk(JobID)
        case request(EventLoopPromise<MSRPResponseHead>)
    }

    private struct JobState {
        var promise: EventLoopPromise<MSRPSendOutcome>
        var failureReport: FailureReport
        /// Chunks written that still owe a response.
        var outstanding = 0
        var allWritten = false
    }

    private var scheduler: OutboundScheduler
    private var transactions = TransactionTable<Pending>()
    private var jobs: [JobID: JobState] = [:]
    /// Whether the handler has a transaction timer armed (it asks for one at a time).
    private var timerArmed = false
    let chunkSize: Int
    let transactionTimeout: TimeAmount

    init(pieceSize: Int, chunkSize: Int, transactionTimeout: TimeAmount) {
        self.scheduler = OutboundScheduler(pieceSize: pieceSize)
        self.chunkSize = chunkSize
        self.transactionTimeout = transactionTimeout
    }

    /// Bytes queued in memory and not yet written (what relay back-pressure watches).
    var queuedBytes: Int { scheduler.queuedBytes }

    // MARK: - What to send

    /// A message from a session: chunked, interleaved with what else waits.
    mutating func send(_ message: MSRPOutgoingMessage, from local: MSRPURI, to remotePath: [MSRPURI], promise: EventLoopPromise<MSRPSendOutcome>) -> JobID {
        var headers: MSRPHeaderFields = [.messageID(message.messageID)]
        if message.successReport == .yes { headers.append(.successReport(.yes)) }
        if message.failureReport != .yes { headers.append(.failureReport(message.failureReport)) }
        for h in message.headers { headers.append(h) }
        headers.append(.contentType(message.contentType))
        let template = MSRPRequestHead(transactionID: "", method: .send, toPath: remotePath, fromPath: [local], headers: headers)
        let chunker = MSRPChunker(template: template, totalSize: message.body.size, chunkSize: chunkSize)
        let id = scheduler.enqueueMessage(chunker, source: message.body)
        jobs[id] = JobState(promise: promise, failureReport: message.failureReport)
        return id
    }

    /// A SEND chunk the relay forwards, re-chunked (RFC 4976 §7.1 lets a relay
    /// split chunks) into interruptible chunks of `chunkSize`, so that a large
    /// chunk does not hold up small messages queued behind it on this hop.
    /// Parts of one message keep their order. The outcome is the job's:
    /// accepted, or the first error response or time-out.
    mutating func forward(_ head: MSRPRequestHead, body: ByteBuffer, flag: ContinuationFlag, promise: EventLoopPromise<MSRPSendOutcome>) {
        let length = Int64(body.readableBytes)
        let range = head.headers.byteRange
        // Without a Byte-Range the chunk is the whole message.
        let offset = (range?.start ?? 1) - 1
        let total = range.map(\.total) ?? (flag == .complete ? length : nil)
        let chunker = MSRPChunker(template: head, part: offset, length: length, of: total, lastFlag: flag, chunkSize: chunkSize)
        let key = head.headers.messageID.map { "\($0) \(head.toPath.first.map(\.description) ?? "")" }
        let id = scheduler.enqueueMessage(chunker, source: MemoryBodySource(body), orderKey: key)
        jobs[id] = JobState(promise: promise, failureReport: head.headers.failureReport)
    }

    /// A request written as it is (a REPORT, a NICKNAME, a relayed frame); with
    /// a promise, its response is awaited for `transactionTimeout`. Returns the
    /// deadline of a timer to arm, if one must be.
    mutating func request(_ bytes: ByteBuffer, transactionID: String, promise: EventLoopPromise<MSRPResponseHead>?, now: NIODeadline) -> NIODeadline? {
        scheduler.enqueueFrame(bytes)
        guard let promise else { return nil }
        transactions.add(transactionID, .request(promise), deadline: now + transactionTimeout)
        return timerToArm()
    }

    /// A frame of our own to write first (a response).
    mutating func respond(_ bytes: ByteBuffer) {
        scheduler.enqueueFrame(bytes)
    }

    /// The sender gave up on a message: its chunk on the wire ends with `#`.
    mutating func cancel(_ job: JobID) -> Completion? {
        guard let state = jobs.removeValue(forKey: job) else { return nil }
        scheduler.abort(job)
        return .send(state.promise, .failure(CancellationError()))
    }

    // MARK: - Writing

    /// The next bytes to write, or nil when nothing waits. A body that cannot
    /// be read fails its send (the completion comes with no bytes).
    mutating func nextWrite(allocator: ByteBufferAllocator, now: NIODeadline) -> Write? {
        let next: OutboundScheduler.Write?
        do {
            next = try scheduler.next(allocator: allocator)
        } catch {
            guard case .bodyUnreadable(let job, let underlying) = error, let state = jobs.removeValue(forKey: job) else {
                return nextWrite(allocator: allocator, now: now)
            }
            return Write(bytes: ByteBuffer(), completion: .send(state.promise, .failure(MSRPSendError(reason: .bodyUnreadable, detail: "\(underlying)"))))
        }
        guard let write = next else { return nil }
        var out = Write(bytes: write.bytes)
        if let started = write.started { chunkStarted(started) }
        if let ended = write.ended { (out.completion, out.armTimer) = chunkEnded(ended, now: now) }
        return out
    }

    private mutating func chunkStarted(_ started: OutboundScheduler.StartedChunk) {
        guard var state = jobs[started.job], started.failureReport != .no else { return }
        // Registered now, so that an answer arriving before the end-line counts.
        transactions.add(started.transactionID, .chunk(started.job), deadline: nil)
        if started.failureReport == .yes { state.outstanding += 1 }
        jobs[started.job] = state
    }

    private mutating func chunkEnded(_ ended: OutboundScheduler.EndedChunk, now: NIODeadline) -> (Completion?, NIODeadline?) {
        guard var state = jobs[ended.job] else { return (nil, nil) }
        var arm: NIODeadline?
        if ended.flag == .aborted {
            _ = transactions.resolve(ended.transactionID)  // "#" ends the message; no answer awaited
        } else if ended.failureReport == .yes {
            // §7.1.1: 30 s from the last byte, which is being handed to the OS now.
            if transactions.arm(ended.transactionID, deadline: now + transactionTimeout) { arm = timerToArm() }
        }
        if ended.jobFinished { state.allWritten = true }
        jobs[ended.job] = state
        return (completeIfDone(ended.job), arm)
    }

    private mutating func completeIfDone(_ job: JobID) -> Completion? {
        guard let state = jobs[job], state.allWritten, state.outstanding == 0 else { return nil }
        jobs.removeValue(forKey: job)
        return .send(state.promise, .success(state.failureReport == .yes ? .accepted : .sent))
    }

    private mutating func finish(_ job: JobID, _ outcome: MSRPSendOutcome) -> Completion? {
        guard let state = jobs.removeValue(forKey: job) else { return nil }
        scheduler.abort(job)  // a chunk in flight ends with "#" (§7.3.2)
        return .send(state.promise, .success(outcome))
    }

    // MARK: - Responses and timers

    /// A response read from the peer; nil for one that answers nothing pending
    /// (a duplicate, or late: Kamailio may send two 200s for one SEND).
    mutating func response(_ response: MSRPResponseHead) -> Completion? {
        guard let pending = transactions.resolve(response.transactionID) else { return nil }
        switch pending {
        case .request(let promise):
            return .request(promise, .success(response))
        case .chunk(let job):
            guard var state = jobs[job] else { return nil }
            switch response.code {
            case 200:
                state.outstanding -= 1
                jobs[job] = state
                return completeIfDone(job)
            case 408:
                return finish(job, .timedOut)
            default:
                return finish(job, .rejected(code: response.code, comment: response.comment))
            }
        }
    }

    /// The transaction timer fired: what expired, and the next timer to arm.
    mutating func timerFired(now: NIODeadline) -> (expired: [(transactionID: String, completion: Completion?)], armTimer: NIODeadline?) {
        timerArmed = false
        var expired: [(String, Completion?)] = []
        for (tid, pending) in transactions.expire(now: now) {
            switch pending {
            case .chunk(let job): expired.append((tid, finish(job, .timedOut)))
            case .request(let promise): expired.append((tid, .request(promise, .success(Self.timeoutResponse(tid)))))
            }
        }
        return (expired, timerToArm())
    }

    /// One timer for the earliest pending deadline. Deadlines come in FIFO
    /// order, so a timer already armed is never later than a new transaction's.
    private mutating func timerToArm() -> NIODeadline? {
        guard !timerArmed, let deadline = transactions.nextDeadline else { return nil }
        timerArmed = true
        return deadline
    }

    /// A request that got no answer in time is answered 408 here (§7.1.1).
    static func timeoutResponse(_ tid: String) -> MSRPResponseHead {
        MSRPResponseHead(transactionID: tid, code: 408, comment: "Request Timeout (local)", toPath: [], fromPath: [])
    }

    /// The connection is gone: everything waiting fails with `error`.
    mutating func close(_ error: any Error) -> [Completion] {
        _ = scheduler.drain()
        var out: [Completion] = jobs.values.map { .send($0.promise, .failure(error)) }
        jobs = [:]
        for (_, pending) in transactions.removeAll() {
            if case .request(let promise) = pending { out.append(.request(promise, .failure(error))) }
        }
        return out
    }

    /// True when nothing waits: no bytes to write, no send or request unsettled.
    var isIdle: Bool { jobs.isEmpty && transactions.isEmpty && scheduler.isIdle }
}
