import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

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
    /// The last To-Path and From-Path seen: the frames of a session repeat them.
    private var toPathCache = PathCache()
    private var fromPathCache = PathCache()
    /// Bit per `MSRPHeader.Kind` seen in this frame, to refuse repeats.
    private var seenKinds: UInt32 = 0
    private var headerCount = 0
    private var headerBytes = 0
    private var frameError: MSRPParseError?
    /// `CRLF -------<tid>`: what precedes the flag of this frame's end-line.
    private var needle: [UInt8] = []
    private var bodyBytes: Int64 = 0
    private var rangeStart: Int64 = 1
    /// Body bytes that may start the end-line, kept here rather than in the
    /// caller's buffer so that the next read need not be copied behind them.
    private var carry: [UInt8] = []
    /// In discard mode: whether the input is at the start of a line (the CRLF of the
    /// needle has already been consumed, so the end-line can begin right here).
    private var discardAtLineStart = false

    public init(limits: MSRPParserLimits = MSRPParserLimits()) {
        self.limits = limits
        needle.reserveCapacity(Self.needlePrefix.count + 32)
    }

    private static let needlePrefix: [UInt8] = Array("\r\n-------".utf8)

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
                guard let length = try nextLine(buffer, budget: limits.maxHeaderBytes, startLine: true) else {
                    return nil
                }
                if length == 0 {  // tolerate stray CRLF between frames
                    buffer.moveReaderIndex(forwardBy: 2)
                    continue
                }
                do {
                    try buffer.withUnsafeReadableBytes { raw throws(MSRPParseError) in
                        try parseStartLine(UnsafeRawBufferPointer(rebasing: raw[0..<length]))
                    }
                } catch {
                    state = .failed(error)
                    throw error
                }
                buffer.moveReaderIndex(forwardBy: length + 2)
                headerBytes = length + 2
                state = .headers
            case .headers:
                let budget = limits.maxHeaderBytes - headerBytes
                let found: Int?
                do {
                    found = try nextLine(buffer, budget: budget, startLine: false)
                } catch {
                    if error.kind == .headerBlockTooLarge { return enterDiscard(error, atLineStart: false) }
                    state = .failed(error)
                    throw error
                }
                guard let length = found else { return nil }
                headerBytes += length + 2
                if length == 0 {
                    buffer.moveReaderIndex(forwardBy: 2)
                    return finishHead(hasBody: true)
                }
                // Only a line of the end-line's length that starts with a dash can be one.
                let flag = length == needle.count - 1 && buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0x2D
                    ? buffer.withUnsafeReadableBytes { endLineFlag(UnsafeRawBufferPointer(rebasing: $0[0..<length])) } : nil
                if let flag {
                    buffer.moveReaderIndex(forwardBy: length + 2)
                    if let event = finishHead(hasBody: false) {
                        if case .head = event { pendingEnd = flag }
                        return event
                    }
                    continue
                }
                headerCount += 1
                if headerCount > limits.maxHeaderCount {
                    buffer.moveReaderIndex(forwardBy: length + 2)
                    return enterDiscard(MSRPParseError(.tooManyHeaders, detail: "more than \(limits.maxHeaderCount)", transactionID: tid), atLineStart: true)
                }
                buffer.withUnsafeReadableBytes { raw in parseHeader(UnsafeRawBufferPointer(rebasing: raw[0..<length])) }
                buffer.moveReaderIndex(forwardBy: length + 2)
            case .body:
                return scanBody(&buffer)
            case .discard:
                guard discard(&buffer) else { return nil }
                reset()
            }
        }
    }

    // MARK: - Lines

    /// The length of the next CRLF-terminated line (without its CRLF), or nil if no
    /// complete line is buffered yet. Consumes nothing; remembers how far it looked.
    private mutating func nextLine(_ buffer: ByteBuffer, budget: Int, startLine: Bool) throws(MSRPParseError) -> Int? {
        let readable = buffer.readableBytes
        let from = lineScanned  // a local: no exclusivity check inside the closure
        let found: Int? = buffer.withUnsafeReadableBytes { raw in
            guard from < raw.count else { return nil }
            return ByteSearch.find(byte: 0x0A, in: UnsafeRawBufferPointer(rebasing: raw[from...])).map { $0 + from }
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
        guard lf > 0, buffer.getInteger(at: buffer.readerIndex + lf - 1, as: UInt8.self) == 0x0D else {
            throw MSRPParseError(.bareLineFeed, transactionID: startLine ? nil : tid)
        }
        return lf - 1
    }

    /// The flag if `line` is this frame's end-line (`-------<tid><flag>`).
    private func endLineFlag(_ line: UnsafeRawBufferPointer) -> ContinuationFlag? {
        // needle = CRLF + 7 dashes + tid; the line holds the needle without CRLF, then the flag.
        guard line.count == needle.count - 1, line[0] == UInt8(ascii: "-") else { return nil }
        for i in 0..<(needle.count - 3) where line[i] != needle[i + 2] { return nil }
        return ContinuationFlag(rawValue: line[line.count - 1])
    }

    // MARK: - Start line and headers

    private mutating func parseStartLine(_ line: UnsafeRawBufferPointer) throws(MSRPParseError) {
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
        let tidBytes = UnsafeRawBufferPointer(rebasing: line[tidStart..<i])
        guard isIdent(tidBytes) else {
            throw MSRPParseError(.badTransactionID, detail: String(decoding: tidBytes.prefix(40), as: UTF8.self))
        }
        tid = String(decoding: tidBytes, as: UTF8.self)
        guard i < line.count, line[i] == 0x20, i + 1 < line.count else { throw bad("no method or status") }
        i += 1
        let rest = UnsafeRawBufferPointer(rebasing: line[i...])
        if rest.count >= 3, isDigit(rest[0]), isDigit(rest[1]), isDigit(rest[2]), rest.count == 3 || rest[3] == 0x20 {
            isRequest = false
            code = Int(rest[0] - 48) * 100 + Int(rest[1] - 48) * 10 + Int(rest[2] - 48)
            if rest.count > 4 {
                guard let c = utf8Text(UnsafeRawBufferPointer(rebasing: rest[4...])) else { throw bad("comment is not UTF-8 text") }
                comment = c
            }
        } else {
            guard rest.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else {
                throw bad("method is not upper-case letters")
            }
            isRequest = true
            method = MSRPMethod(rest)
        }
        needle.removeAll(keepingCapacity: true)
        needle.append(contentsOf: Self.needlePrefix)
        needle.append(contentsOf: tidBytes)
    }

    private mutating func parseHeader(_ line: UnsafeRawBufferPointer) {
        var colon = -1
        for i in 0..<line.count where line[i] == UInt8(ascii: ":") {
            colon = i
            break
        }
        guard colon > 0, isAlpha(line[0]), line[0..<colon].allSatisfy(isTokenByte) else {
            noteError(.malformedHeader, String(decoding: line.prefix(60), as: UTF8.self))
            return
        }
        var vs = colon + 1
        while vs < line.count, line[vs] == 0x20 || line[vs] == 0x09 { vs += 1 }
        var ve = line.count
        while ve > vs, line[ve - 1] == 0x20 || line[ve - 1] == 0x09 { ve -= 1 }
        let value = UnsafeRawBufferPointer(rebasing: line[vs..<ve])
        let nameBytes = UnsafeRawBufferPointer(rebasing: line[0..<colon])
        let kind = MSRPHeader.kind(of: nameBytes)
        // Structured values are checked byte by byte by their own parsers; free text here.
        guard kind.validatesItsBytes || isUTF8Text(value) else {
            noteError(.malformedHeader, String(decoding: nameBytes, as: UTF8.self) + " value is not UTF-8 text")
            return
        }
        switch kind {
        case .toPath, .fromPath:
            let name = kind == .toPath ? "To-Path" : "From-Path"
            let position = kind == .toPath ? 1 : 2
            if headerCount != position { noteError(.misorderedPaths, name) }
            if (kind == .toPath ? toPath : fromPath) != nil {
                noteError(.duplicateHeader, name)
                return
            }
            do {
                let list: [MSRPURI]
                if kind == .toPath {
                    list = try toPathCache.lookup(value, header: name)
                    toPath = list
                } else {
                    list = try fromPathCache.lookup(value, header: name)
                    fromPath = list
                }
            } catch {
                noteError(.malformedHeader, error.description)
            }
        default:
            do {
                let header = try MSRPHeader.make(kind: kind, name: nameBytes, value: value)
                let bit: UInt32 = 1 << kind.rawValue
                if kind != .other, kind != .wwwAuthenticate, seenKinds & bit != 0 {
                    noteError(.duplicateHeader, header.name)
                }
                seenKinds |= bit
                if fields.capacity == 0 { fields.reserveCapacity(8) }
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
        if !carry.isEmpty {
            if let event = continueCarry(&buffer) { return event }
            if !carry.isEmpty { return nil }  // all of the input went into the carry
        }
        switch findEndLine(buffer) {
        case .found(let at, let flag):
            if at > 0 { return emitBody(&buffer, count: at) }
            buffer.moveReaderIndex(forwardBy: needle.count + 3)
            reset()
            return .end(flag)
        case .incomplete(let at):
            // Possibly the end-line, not all here yet: hand out what precedes it.
            if at > 0 { return emitBody(&buffer, count: at) }
            moveIntoCarry(&buffer)
            return nil
        case .absent(let heldBack):
            // No end-line in view: hand out all but a tail that could begin one.
            let readable = buffer.readableBytes
            if readable > heldBack { return emitBody(&buffer, count: readable - heldBack) }
            moveIntoCarry(&buffer)
            return nil
        }
    }

    /// Where this frame's end-line is in `buffer`'s readable bytes.
    private enum EndLineSearch {
        /// The whole end sequence (`CRLF -------tid`, flag, CRLF) starts at `at`.
        case found(at: Int, flag: ContinuationFlag)
        /// An end sequence may start at `at` and run past the input.
        case incomplete(at: Int)
        /// None; the last `heldBack` bytes could begin one.
        case absent(heldBack: Int)
    }

    /// The one end-line search, for a body and for a frame being discarded:
    /// the vectorised needle search, then the flag and CRLF after it. Lines that
    /// look like end-lines of other transactions are body.
    private func findEndLine(_ buffer: ByteBuffer) -> EndLineSearch {
        let tailLength = needle.count + 3  // needle, flag, CRLF
        let readable = buffer.readableBytes
        var searchFrom = 0
        while true {
            let hit: Int? = buffer.withUnsafeReadableBytes { raw in
                needle.withUnsafeBytes { n in
                    ByteSearch.find(n, in: UnsafeRawBufferPointer(rebasing: raw[searchFrom...])).map { $0 + searchFrom }
                }
            }
            guard let at = hit else { return .absent(heldBack: heldBackTail(buffer)) }
            if at + tailLength > readable {
                let fits = buffer.withUnsafeReadableBytes { endSequencePrefix(UnsafeRawBufferPointer(rebasing: $0[at...]), from: 0) }
                if at + fits == readable { return .incomplete(at: at) }
            } else {
                let base = buffer.readerIndex + at + needle.count
                if let f = buffer.getInteger(at: base, as: UInt8.self), let flag = ContinuationFlag(rawValue: f),
                    buffer.getInteger(at: base + 1, as: UInt8.self) == 0x0D,
                    buffer.getInteger(at: base + 2, as: UInt8.self) == 0x0A
                {
                    return .found(at: at, flag: flag)
                }
            }
            // Looks like an end-line but is not one (another flag, no CRLF): body data.
            searchFrom = at + 1
        }
    }

    /// The end sequence is `needle flag CRLF`. Returns how many leading bytes of
    /// `bytes` continue it from position `from`, stopping at the first that does not.
    private func endSequencePrefix(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int {
        var j = from
        var i = 0
        while i < bytes.count, j < needle.count + 3 {
            let b = bytes[i]
            let fits: Bool
            if j < needle.count {
                fits = b == needle[j]
            } else if j == needle.count {
                fits = ContinuationFlag(rawValue: b) != nil
            } else {
                fits = b == (j == needle.count + 1 ? 0x0D : 0x0A)
            }
            guard fits else { break }
            i += 1
            j += 1
        }
        return i
    }

    enum CarryResolution {
        /// The carry and the new input complete the end-line.
        case ended(ContinuationFlag)
        /// Still a possible end-line; all the input went into the carry.
        case waiting
        /// Not an end-line: the first `count` carried bytes are body.
        case body(count: Int)
    }

    /// With bytes held in `carry` (a proper prefix of the end sequence), looks at
    /// new input: does it complete the end-line, extend it, or rule it out?
    private mutating func resolveCarry(_ buffer: inout ByteBuffer) -> CarryResolution {
        let tailLength = needle.count + 3
        let readable = buffer.readableBytes
        let held = carry.count
        let matched = buffer.withUnsafeReadableBytes { endSequencePrefix(UnsafeRawBufferPointer($0), from: held) }
        if held + matched == tailLength {
            let flagByte = held > needle.count ? carry[needle.count]
                : buffer.getInteger(at: buffer.readerIndex + needle.count - held, as: UInt8.self) ?? 0
            buffer.moveReaderIndex(forwardBy: matched)
            carry.removeAll(keepingCapacity: true)
            return .ended(ContinuationFlag(rawValue: flagByte) ?? .complete)
        }
        if matched == readable {
            moveIntoCarry(&buffer)
            return .waiting
        }
        // Body up to the next CR among the carried bytes (the only byte that can
        // start the end sequence again).
        for i in 1..<held where carry[i] == 0x0D { return .body(count: i) }
        return .body(count: held)
    }

    /// Body state with a carry: the end-line, nothing yet, or carried bytes as body.
    private mutating func continueCarry(_ buffer: inout ByteBuffer) -> MSRPParserEvent? {
        guard buffer.readableBytes > 0 else { return nil }
        switch resolveCarry(&buffer) {
        case .ended(let flag):
            reset()
            return .end(flag)
        case .waiting:
            return nil
        case .body(let count):
            var body = ByteBuffer(bytes: carry[0..<count])
            carry.removeFirst(count)
            return emitBody(&body, count: count)
        }
    }

    /// Moves all of `buffer` (a short possible start of the end-line) into `carry`.
    private mutating func moveIntoCarry(_ buffer: inout ByteBuffer) {
        buffer.withUnsafeReadableBytes { carry.append(contentsOf: $0) }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
    }

    /// How many trailing bytes of `buffer` must wait for more input: the longest
    /// tail that is a proper prefix of the end sequence. Usually 0.
    private func heldBackTail(_ buffer: ByteBuffer) -> Int {
        buffer.withUnsafeReadableBytes { raw in
            let n = raw.count
            var k = min(n, needle.count + 2)
            while k > 0 {
                if raw[n - k] == 0x0D, endSequencePrefix(UnsafeRawBufferPointer(rebasing: raw[(n - k)...]), from: 0) == k {
                    return k
                }
                k -= 1
            }
            return 0
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
        // Bytes carried from the body may hold the start of the end-line.
        while !carry.isEmpty, buffer.readableBytes > 0 {
            switch resolveCarry(&buffer) {
            case .ended: return true
            case .waiting: return false
            case .body(let count): carry.removeFirst(count)
            }
        }
        if !carry.isEmpty { return false }
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
        switch findEndLine(buffer) {
        case .found(let at, _):
            buffer.moveReaderIndex(forwardBy: at + tailLength)
            return true
        case .incomplete(let at):
            buffer.moveReaderIndex(forwardBy: at)
            return false
        case .absent(let heldBack):
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes - heldBack)
            moveIntoCarry(&buffer)
            return false
        }
    }

    // MARK: - Reset

    private mutating func reset() {
        state = .startLine
        lineScanned = 0
        toPath = nil
        fromPath = nil
        fields = []
        seenKinds = 0
        headerCount = 0
        headerBytes = 0
        frameError = nil
        comment = nil
        bodyBytes = 0
        rangeStart = 1
        carry.removeAll(keepingCapacity: true)
    }
}

/// Whether `bytes` are `utf8text` of §9: HTAB, printable ASCII and well-formed UTF-8.
func isUTF8Text(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var ascii = true
    for b in bytes {
        if b >= 0x80 {
            ascii = false
        } else if b < 0x20 && b != 0x09 || b == 0x7F {
            return false
        }
    }
    return ascii || String(validating: bytes, as: UTF8.self) != nil
}

/// The text of `bytes` if they are `utf8text`; nil otherwise.
func utf8Text(_ bytes: UnsafeRawBufferPointer) -> String? {
    isUTF8Text(bytes) ? String(decoding: bytes, as: UTF8.self) : nil
}

/// Remembers the last path header value and its parsed URIs. Every frame of a
/// session carries the same To-Path and From-Path, so a byte comparison replaces
/// parsing and allocating them again.
struct PathCache: Sendable {
    private var raw: [UInt8] = []
    private var list: [MSRPURI] = []

    mutating func lookup(_ value: UnsafeRawBufferPointer, header: String) throws(HeaderValueError) -> [MSRPURI] {
        if !list.isEmpty, raw.count == value.count,
            raw.withUnsafeBytes({ memcmp($0.baseAddress!, value.baseAddress!, value.count) == 0 })
        {
            return list
        }
        let parsed = try parseURIList(value, header: header)
        raw = Array(value)
        list = parsed
        return parsed
    }
}
