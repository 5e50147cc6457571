import NIOCore

/// What the parser found next in the input.
public enum MSRPParserEvent: Sendable, Hashable {
    /// The start line and headers of a frame. `hasBody` is true when a body section
    /// (possibly empty) follows; `.body` events and then `.end` come next.
    case head(MSRPFrameHead, hasBody: Bool)
    /// Body bytes as they arrive: a slice of the input, never a copy.
    case body(ByteBuffer)
    /// The end-line of the current frame.
    case end(ContinuationFlag)
    /// A frame that was delimited but is not acceptable; whatever else of it arrives
    /// is discarded up to its end-line. If `.head` was already emitted for it, the
    /// consumer drops what it collected of that frame.
    case invalid(MSRPInvalidFrame)
}

/// An incremental MSRP parser (RFC 4975 §9).
///
/// Feed it the accumulated input: `next(&buffer)` consumes from `buffer` what it has
/// used and returns one event, or nil when it needs more bytes (what it has not
/// consumed stays in `buffer`). It accepts input in pieces of any size, down to one
/// byte. Bodies are never buffered: body bytes are handed out as they arrive except
/// for a tail shorter than the end-line, which might be the start of one. The
/// end-line `CRLF -------<tid><flag> CRLF` is found with `memmem`, and a body may
/// contain anything else, including end-lines of other transactions.
///
/// Errors that leave the frame boundaries unknown (a bad start line) are thrown and
/// the parser stays failed; the connection must close. Other violations produce an
/// `.invalid` event and the parser resynchronises at the frame's end-line.
public struct MSRPParser: Sendable {
    public let limits: MSRPParserLimits

    private enum State: Sendable {
        case startLine
        case headers
        case body
        case discard
        case failed(MSRPParseError)
    }

    private var state: State = .startLine
    /// Bytes already searched for a line feed in the current line (no rescans).
    private var lineScanned = 0
    /// The end-line of a bodiless frame, returned by the call after `.head`.
    private var pendingEnd: ContinuationFlag?

    // The frame being parsed.
    private var tid: String = ""
    private var isRequest = true
    private var method: MSRPMethod = .send
    private var code = 0
    private var comment: String?
    private var toPath: [MSRPURI]?
    private var fromPath: [MSRPURI]?
    private var fields: [MSRPHeader] = []
    private var headerCount = 0
    private var headerBytes = 0
    private var frameError: MSRPParseError?
    /// `CRLF -------<tid>`: what precedes the flag of this frame's end-line.
    private var needle: [UInt8] = []
    private var bodyBytes: Int64 = 0
    private var rangeStart: Int64 = 1
    /// In discard mode: whether the input is at the start of a line (the CRLF of the
    /// needle has already been consumed, so the end-line can begin right here).
    private var discardAtLineStart = false

    public init(limits: MSRPParserLimits = MSRPParserLimits()) {
        self.limits = limits
    }

    /// True between frames: nothing of a frame has been consumed.
    public var isIdle: Bool {
        if case .startLine = state, pendingEnd == nil, lineScanned == 0 { return true }
        return false
    }

    public mutating func next(_ buffer: inout ByteBuffer) throws(MSRPParseError) -> MSRPParserEvent? {
        if let flag = pendingEnd {
            pendingEnd = nil
            return .end(flag)
        }
        while true {
            switch state {
            case .failed(let e):
                throw e
            case .startLine:
                guard let line = try nextLine(&buffer, budget: limits.maxHeaderBytes, startLine: true) else {
                    return nil
                }
                if line.isEmpty { continue }  // tolerate stray CRLF between frames
                do {
                    try parseStartLine(line)
                } catch {
                    state = .failed(error)
                    throw error
                }
                headerBytes = line.count + 2
                state = .headers
            case .headers:
                let budget = limits.maxHeaderBytes - headerBytes
                let line: [UInt8]?
                do {
                    line = try nextLine(&buffer, budget: budget, startLine: false)
                } catch {
                    if error.kind == .headerBlockTooLarge { return enterDiscard(error, atLineStart: false) }
                    state = .failed(error)
                    throw error
                }
                guard let line else { return nil }
                headerBytes += line.count + 2
                if line.isEmpty {
                    return finishHead(hasBody: true)
                }
                if let flag = endLineFlag(line) {
                    if let event = finishHead(hasBody: false) {
                        if case .head = event { pendingEnd = flag }
                        return event
                    }
                    continue
                }
                headerCount += 1
                if headerCount > limits.maxHeaderCount {
                    return enterDiscard(MSRPParseError(.tooManyHeaders, detail: "more than \(limits.maxHeaderCount)", transactionID: tid), atLineStart: true)
                }
                parseHeader(line)
            case .body:
                return scanBody(&buffer)
            case .discard:
                guard discard(&buffer) else { return nil }
                reset()
            }
        }
    }

