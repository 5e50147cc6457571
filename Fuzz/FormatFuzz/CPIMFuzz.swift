import CPIM

/// message/cpim and message/imdn+xml: whatever the bytes, parsing returns or
/// throws (never crashes), stays within its header limits, and what parses
/// serialises to something that parses the same.
func fuzzCPIM(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeRawBufferPointer(start: data, count: size))
    let parser = CPIMParser(maxHeaderBytes: 2048, maxHeaders: 32)
    if let m = try? parser.parse(bytes) {
        precondition(m.headers.count + m.contentHeaders.count <= 32, "header limit exceeded")
        _ = IMDNRequest(m)
        _ = m.from
        _ = m.to
        _ = m.subjects
        if let again = try? CPIMParser(maxHeaderBytes: 1 << 20, maxHeaders: 1000).parse(m.serialized) {
            precondition(again.content == m.content, "content changed in a round trip")
        }
    }
    _ = try? IMDNNotification(xml: bytes)
    return 0
}
