import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A message put back together from its chunks.
public struct AssembledMessage: Sendable {
    public enum Body: Sendable {
        case memory(ByteBuffer)
        /// A spooled file the receiver now owns (moves or deletes it).
        case file(path: String)
    }

    /// The head of the chunk that started the message (range start 1), else the first seen.
    public var head: MSRPRequestHead
    public var body: Body
    public var size: Int64

    public var messageID: String { head.headers.messageID ?? "" }
    /// The range a success REPORT covers: the whole message.
    public var range: ByteRange { .whole(size) }
}

/// Limits of the assembler; `spoolDirectory` holds messages over `memoryThreshold`.
public struct ChunkAssemblerLimits: Sendable, Hashable {
    public var memoryThreshold: Int
    public var maxMessageBytes: Int64
    /// Messages being assembled at once (per assembler, i.e. per session).
    public var maxPendingMessages: Int
    public var spoolDirectory: String

    public init(
        memoryThreshold: Int = 1024 * 1024, maxMessageBytes: Int64 = 64 * 1024 * 1024,
        maxPendingMessages: Int = 16, spoolDirectory: String = "/tmp"
    ) {
        self.memoryThreshold = memoryThreshold
        self.maxMessageBytes = maxMessageBytes
        self.maxPendingMessages = maxPendingMessages
        self.spoolDirectory = spoolDirectory
    }
}

/// Why a chunk was refused; `code` is the MSRP status to answer with.
public struct ChunkAssemblyError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var reason: String
    public var description: String { "\(code) \(reason)" }
}

/// Reassembles messages from SEND chunks by Message-ID and Byte-Range (§7.3.1):
/// chunks out of order, overlapping (the last one received wins), with `*`
/// totals, interrupted chunks resumed later, `#` aborts. Messages stay in memory
/// below `memoryThreshold` and are spooled to a temporary file above it; a message
/// over `maxMessageBytes` is refused with 413.
///
/// Use per chunk: `begin` with its head, `append` its body bytes as they arrive,
/// then `end` with its flag (or `cancel` if the frame turned out invalid).
public final class ChunkAssembler {
    public enum Outcome: Sendable {
        case incomplete
        case complete(AssembledMessage)
        case aborted(messageID: String)
    }

    public let limits: ChunkAssemblerLimits
    private var partials: [String: PartialMessage] = [:]
    /// The chunk being received: its message and where its next byte goes (0-based).
    private var current: (messageID: String, start: Int64, written: Int64)?

    public init(limits: ChunkAssemblerLimits = ChunkAssemblerLimits()) {
        self.limits = limits
    }

    deinit {
        for (_, p) in partials { p.storage.discard() }
    }

    /// Messages being assembled.
    public var pendingCount: Int { partials.count }

    /// Starts a chunk.
    public func begin(_ head: MSRPRequestHead) throws(ChunkAssemblyError) {
        guard let messageID = head.headers.messageID else {
            throw ChunkAssemblyError(code: 400, reason: "SEND without Message-ID")
        }
        let range = head.headers.byteRange ?? ByteRange(start: 1, end: nil, total: nil)
        if let total = range.total, total > limits.maxMessageBytes {
            throw ChunkAssemblyError(code: 413, reason: "message of \(total) bytes over \(limits.maxMessageBytes)")
        }
        if partials[messageID] == nil {
            guard partials.count < limits.maxPendingMessages else {
                throw ChunkAssemblyError(code: 413, reason: "too many messages in progress")
            }
            partials[messageID] = PartialMessage(head: head)
        } else if range.start == 1 {
            partials[messageID]?.head = head
        }
        if let total = range.total { partials[messageID]?.total = total }
        current = (messageID, range.start - 1, 0)
    }

    /// Adds body bytes of the current chunk.
    public func append(_ bytes: ByteBuffer) throws(ChunkAssemblyError) {
        guard let cur = current, var partial = partials.removeValue(forKey: cur.messageID) else { return }
        let at = cur.start + cur.written
        let end = at + Int64(bytes.readableBytes)
        guard end <= limits.maxMessageBytes else {
            partial.storage.discard()
            current = nil
            throw ChunkAssemblyError(code: 413, reason: "message over \(limits.maxMessageBytes) bytes")
        }
        do {
            if case .memory = partial.storage, end > Int64(limits.memoryThreshold) {
                try partial.storage.spill(into: limits.spoolDirectory)
            }
            try partial.storage.write(bytes, at: at)
        } catch {
            partial.storage.discard()
            current = nil
            throw ChunkAssemblyError(code: 413, reason: "cannot spool message: \(error)")
        }
        partials[cur.messageID] = partial
        current = (cur.messageID, cur.start, cur.written + Int64(bytes.readableBytes))
    }

    /// Ends the current chunk with its flag.
    public func end(_ flag: ContinuationFlag) throws(ChunkAssemblyError) -> Outcome {
        guard let cur = current else { return .incomplete }
        current = nil
        guard var partial = partials.removeValue(forKey: cur.messageID) else { return .incomplete }
        switch flag {
        case .aborted:
            partial.storage.discard()
            return .aborted(messageID: cur.messageID)
        case .complete:
            // The chunk ending in `$` defines the total length (§7.3.1).
            partial.total = cur.start + cur.written
        case .more:
            break
        }
        if cur.written > 0 { partial.received.insert(cur.start..<(cur.start + cur.written)) }
        if let total = partial.total, partial.received.covers(0..<total) {
            let body: AssembledMessage.Body
            do {
                body = try partial.storage.finish(size: total)
            } catch {
                partial.storage.discard()
                throw ChunkAssemblyError(code: 413, reason: "cannot spool message: \(error)")
            }
            return .complete(AssembledMessage(head: partial.head, body: body, size: total))
        }
        partials[cur.messageID] = partial
        return .incomplete
    }

