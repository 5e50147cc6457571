import SDP

/// SDP offers: parse, read the MSRP media, negotiate; never a crash, and a
/// parsed description round-trips through its text.
func fuzzSDP(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    guard let sd = try? SDPParser().parse(text) else { return 0 }
    _ = try? SDPParser().parse(sd.text)
    if let (_, media) = try? sd.msrpMedia() {
        let caps = MSRPCapabilities(acceptTypes: ["message/cpim", "text/plain"], acceptWrappedTypes: ["text/plain", "message/imdn+xml"], maxSize: 1 << 20)
        if let n = try? MSRPOfferAnswer.negotiate(offer: media, capabilities: caps) {
            precondition(!n.answer.acceptTypes.isEmpty, "an answer with no types")
        }
    }
    return 0
}
