import Digest
import NIOCore
import SIP

/// SIP messages as a datagram and as a stream split in two reads: parsing
/// returns or throws, never crashes; a parsed message serialises to one that
/// parses again; a stream never holds more than the header limit unparsed.
func fuzzSIP(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = [UInt8](UnsafeRawBufferPointer(start: data, count: size))
    let parser = SIPParser(maxHeaderBytes: 2048, maxHeaders: 32, maxBodyBytes: 2048)
    if let m = try? parser.parse(datagram: bytes) {
        precondition((try? SIPParser().parse(datagram: m.serialized)) != nil, "a parsed message does not parse after serialising")
        // What the client side reads from responses: challenges, addresses, Contact and routes.
        for f in m.headers.fields {
            if let c = DigestChallenge(f.value) {
                _ = c.authorization(username: "u", password: "p", method: "REGISTER", uri: "sip:x", body: [1], cnonce: "c", nonceCount: 1)
            }
            _ = SIPAddress(f.value)
            _ = NameAddr(f.value).map { SIPAddress($0.uri) }
        }
    }
    let cut = max(1, Int(bytes[0]) % size)
    var buffer = ByteBuffer()
    for piece in [bytes[1..<cut], bytes[cut...]] {
        buffer.writeBytes(piece)
        while true {
            let message: SIPMessage?
            do { message = try parser.next(&buffer) } catch { return 0 }
            guard message != nil else { break }
        }
    }
    return 0
}
