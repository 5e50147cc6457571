import NIOCore
import SMTPWire

/// SMTP server replies, as a hostile server could send them, in two reads
/// split at a point taken from the first byte: the parser returns replies or
/// throws, never crashes, and never holds more than its line limit.
func fuzzSMTPReplies(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let cut = max(1, Int(bytes[0]) % size)
    var parser = SMTPReplyParser(maxLineBytes: 512, maxLines: 16)
    var buffer = ByteBuffer()
    for piece in [bytes[1..<cut], bytes[cut...]] {
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: piece))
        while true {
            let reply: SMTPReply?
            do { reply = try parser.next(&buffer) } catch { return 0 }  // a broken connection: dropped
            guard let reply else {
                // Waiting for more: never more than one line's worth held.
                precondition(buffer.readableBytes <= 512, "parser kept \(buffer.readableBytes) bytes")
                break
            }
            precondition(reply.lines.count <= 16, "reply line limit exceeded")
            _ = SMTPCapabilities(ehlo: reply)
            _ = reply.enhancedCode
        }
    }
    return 0
}
