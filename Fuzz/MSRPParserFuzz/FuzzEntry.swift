import MSRP
import NIOCore

/// libFuzzer entry point: the input is split in two at a position taken from its
/// first byte, and both halves go through the parser (so split reads are fuzzed
/// too). Whatever the bytes, the parser must not crash, must not hold more than
/// its limits, and must keep making progress.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let cut = Int(bytes[0]) % size
    let limits = MSRPParserLimits(maxHeaderBytes: 2048, maxHeaderCount: 16, maxChunkBodyBytes: 4096, maxMessageBytes: 8192)
    var parser = MSRPParser(limits: limits)
    var buffer = ByteBuffer()
    let assembler = ChunkAssembler(limits: ChunkAssemblerLimits(memoryThreshold: 1024, maxMessageBytes: 8192, maxPendingMessages: 4))
    var inSend = false
    for piece in [bytes[1..<max(1, cut)], bytes[max(1, cut)...]] {
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: piece))
        while true {
            let event: MSRPParserEvent?
            do { event = try parser.next(&buffer) } catch { return 0 }
            guard let event else { break }
            if case .head(.request(let r), _) = event { checkPathsRoundTrip(r.toPath + r.fromPath) }
            switch event {
            case .head(.request(let r), true) where r.method == .send:
                inSend = (try? assembler.begin(r)) != nil
            case .body(let b):
                if inSend, (try? assembler.append(b)) == nil { inSend = false; assembler.cancel() }
            case .end(let f):
                if inSend, case .complete(let m)? = try? assembler.end(f), case .file(let path) = m.body {
                    unlinkSpool(path)
                }
                inSend = false
            case .invalid:
                if inSend { assembler.cancel() }
                inSend = false
            case .head:
                inSend = false
            }
        }
        // What the parser keeps unconsumed is bounded by the header limit or an end-line.
        if buffer.readableBytes > 4096 { fatalError("parser retained \(buffer.readableBytes) bytes") }
        buffer.discardReadBytes()
    }
    assembler.discardAll()
    return 0
}

/// A URI the parser took is written (as a relay forwards it) exactly as
/// `description` spells it, and that text parses back to an equal URI.
func checkPathsRoundTrip(_ uris: [MSRPURI]) {
    for uri in uris {
        var out = ByteBuffer()
        out.writeMSRPURI(uri)
        let text = String(buffer: out)
        guard text == uri.description else { fatalError("writeMSRPURI \(text) != description \(uri.description)") }
        guard let again = try? MSRPURI(text), again == uri else { fatalError("\(text) does not parse back to the same URI") }
    }
}

#if canImport(Glibc)
    import Glibc
    func unlinkSpool(_ path: String) { unlink(path) }
#endif

// SwiftPM links an executable with `--defsym main=MSRPParserFuzz_main`, so
// libFuzzer's own `main` is never pulled in. This entry hands over to libFuzzer's
// documented driver instead. (Declared with @_silgen_name: on x86-64 and arm64 the
// Swift and C conventions agree for three pointer arguments and an Int32 result.)
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer, Int) -> CInt
) -> Int32

@_cdecl("MSRPParserFuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data, size) }
}
