import MSRP
import NIOCore

/// Decides what a connection writes next (RFC 4975 §7.1.1 fairness rules).
///
/// Small frames (responses, REPORTs, other requests) go first. Messages are
/// written chunk by chunk in pieces; a chunk over 2048 bytes declares `*` as its
/// range end so it can be interrupted, and it is interrupted with `+` as soon as
/// a small frame or another message is waiting, so that a large message never
/// holds up a short one. A pure state machine: it returns bytes to write and what
/// they complete, and performs no I/O.
struct OutboundScheduler {
    struct JobID: Hashable { var raw: UInt64 }

    struct Job {
        var id: JobID
        var chunker: MSRPChunker
        var source: any MSRPBodySource
        /// The chunk on the wire: its plan and body bytes written so far.
        var current: (chunk: MSRPChunk, written: Int)?
        var abortRequested = false
        /// Jobs with the same key (parts of one message a relay re-chunks) go out
        /// in the order they were queued, not round robin among themselves.
        var orderKey: String?
        /// Body bytes held in memory and not yet read out (0 for other sources).
        var unsentMemory = 0
    }

    /// A chunk whose end-line has been written; the caller tracks its transaction.
    struct EndedChunk {
        var job: JobID
        var transactionID: String
        var flag: ContinuationFlag
        var failureReport: FailureReport
        /// True when this was the last chunk the job will write.
        var jobFinished: Bool
    }

    /// A chunk whose head has been written: its transaction exists from now on,
    /// since the receiver may answer (413, say) before the chunk ends.
    struct StartedChunk {
        var job: JobID
        var transactionID: String
        var failureReport: FailureReport
    }

    struct Write {
        var bytes: ByteBuffer
        var started: StartedChunk? = nil
        var ended: EndedChunk? = nil
    }

    enum ScheduleError: Error {
        case bodyUnreadable(JobID, any Error)
    }

    let pieceSize: Int
    /// Bytes queued in memory and not yet handed to the channel: frames, and
    /// messages whose body is in memory (a file's is not counted). What a relay
    /// watches to stop reading from a client whose next hop is slower.
    private(set) var queuedBytes = 0
    private var small = CircularBuffer<ByteBuffer>()
    private var jobs = CircularBuffer<Job>()
    private var nextID: UInt64 = 0

    init(pieceSize: Int) {
        self.pieceSize = max(pieceSize, MSRPChunker.uninterruptibleLimit)
    }

    var isIdle: Bool { small.isEmpty && jobs.isEmpty }

    mutating func enqueueFrame(_ bytes: ByteBuffer) {
        queuedBytes += bytes.readableBytes
        small.append(bytes)
    }

    mutating func enqueueMessage(_ chunker: MSRPChunker, source: any MSRPBodySource, orderKey: String? = nil) -> JobID {
        nextID += 1
        let id = JobID(raw: nextID)
        let inMemory = source is MemoryBodySource ? Int(chunker.totalSize) : 0
        jobs.append(Job(id: id, chunker: chunker, source: source, orderKey: orderKey, unsentMemory: inMemory))
        queuedBytes += inMemory
        return id
    }

    /// Puts a job that has more to send back in the round, at the end; later
    /// parts of the same message move to the end behind it.
    private mutating func requeue(_ job: Job) {
        guard let key = job.orderKey, jobs.contains(where: { $0.orderKey == key }) else {
            jobs.append(job)
            return
        }
        let later = jobs.filter { $0.orderKey == key }
        jobs.removeAll { $0.orderKey == key }
        jobs.append(job)
        jobs.append(contentsOf: later)
    }

    /// Asks for a message to be abandoned: the chunk in flight ends with `#`.
    mutating func abort(_ id: JobID) {
        guard let i = jobs.firstIndex(where: { $0.id == id }) else { return }
        if jobs[i].current == nil {
            queuedBytes -= jobs.remove(at: i).unsentMemory
        } else {
            jobs[i].abortRequested = true
        }
    }

    /// Drops every job; returns their ids (the connection is gone).
    mutating func drain() -> [JobID] {
        queuedBytes = 0
        small.removeAll()
        defer { jobs.removeAll() }
        return jobs.map(\.id)
    }