    /// Drops the current chunk (its frame was invalid); the message stays pending.
    public func cancel() {
        current = nil
    }

    /// Drops one message in progress (e.g. after an error response for one of its chunks).
    public func discard(messageID: String) {
        partials.removeValue(forKey: messageID)?.storage.discard()
        if current?.messageID == messageID { current = nil }
    }

    /// Drops every message in progress (session closed); deletes spooled files.
    public func discardAll() {
        for (_, p) in partials { p.storage.discard() }
        partials = [:]
        current = nil
    }
}

/// Received byte ranges of one message, kept sorted and merged.
struct RangeSet: Sendable {
    private(set) var ranges: [Range<Int64>] = []

    mutating func insert(_ r: Range<Int64>) {
        guard !r.isEmpty else { return }
        var lo = r.lowerBound, hi = r.upperBound
        var out: [Range<Int64>] = []
        var placed = false
        for x in ranges {
            if x.upperBound < lo {
                out.append(x)
            } else if x.lowerBound > hi {
                if !placed {
                    out.append(lo..<hi)
                    placed = true
                }
                out.append(x)
            } else {
                lo = min(lo, x.lowerBound)
                hi = max(hi, x.upperBound)
            }
        }
        if !placed { out.append(lo..<hi) }
        ranges = out
    }

    func covers(_ r: Range<Int64>) -> Bool {
        if r.isEmpty { return true }
        return ranges.contains { $0.lowerBound <= r.lowerBound && $0.upperBound >= r.upperBound }
    }
}

struct PartialMessage {
    var head: MSRPRequestHead
    var storage = MessageStorage.memory(ByteBuffer())
    var received = RangeSet()
    var total: Int64?

    init(head: MSRPRequestHead) { self.head = head }
}

/// Where a message's bytes are kept while it is assembled.
enum MessageStorage {
    case memory(ByteBuffer)
    case file(SpoolFile)

    struct IOError: Error, CustomStringConvertible {
        var call: String
        var errno: Int32
        var description: String { "\(call) failed: errno \(errno)" }
    }

    mutating func write(_ bytes: ByteBuffer, at offset: Int64) throws(IOError) {
        switch self {
        case .memory(var buffer):
            self = .memory(ByteBuffer())  // keep the buffer uniquely referenced while writing
            if buffer.writerIndex == 0, offset == 0 {
                buffer = bytes  // one chunk, one slice: no copy
            } else {
                let index = Int(offset)
                buffer.setBuffer(bytes, at: index)
                let end = index + bytes.readableBytes
                if end > buffer.writerIndex { buffer.moveWriterIndex(to: end) }
            }
            self = .memory(buffer)
        case .file(let file):
            try file.write(bytes, at: offset)
        }
    }

    mutating func spill(into directory: String) throws(IOError) {
        guard case .memory(let buffer) = self else { return }
        let file = try SpoolFile(directory: directory)
        if buffer.writerIndex > 0 {
            try file.write(buffer.getSlice(at: 0, length: buffer.writerIndex) ?? ByteBuffer(), at: 0)
        }
        self = .file(file)
    }

    func finish(size: Int64) throws(IOError) -> AssembledMessage.Body {
        switch self {
        case .memory(let buffer):
            return .memory(buffer.getSlice(at: 0, length: Int(size)) ?? ByteBuffer())
        case .file(let file):
            try file.close(truncatingTo: size)
            return .file(path: file.path)
        }
    }

    func discard() {
        if case .file(let file) = self { file.remove() }
    }
}

/// A temporary file written at offsets with pwrite.
final class SpoolFile {
    let path: String
    private var fd: Int32

    init(directory: String) throws(MessageStorage.IOError) {
        var template = Array((directory + "/msrp-spool-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw MessageStorage.IOError(call: "mkstemp", errno: errno) }
        self.fd = fd
        self.path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func write(_ bytes: ByteBuffer, at offset: Int64) throws(MessageStorage.IOError) {
        var done = 0
        let result: Int32 = bytes.withUnsafeReadableBytes { raw in
            while done < raw.count {
                let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                done += n
            }
            return 0
        }
        if result != 0 { throw MessageStorage.IOError(call: "pwrite", errno: result) }
    }

    func close(truncatingTo size: Int64) throws(MessageStorage.IOError) {
        guard fd >= 0 else { return }
        if ftruncate(fd, off_t(size)) != 0 { throw MessageStorage.IOError(call: "ftruncate", errno: errno) }
        _ = Glibc.close(fd)
        fd = -1
    }

    func remove() {
        if fd >= 0 {
            _ = Glibc.close(fd)
            fd = -1
        }
        unlink(path)
    }

    deinit {
        if fd >= 0 { _ = Glibc.close(fd) }
    }
}
