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
    public let totalSize: Int64
    public let chunkSize: Int
    /// Message bytes whose chunks have been planned.
    public private(set) var sent: Int64 = 0
    private var emittedAny = false

    /// The largest chunk body that need not be interruptible (§7.1.1).
    public static let uninterruptibleLimit = 2048

    public init(template: MSRPRequestHead, totalSize: Int64, chunkSize: Int = 2048) {
        precondition(chunkSize > 0, "chunk size must be positive")
        self.template = template
        self.totalSize = totalSize
        self.chunkSize = chunkSize
    }

    public var isFinished: Bool { emittedAny && sent >= totalSize }

    /// The next chunk, or nil when the whole message has been planned.
    public mutating func next(transactionID: String = MSRPIdentifier.make()) -> MSRPChunk? {
        guard !isFinished else { return nil }
        emittedAny = true
        let length = Int(min(Int64(chunkSize), totalSize - sent))
        let end = sent + Int64(length)
        let range = ByteRange(
            start: sent + 1, end: length > MSRPChunker.uninterruptibleLimit ? nil : end, total: totalSize)
        var head = template
        head.transactionID = transactionID
        head.headers.set(.byteRange(range))
        let chunk = MSRPChunk(head: head, offset: sent, length: length, flag: end >= totalSize ? .complete : .more)
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