    // MARK: - Lines

    /// Returns the next CRLF-terminated line without its CRLF, consuming it, or nil
    /// if no complete line is buffered yet.
    private mutating func nextLine(_ buffer: inout ByteBuffer, budget: Int, startLine: Bool) throws(MSRPParseError) -> [UInt8]? {
        let readable = buffer.readableBytes
        let found: Int? = buffer.withUnsafeReadableBytes { raw in
            guard lineScanned < raw.count else { return nil }
            return ByteSearch.find(byte: 0x0A, in: UnsafeRawBufferPointer(rebasing: raw[lineScanned...]))
                .map { $0 + lineScanned }
        }
        guard let lf = found else {
            lineScanned = readable
            if readable > budget {
                throw MSRPParseError(startLine ? .badStartLine : .headerBlockTooLarge,
                                     detail: "no line end within \(budget) bytes", transactionID: startLine ? nil : tid)
            }
            return nil
        }
        lineScanned = 0
        if lf + 1 > budget {
            throw MSRPParseError(startLine ? .badStartLine : .headerBlockTooLarge,
                                 detail: "line over \(budget) bytes", transactionID: startLine ? nil : tid)
        }
        let cr = lf > 0 && buffer.getInteger(at: buffer.readerIndex + lf - 1, as: UInt8.self) == 0x0D
        guard cr else {
            throw MSRPParseError(.bareLineFeed, transactionID: startLine ? nil : tid)
        }
        let line = buffer.readBytes(length: lf - 1) ?? []
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }

    /// The flag if `line` is this frame's end-line (`-------<tid><flag>`).
    private func endLineFlag(_ line: [UInt8]) -> ContinuationFlag? {
        // needle = CRLF + 7 dashes + tid; the line holds the needle without CRLF, then the flag.
        guard line.count == needle.count - 1, line[0] == UInt8(ascii: "-") else { return nil }
        for i in 0..<(needle.count - 3) where line[i] != needle[i + 2] { return nil }
        return ContinuationFlag(rawValue: line[line.count - 1])
    }

    // MARK: - Start line and headers

    private mutating func parseStartLine(_ line: [UInt8]) throws(MSRPParseError) {
        reset()
        func bad(_ why: String) -> MSRPParseError {
            MSRPParseError(.badStartLine, detail: why + ": " + String(decoding: line.prefix(80), as: UTF8.self))
        }
        guard line.count > 5, line[0] == UInt8(ascii: "M"), line[1] == UInt8(ascii: "S"),
            line[2] == UInt8(ascii: "R"), line[3] == UInt8(ascii: "P"), line[4] == 0x20
        else { throw bad("does not begin with \"MSRP \"") }
        var i = 5
        let tidStart = i
        while i < line.count, line[i] != 0x20 { i += 1 }
        let tidBytes = line[tidStart..<i]
        guard isIdent(tidBytes) else {
            throw MSRPParseError(.badTransactionID, detail: String(decoding: tidBytes.prefix(40), as: UTF8.self))
        }
        tid = String(decoding: tidBytes, as: UTF8.self)
        guard i < line.count, line[i] == 0x20, i + 1 < line.count else { throw bad("no method or status") }
        i += 1
        let rest = line[i...]
        if rest.count >= 3, rest.prefix(3).allSatisfy(isDigit), rest.count == 3 || rest[rest.startIndex + 3] == 0x20 {
            isRequest = false
            code = rest.prefix(3).reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            if rest.count > 4 {
                guard let c = utf8Text(rest.dropFirst(4)) else { throw bad("comment is not UTF-8 text") }
                comment = c
            }
        } else {
            guard rest.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else {
                throw bad("method is not upper-case letters")
            }
            isRequest = true
            method = MSRPMethod(String(decoding: rest, as: UTF8.self))
        }
        needle = Array("\r\n-------".utf8) + Array(tid.utf8)
    }

