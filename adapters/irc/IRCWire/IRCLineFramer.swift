import NIOCore

/// Cuts a byte stream from an IRC server into lines (LF, with or without CR),
/// holding at most `maxLineBytes` of an unfinished line: a longer line is
/// skipped to its end and reported, never buffered whole.
public struct IRCLineFramer: Sendable {
    public enum Event: Sendable, Hashable {
        /// A line without its CR LF (empty lines are skipped): a slice of the
        /// input, not a copy.
        case line(ByteBuffer)
        /// A line over the limit was dropped; its length in bytes.
        case tooLong(Int)
    }

    /// 8,191 bytes of tags and 512 for the rest (IRCv3 message-tags).
    public static let defaultMaxLineBytes = 8191 + 512
    public let maxLineBytes: Int
    private var discarding = 0

    public init(maxLineBytes: Int = IRCLineFramer.defaultMaxLineBytes) {
        self.maxLineBytes = maxLineBytes
    }

    /// The next event from `buffer`, consuming what it reads; nil when more bytes are needed.
    public mutating func next(_ buffer: inout ByteBuffer) -> Event? {
        while true {
            let view = buffer.readableBytesView
            guard let lf = view.firstIndex(of: 0x0A) else {
                if view.count > maxLineBytes || discarding > 0 {
                    // Over the limit with no end in sight: drop what we have, remember we are in it.
                    discarding += view.count
                    buffer.moveReaderIndex(forwardBy: view.count)
                }
                return nil
            }
            let length = lf - view.startIndex
            if discarding > 0 {
                let total = discarding + length
                discarding = 0
                buffer.moveReaderIndex(forwardBy: length + 1)
                return .tooLong(total)
            }
            if length > maxLineBytes {
                buffer.moveReaderIndex(forwardBy: length + 1)
                return .tooLong(length)
            }
            let cr = length > 0 && view[lf - 1] == 0x0D ? 1 : 0
            guard let line = buffer.readSlice(length: length - cr) else { return nil }
            buffer.moveReaderIndex(forwardBy: cr + 1)
            if line.readableBytes == 0 { continue }
            return .line(line)
        }
    }
}
