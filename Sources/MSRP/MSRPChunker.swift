import NIOCore

/// One chunk to send: its head (with Byte-Range) and which bytes of the message it carries.
public struct MSRPChunk: Sendable, Hashable {
    public var head: MSRPRequestHead
    /// Offset of the first body byte in the message, from 0.
    public var offset: Int64
    /// Planned body length; the sender may interrupt earlier.
    public var length: Int
    /// The flag for the end-line when the whole planned body is sent.
    public var flag: ContinuationFlag
}

/// Splits an outgoing message into SEND chunks (§5.1, §7.1.1).
///
/// Chunks carry `chunkSize` bytes (the last one fewer). A chunk over 2048 bytes
/// says `*` as its range end because it must be interruptible; `interrupt`
/// records that a chunk was cut short (sent with `+`), so the next chunk resumes
/// where it stopped. `abortFlag` ends the message with `#`.
public struct MSRPChunker: Sendable {
    /// To-Path, From-Path and headers (Message-ID, reports, Content-Type, ...);
    /// transaction id and Byte-Range are filled in per chunk.
    public let template: MSRPRequestHead
    /// Bytes this chunker sends (the whole message, or the part a relay re-chunks).
    public let totalSize: Int64
    public let chunkSize: Int
    /// Bytes planned so far, counted from the first byte this chunker sends.
    public private(set) var sent: Int64 = 0
    private var emittedAny = false
    /// Where the first byte sent sits in the message (0 unless re-chunking a part).
    private let messageOffset: Int64
    /// The Byte-Range total declared (nil: `*`).
    private let declaredTotal: Int64?
    /// The end-line flag of the last chunk (`+` when the message goes on in later chunks).
    private let lastFlag: ContinuationFlag

    /// The largest chunk body that need not be interruptible (§7.1.1).
    public static let uninterruptibleLimit = 2048

    public init(template: MSRPRequestHead, totalSize: Int64, chunkSize: Int = 2048) {
        precondition(chunkSize > 0, "chunk size must be positive")
        self.template = template
        self.totalSize = totalSize
        self.chunkSize = chunkSize
        self.messageOffset = 0
        self.declaredTotal = totalSize
        self.lastFlag = .complete
    }

    /// Re-chunks part of a message, as a relay may (RFC 4975 §5.1, RFC 4976 §7.1):
    /// `length` bytes that start at `offset` (0-based) in a message of `total`
    /// bytes (nil when unknown), the last chunk ending with `lastFlag` (`+` when
    /// the part was itself a chunk ended early). Chunk offsets stay relative to
    /// the part; Byte-Range headers are the message's.
    public init(template: MSRPRequestHead, part offset: Int64, length: Int64, of total: Int64?, lastFlag: ContinuationFlag, chunkSize: Int) {
        precondition(chunkSize > 0, "chunk size must be positive")
        self.template = template
        self.totalSize = length
        self.chunkSize = chunkSize
        self.messageOffset = offset
        self.declaredTotal = total
        self.lastFlag = lastFlag
    }

    public var isFinished: Bool { emittedAny && sent >= totalSize }

    /// The next chunk, or nil when the whole message has been planned.
    public mutating func next(transactionID: String = MSRPIdentifier.make()) -> MSRPChunk? {
        guard !isFinished else { return nil }
        emittedAny = true
        let length = Int(min(Int64(chunkSize), totalSize - sent))
        let end = sent + Int64(length)
        let range = ByteRange(
            start: messageOffset + sent + 1, end: length > MSRPChunker.uninterruptibleLimit ? nil : messageOffset + end, total: declaredTotal)
        var head = template
        head.transactionID = transactionID
        head.headers.set(.byteRange(range))
        let chunk = MSRPChunk(head: head, offset: sent, length: length, flag: end >= totalSize ? lastFlag : .more)
        sent = end
        return chunk
    }

    /// Records that `chunk` was ended with `+` after `written` body bytes.
    public mutating func interrupt(_ chunk: MSRPChunk, after written: Int) {
        precondition(written <= chunk.length)
        sent = chunk.offset + Int64(written)
    }

    /// Splits a message held in memory into whole frames (for small messages and tests).
    public static func frames(
        template: MSRPRequestHead, body: ByteBuffer, chunkSize: Int = 2048
    ) -> [MSRPFrame] {
        var chunker = MSRPChunker(template: template, totalSize: Int64(body.readableBytes), chunkSize: chunkSize)
        var frames: [MSRPFrame] = []
        while let chunk = chunker.next() {
            let slice = body.getSlice(at: body.readerIndex + Int(chunk.offset), length: chunk.length) ?? ByteBuffer()
            frames.append(MSRPFrame(head: .request(chunk.head), body: slice, flag: chunk.flag))
        }
        return frames
    }
}
