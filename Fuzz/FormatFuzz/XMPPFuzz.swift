import XMPPWire

/// A hostile XMPP server's stream, in two reads split at a point taken from the
/// first byte: the reader never traps, refuses or reads each piece, and every
/// stanza it reads is written back as XML that reads as the same stanza.
func fuzzXMPP(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let cut = max(1, Int(bytes[0]) % size)
    var parser = XMPPStreamParser(limits: .init(maxStanzaBytes: 4096, maxDepth: 16, maxAttributes: 16, maxElements: 256))
    for piece in [bytes[1..<cut], bytes[cut...]] {
        guard let events = try? parser.feed(piece) else { return 0 }
        for case .stanza(let stanza) in events {
            let header = "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>"
            var again = XMPPStreamParser()
            let written = stanza.serialized(inheritedNamespace: XMPPNamespace.component)
            let back = try? again.feed(Array(header.utf8) + written)
            precondition(back?.last == .stanza(stanza), "round trip changed \(stanza) into \(String(describing: back))")
        }
    }
    return 0
}
