/// Reads message/cpim bodies. Bounded: the two header blocks together may not
/// exceed `maxHeaderBytes` nor `maxHeaders` lines, whatever the input.
public struct CPIMParser: Sendable {
    public var maxHeaderBytes: Int
    public var maxHeaders: Int

    public init(maxHeaderBytes: Int = 16 * 1024, maxHeaders: Int = 64) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaders = maxHeaders
    }

    /// The headers of a CPIM message and where its content starts.
    public struct Head: Sendable, Hashable {
        public var headers: [CPIMHeader]
        public var contentHeaders: [CPIMHeader]
        /// Offset of the first content byte in the parsed bytes.
        public var contentOffset: Int
    }

    /// Parses a whole message held in memory.
    public func parse(_ bytes: [UInt8]) throws(CPIMError) -> CPIMMessage {
        let head = try parseHead(bytes)
        return CPIMMessage(headers: head.headers, contentHeaders: head.contentHeaders, content: Array(bytes[head.contentOffset...]))
    }

    /// Parses the two header blocks from the start of a message; `bytes` needs to
    /// hold only those (a large message read from disk gives its first
    /// `maxHeaderBytes`). Lines end in CRLF; a bare LF is tolerated.
    public func parseHead(_ bytes: [UInt8]) throws(CPIMError) -> Head {
        var i = 0
        var count = 0
        let messageHeaders = try block(bytes, &i, &count, messageHeader: true)
        let contentHeaders = try block(bytes, &i, &count, messageHeader: false)
        guard contentHeaders.contains(where: { $0.name.lowercased() == "content-type" }) else {
            throw CPIMError(.missingContentHeaders, "the encapsulated entity has no Content-Type")
        }
        return Head(headers: messageHeaders, contentHeaders: contentHeaders, contentOffset: i)
    }

    /// Reads header lines up to and including the blank line that ends the block.
    private func block(_ b: [UInt8], _ i: inout Int, _ count: inout Int, messageHeader: Bool) throws(CPIMError) -> [CPIMHeader] {
        var out: [CPIMHeader] = []
        while true {
            guard i < b.count else {
                if i >= maxHeaderBytes { throw CPIMError(.headerBlockTooLarge, "over \(maxHeaderBytes) bytes") }
                throw CPIMError(messageHeader || !out.isEmpty ? .missingBlankLine : .missingContentHeaders)
            }
            let limit = min(b.count, maxHeaderBytes)
            var end = i
            while end < limit, b[end] != 0x0A { end += 1 }
            guard end < limit else {
                if limit == maxHeaderBytes { throw CPIMError(.headerBlockTooLarge, "over \(maxHeaderBytes) bytes") }
                throw CPIMError(.missingBlankLine)
            }
            var lineEnd = end
            if lineEnd > i, b[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            let line = b[i..<lineEnd]
            i = end + 1
            if line.isEmpty { return out }
            count += 1
            guard count <= maxHeaders else { throw CPIMError(.tooManyHeaders, "over \(maxHeaders)") }
            out.append(try header(line, messageHeader: messageHeader))
        }
    }

    private func header(_ line: ArraySlice<UInt8>, messageHeader: Bool) throws(CPIMError) -> CPIMHeader {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
            throw CPIMError(.malformedHeader, printable(line))
        }
        let nameBytes = line[line.startIndex..<colon]
        guard nameBytes.allSatisfy(isHeaderNameByte) else { throw CPIMError(.malformedHeader, printable(line)) }
        var j = colon + 1
        var parameters: [String: String] = [:]
        // Header parameters (`Subject:;lang=fr value`) come right after the colon.
        while messageHeader, j < line.endIndex, line[j] == UInt8(ascii: ";") {
            var k = j + 1
            while k < line.endIndex, line[k] != UInt8(ascii: ";"), line[k] != 0x20 { k += 1 }
            let param = String(decoding: line[(j + 1)..<k], as: UTF8.self)
            let parts = param.split(separator: "=", maxSplits: 1)
            guard let key = parts.first, !key.isEmpty else { throw CPIMError(.malformedHeader, printable(line)) }
            parameters[String(key).lowercased()] = parts.count > 1 ? String(parts[1]) : ""
            j = k
        }
        while j < line.endIndex, line[j] == 0x20 || line[j] == 0x09 { j += 1 }
        var valueEnd = line.endIndex
        while valueEnd > j, line[valueEnd - 1] == 0x20 || line[valueEnd - 1] == 0x09 { valueEnd -= 1 }
        let raw = line[j..<valueEnd]
        guard let rawText = String(validating: raw, as: UTF8.self) else {
            throw CPIMError(.badEncoding, "in header \(String(decoding: nameBytes, as: UTF8.self))")
        }
        guard !rawText.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" }) else {
            throw CPIMError(.malformedHeader, "control character in \(String(decoding: nameBytes, as: UTF8.self))")
        }
        return CPIMHeader(
            name: String(decoding: nameBytes, as: UTF8.self), value: messageHeader ? unescapeHeaderValue(rawText) : rawText,
            parameters: parameters)
    }
}

/// Header names: tokens, with `.` separating a namespace prefix.
func isHeaderNameByte(_ c: UInt8) -> Bool {
    switch c {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    default:
        return "-._!%*+`'~".utf8.contains(c)
    }
}

/// RFC 3862 §2.3: a backslash escapes itself, a double quote, and stands for
/// CR (`\r`), LF (`\n`) and TAB (`\t`) so header values stay on one line.
/// An unknown escape is kept as written.
func unescapeHeaderValue(_ s: String) -> String {
    guard s.utf8.contains(UInt8(ascii: "\\")) else { return s }
    var out = ""
    var it = s.makeIterator()
    while let c = it.next() {
        guard c == "\\" else {
            out.append(c)
            continue
        }
        switch it.next() {
        case "\\": out.append("\\")
        case "\"": out.append("\"")
        case "r": out.append("\r")
        case "n": out.append("\n")
        case "t": out.append("\t")
        case let other?:
            out.append("\\")
            out.append(other)
        case nil: out.append("\\")
        }
    }
    return out
}

func escapeHeaderValue(_ s: String) -> String {
    var out = ""
    for c in s.unicodeScalars {
        switch c {
        case "\\": out += "\\\\"
        case "\r": out += "\\r"
        case "\n": out += "\\n"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

func printable(_ b: ArraySlice<UInt8>) -> String {
    String(String(decoding: b.prefix(80), as: UTF8.self).map { $0.isASCII && !$0.isNewline && ($0.asciiValue ?? 0) >= 0x20 ? $0 : "?" })
}
