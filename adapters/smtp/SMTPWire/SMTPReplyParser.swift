import NIOCore

/// Reads replies from bytes as they arrive: `250-first`, `250-more`, `250 last`.
/// Bounded: a line over `maxLineBytes` or a reply over `maxLines` is an error,
/// so a hostile server cannot make the client buffer without end. Lines end in
/// CRLF; a bare LF is tolerated.
public struct SMTPReplyParser: Sendable {
    public var maxLineBytes: Int
    public var maxLines: Int
    private var pending: [String] = []
    private var pendingCode: Int?

    public init(maxLineBytes: Int = 4096, maxLines: Int = 128) {
        self.maxLineBytes = maxLineBytes
        self.maxLines = maxLines
    }

    /// The next complete reply in `buffer`, or nil when more bytes are needed.
    /// Consumes what it reads.
    public mutating func next(_ buffer: inout ByteBuffer) throws(SMTPProtocolError) -> SMTPReply? {
        while true {
            let view = buffer.readableBytesView
            guard let lf = view.firstIndex(of: 0x0A) else {
                if view.count > maxLineBytes { throw SMTPProtocolError(.overlongLine, "over \(maxLineBytes) bytes without a line end") }
                return nil
            }
            let length = lf - view.startIndex
            guard length <= maxLineBytes else { throw SMTPProtocolError(.overlongLine, "\(length) bytes") }
            var bytes = Array(view[view.startIndex..<lf])
            buffer.moveReaderIndex(forwardBy: length + 1)
            if bytes.last == 0x0D { bytes.removeLast() }
            if let reply = try line(bytes) { return reply }
        }
    }

    private mutating func line(_ b: [UInt8]) throws(SMTPProtocolError) -> SMTPReply? {
        guard b.count >= 3, b[0...2].allSatisfy({ (0x30...0x39).contains($0) }), (0x32...0x35).contains(b[0]) else {
            throw SMTPProtocolError(.malformedReply, printable(b))
        }
        let code = Int(b[0] - 0x30) * 100 + Int(b[1] - 0x30) * 10 + Int(b[2] - 0x30)
        let separator: UInt8? = b.count > 3 ? b[3] : nil
        guard separator == nil || separator == 0x20 || separator == UInt8(ascii: "-") else {
            throw SMTPProtocolError(.malformedReply, printable(b))
        }
        if let pendingCode, pendingCode != code { throw SMTPProtocolError(.mixedCodes, "\(pendingCode) then \(code)") }
        let text = b.count > 4 ? String(decoding: b[4...], as: UTF8.self) : ""
        pending.append(text)
        guard pending.count <= maxLines else { throw SMTPProtocolError(.tooManyLines, "over \(maxLines)") }
        if separator == UInt8(ascii: "-") {
            pendingCode = code
            return nil
        }
        defer {
            pending = []
            pendingCode = nil
        }
        return SMTPReply(code: code, lines: pending)
    }
}

func printable(_ b: [UInt8]) -> String {
    String(String(decoding: b.prefix(80), as: UTF8.self).map { ($0.asciiValue ?? 0x20) >= 0x20 || !$0.isASCII ? $0 : "?" })
}