    private mutating func parseHeader(_ line: [UInt8]) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0, isAlpha(line[0]),
            line[..<colon].allSatisfy(isTokenByte)
        else {
            noteError(.malformedHeader, String(decoding: line.prefix(60), as: UTF8.self))
            return
        }
        var vs = colon + 1
        while vs < line.count, line[vs] == 0x20 || line[vs] == 0x09 { vs += 1 }
        var ve = line.count
        while ve > vs, line[ve - 1] == 0x20 || line[ve - 1] == 0x09 { ve -= 1 }
        let value = Array(line[vs..<ve])
        let kind = line.withUnsafeBytes { MSRPHeader.kind(of: UnsafeRawBufferPointer(rebasing: $0[0..<colon])) }
        let name = String(decoding: line[0..<colon], as: UTF8.self)
        guard utf8Text(value[...]) != nil else {
            noteError(.malformedHeader, name + " value is not UTF-8 text")
            return
        }
        switch kind {
        case .toPath, .fromPath:
            let position = kind == .toPath ? 1 : 2
            if headerCount != position { noteError(.misorderedPaths, name) }
            if (kind == .toPath ? toPath : fromPath) != nil {
                noteError(.duplicateHeader, name)
                return
            }
            do {
                let list = try parseURIList(value, header: name)
                if kind == .toPath { toPath = list } else { fromPath = list }
            } catch {
                noteError(.malformedHeader, error.description)
            }
        default:
            do {
                let header = try MSRPHeader.make(kind: kind, name: name, value: value)
                if kind != .other, kind != .wwwAuthenticate, fields.contains(where: { $0.name == header.name }) {
                    noteError(.duplicateHeader, name)
                }
                fields.append(header)
            } catch {
                noteError(.malformedHeader, error.description)
            }
        }
    }

    private mutating func noteError(_ kind: MSRPParseError.Kind, _ detail: String) {
        if frameError == nil { frameError = MSRPParseError(kind, detail: detail, transactionID: tid) }
    }

    /// Called at the empty line (`hasBody`) or the end-line of a bodiless frame.
    private mutating func finishHead(hasBody: Bool) -> MSRPParserEvent? {
        if frameError == nil {
            if toPath == nil {
                frameError = MSRPParseError(.missingToPath, transactionID: tid)
            } else if fromPath == nil {
                frameError = MSRPParseError(.missingFromPath, transactionID: tid)
            }
        }
        let headers = MSRPHeaderFields(fields)
        if frameError == nil, let range = headers.byteRange {
            let claimed = max(range.total ?? 0, range.end ?? 0, range.start - 1)
            if claimed > limits.maxMessageBytes {
                frameError = MSRPParseError(
                    .messageTooLarge, detail: "Byte-Range \(range) over \(limits.maxMessageBytes) bytes",
                    transactionID: tid)
            }
            rangeStart = range.start
        }
        if let error = frameError {
            let invalid = invalidFrame(error, headEmitted: false)
            if hasBody {
                // The body section starts here; its end-line is preceded by a CRLF of its own.
                discardAtLineStart = false
                state = .discard
            } else {
                reset()
            }
            return .invalid(invalid)
        }
        let head: MSRPFrameHead
        if isRequest {
            head = .request(MSRPRequestHead(
                transactionID: tid, method: method, toPath: toPath ?? [], fromPath: fromPath ?? [], headers: headers))
        } else {
            head = .response(MSRPResponseHead(
                transactionID: tid, code: code, comment: comment, toPath: toPath ?? [], fromPath: fromPath ?? [],
                headers: headers))
        }
        if hasBody {
            bodyBytes = 0
            state = .body
        } else {
            reset()
        }
        return .head(head, hasBody: hasBody)
    }

    private func invalidFrame(_ error: MSRPParseError, headEmitted: Bool) -> MSRPInvalidFrame {
        MSRPInvalidFrame(
            error: error, transactionID: tid, method: isRequest ? method : nil, toPath: toPath, fromPath: fromPath,
            headers: MSRPHeaderFields(fields), headEmitted: headEmitted)
    }

    private mutating func enterDiscard(_ error: MSRPParseError, atLineStart: Bool) -> MSRPParserEvent {
        let invalid = invalidFrame(error, headEmitted: false)
        discardAtLineStart = atLineStart
        lineScanned = 0
        state = .discard
        return .invalid(invalid)
    }

    // MARK: - Body

    private mutating func scanBody(_ buffer: inout ByteBuffer) -> MSRPParserEvent? {
        let tailLength = needle.count + 3  // needle, flag, CRLF
        var searchFrom = 0
        while true {
            let readable = buffer.readableBytes
            let hit: Int? = buffer.withUnsafeReadableBytes { raw in
                needle.withUnsafeBytes { n in
                    ByteSearch.find(n, in: UnsafeRawBufferPointer(rebasing: raw[searchFrom...])).map { $0 + searchFrom }
                }
            }
            guard let at = hit else {
                // No end-line start in view: hand out all but what could begin one.
                return emitBody(&buffer, count: readable - (needle.count - 1))
            }
            if at + tailLength > readable {
                // Possibly the end-line, not all here yet: hand out what precedes it.
                return emitBody(&buffer, count: at)
            }
            let base = buffer.readerIndex + at + needle.count
            let flagByte = buffer.getInteger(at: base, as: UInt8.self) ?? 0
            if let flag = ContinuationFlag(rawValue: flagByte),
                buffer.getInteger(at: base + 1, as: UInt8.self) == 0x0D,
                buffer.getInteger(at: base + 2, as: UInt8.self) == 0x0A
            {
                if at > 0 { return emitBody(&buffer, count: at) }
                buffer.moveReaderIndex(forwardBy: tailLength)
                reset()
                return .end(flag)
            }
            // Looks like an end-line but is not one (another flag or no CRLF): body data.
            searchFrom = at + 1
        }
    }

    private mutating func emitBody(_ buffer: inout ByteBuffer, count: Int) -> MSRPParserEvent? {
        guard count > 0 else { return nil }
        bodyBytes += Int64(count)
        if bodyBytes > limits.maxChunkBodyBytes {
            let e = MSRPParseError(.chunkTooLarge, detail: "over \(limits.maxChunkBodyBytes) bytes", transactionID: tid)
            return enterDiscardFromBody(e)
        }
        if rangeStart - 1 + bodyBytes > limits.maxMessageBytes {
            let e = MSRPParseError(.messageTooLarge, detail: "over \(limits.maxMessageBytes) bytes", transactionID: tid)
            return enterDiscardFromBody(e)
        }
        return buffer.readSlice(length: count).map { .body($0) }
    }

    private mutating func enterDiscardFromBody(_ error: MSRPParseError) -> MSRPParserEvent {
        let invalid = invalidFrame(error, headEmitted: true)
        discardAtLineStart = false
        state = .discard
        return .invalid(invalid)
    }

    // MARK: - Discarding a rejected frame

    /// Drops input up to and including this frame's end-line; true when found.
    private mutating func discard(_ buffer: inout ByteBuffer) -> Bool {
        let tailLength = needle.count + 3
        if discardAtLineStart {
            // The end-line may start right here, its leading CRLF already consumed.
            let want = tailLength - 2
            let avail = min(buffer.readableBytes, want)
            let prefixMatches = buffer.withUnsafeReadableBytes { raw in
                (0..<avail).allSatisfy { i in
                    i < want - 3 ? raw[i] == needle[i + 2] : true
                }
            }
            if prefixMatches {
                if buffer.readableBytes < want { return false }
                let flag = buffer.getInteger(at: buffer.readerIndex + want - 3, as: UInt8.self) ?? 0
                let cr = buffer.getInteger(at: buffer.readerIndex + want - 2, as: UInt8.self)
                let lf = buffer.getInteger(at: buffer.readerIndex + want - 1, as: UInt8.self)
                if ContinuationFlag(rawValue: flag) != nil, cr == 0x0D, lf == 0x0A {
                    buffer.moveReaderIndex(forwardBy: want)
                    return true
                }
            }
            discardAtLineStart = false
        }
        var searchFrom = 0
        while true {
            let readable = buffer.readableBytes
            let hit: Int? = buffer.withUnsafeReadableBytes { raw in
                needle.withUnsafeBytes { n in
                    ByteSearch.find(n, in: UnsafeRawBufferPointer(rebasing: raw[searchFrom...])).map { $0 + searchFrom }
                }
            }
            guard let at = hit else {
                buffer.moveReaderIndex(forwardBy: max(0, readable - (needle.count - 1)))
                return false
            }
            if at + tailLength > readable {
                buffer.moveReaderIndex(forwardBy: at)
                return false
            }
            let base = buffer.readerIndex + at + needle.count
            if let f = buffer.getInteger(at: base, as: UInt8.self), ContinuationFlag(rawValue: f) != nil,
                buffer.getInteger(at: base + 1, as: UInt8.self) == 0x0D,
                buffer.getInteger(at: base + 2, as: UInt8.self) == 0x0A
            {
                buffer.moveReaderIndex(forwardBy: at + tailLength)
                return true
            }
            searchFrom = at + 1
        }
    }

    // MARK: - Reset

    private mutating func reset() {
        state = .startLine
        lineScanned = 0
        toPath = nil
        fromPath = nil
        fields = []
        headerCount = 0
        headerBytes = 0
        frameError = nil
        comment = nil
        bodyBytes = 0
        rangeStart = 1
    }
}

/// `utf8text` of §9: HTAB, printable ASCII and well-formed UTF-8; nil otherwise.
func utf8Text(_ bytes: ArraySlice<UInt8>) -> String? {
    var ascii = true
    for b in bytes {
        if b >= 0x80 {
            ascii = false
        } else if b < 0x20 && b != 0x09 || b == 0x7F {
            return nil
        }
    }
    if ascii { return String(decoding: bytes, as: UTF8.self) }
    return String(validating: bytes, as: UTF8.self)
}