    /// The next bytes to write, or nil when there is nothing to do.
    mutating func next(allocator: ByteBufferAllocator) throws(ScheduleError) -> Write? {
        // A chunk in flight owns the wire until it ends or is interrupted.
        if var job = jobs.first, let (chunk, written) = job.current {
            // (A later part of the same message would wait anyway: no reason to cut.)
            let othersWaiting = !small.isEmpty
                || (jobs.count > 1 && (job.orderKey == nil || jobs.contains { $0.orderKey != job.orderKey }))
            let interruptible = chunk.head.headers.byteRange?.end == nil
            if job.abortRequested || (othersWaiting && interruptible && written >= MSRPChunker.uninterruptibleLimit && written < chunk.length) {
                let flag: ContinuationFlag = job.abortRequested ? .aborted : .more
                var bytes = allocator.buffer(capacity: chunk.head.transactionID.utf8.count + 12)
                bytes.writeMSRPEndLine(transactionID: chunk.head.transactionID, flag: flag, afterBody: true)
                job.current = nil
                if flag == .more { job.chunker.interrupt(chunk, after: written) }
                jobs.removeFirst()
                let finished = flag == .aborted
                if finished { queuedBytes -= job.unsentMemory }
                if !finished { requeue(job) }  // round robin: others go first
                return Write(bytes: bytes, ended: EndedChunk(
                    job: job.id, transactionID: chunk.head.transactionID, flag: flag,
                    failureReport: chunk.head.headers.failureReport, jobFinished: finished))
            }
            let length = min(pieceSize, chunk.length - written)
            var bytes: ByteBuffer
            do {
                bytes = try job.source.read(offset: chunk.offset + Int64(written), length: length, allocator: allocator)
            } catch {
                jobs.removeFirst()
                queuedBytes -= job.unsentMemory
                throw .bodyUnreadable(job.id, error)
            }
            if job.unsentMemory > 0 {
                job.unsentMemory -= length
                queuedBytes -= length
            }
            let nowWritten = written + length
            if nowWritten < chunk.length {
                job.current = (chunk, nowWritten)
                jobs[jobs.startIndex] = job
                return Write(bytes: bytes, ended: nil)
            }
            bytes.writeMSRPEndLine(transactionID: chunk.head.transactionID, flag: chunk.flag, afterBody: true)
            job.current = nil
            jobs.removeFirst()
            let finished = job.chunker.isFinished
            if !finished { requeue(job) }
            return Write(bytes: bytes, ended: EndedChunk(
                job: job.id, transactionID: chunk.head.transactionID, flag: chunk.flag,
                failureReport: chunk.head.headers.failureReport, jobFinished: finished))
        }
        if let frame = small.popFirst() {
            queuedBytes -= frame.readableBytes
            return Write(bytes: frame, ended: nil)
        }
        // Start the next chunk of the job at the front.
        guard var job = jobs.first else { return nil }
        if job.abortRequested {
            queuedBytes -= jobs.removeFirst().unsentMemory
            return try next(allocator: allocator)
        }
        guard let chunk = job.chunker.next() else {
            queuedBytes -= jobs.removeFirst().unsentMemory
            return try next(allocator: allocator)
        }
        var bytes = allocator.buffer(capacity: 512 + min(chunk.length, pieceSize))
        bytes.writeMSRPRequestHeaderLines(chunk.head)
        bytes.writeStaticString("\r\n")
        job.current = (chunk, 0)
        jobs[jobs.startIndex] = job
        let started = StartedChunk(
            job: job.id, transactionID: chunk.head.transactionID, failureReport: chunk.head.headers.failureReport)
        if chunk.length == 0 {
            // An empty message: the body section is empty.
            bytes.writeMSRPEndLine(transactionID: chunk.head.transactionID, flag: chunk.flag, afterBody: true)
            job.current = nil
            jobs.removeFirst()
            return Write(bytes: bytes, started: started, ended: EndedChunk(
                job: job.id, transactionID: chunk.head.transactionID, flag: chunk.flag,
                failureReport: chunk.head.headers.failureReport, jobFinished: true))
        }
        // The head and the first piece go out together.
        guard var rest = try next(allocator: allocator) else { return Write(bytes: bytes, started: started) }
        bytes.writeBuffer(&rest.bytes)
        return Write(bytes: bytes, started: started, ended: rest.ended)
    }
}
