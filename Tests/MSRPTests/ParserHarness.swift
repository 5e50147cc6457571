import NIOCore
@testable import MSRP

/// What a parse run produced: whole frames, rejected frames, and a fatal error if any.
struct ParseRun {
    var frames: [MSRPFrame] = []
    var invalid: [MSRPInvalidFrame] = []
    var fatal: MSRPParseError?
    /// Bytes left unconsumed in the input buffer at the end.
    var leftover = 0
}

/// Feeds `bytes` to a parser in pieces cut at `cuts` (offsets), collecting frames.
func parse(_ bytes: [UInt8], cuts: [Int] = [], limits: MSRPParserLimits = MSRPParserLimits()) -> ParseRun {
    var parser = MSRPParser(limits: limits)
    var run = ParseRun()
    var buffer = ByteBuffer()
    var head: MSRPFrameHead?
    var hasBody = false
    var body = ByteBuffer()
    var pieces: [ArraySlice<UInt8>] = []
    var last = 0
    for c in cuts.sorted() where c > last && c < bytes.count {
        pieces.append(bytes[last..<c])
        last = c
    }
    pieces.append(bytes[last...])
    outer: for piece in pieces {
        buffer.writeBytes(piece)
        while true {
            let event: MSRPParserEvent?
            do {
                event = try parser.next(&buffer)
            } catch {
                run.fatal = error
                break outer
            }
            guard let event else { break }
            switch event {
            case .head(let h, let b):
                head = h
                hasBody = b
                body = ByteBuffer()
            case .body(var slice):
                body.writeBuffer(&slice)
            case .end(let flag):
                if let h = head { run.frames.append(MSRPFrame(head: h, body: hasBody ? body : nil, flag: flag)) }
                head = nil
            case .invalid(let inv):
                run.invalid.append(inv)
                head = nil
            }
        }
        buffer.discardReadBytes()
    }
    run.leftover = buffer.readableBytes
    return run
}

func wire(_ text: String) -> [UInt8] {
    Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8)
}

func serialize(_ frames: [MSRPFrame]) -> [UInt8] {
    var out = ByteBuffer()
    for f in frames { out.writeMSRPFrame(f) }
    return Array(out.readableBytesView)
}

extension String {
    func replacingOccurrences(of a: String, with b: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: a) {
            out += rest[..<r.lowerBound]
            out += b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
