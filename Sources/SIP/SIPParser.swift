import NIOCore

/// Why bytes are not a SIP message. `answerable` says whether enough of a
/// request was read to answer it with 400 (it needs its Via, From, To, Call-ID
/// and CSeq); otherwise it is dropped and logged.
public struct SIPParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case tooLarge = "message over the size limit"
        case tooManyHeaders = "too many headers"
        case badStartLine = "malformed start line"
        case badHeader = "malformed header"
        case badContentLength = "bad Content-Length"
        case missingHeader = "missing mandatory header"
        case badVersion = "unsupported SIP version"
    }

    public var kind: Kind
    public var detail: String
    /// The headers read before the error, for a 400 when they suffice.
    public var partial: SIPRequest?

    public init(_ kind: Kind, _ detail: String = "", partial: SIPRequest? = nil) {
        self.kind = kind
        self.detail = detail
        self.partial = partial
    }

    public var description: String { detail.isEmpty ? kind.rawValue : "\(kind.rawValue): \(detail)" }

    public static func == (a: SIPParseError, b: SIPParseError) -> Bool { a.kind == b.kind && a.detail == b.detail }
    public func hash(into h: inout Hasher) { h.combine(kind) }
}

/// RFC 3261 §7 messages from datagrams (UDP) or a byte stream (TCP, TLS),
/// bounded in header bytes, header count and body size. Compact header forms
/// are expanded, folded lines joined; a bare LF is tolerated for CRLF.
public struct SIPParser: Sendable {
    public var maxHeaderBytes: Int
    public var maxHeaders: Int
    public var maxBodyBytes: Int

    public init(maxHeaderBytes: Int = 16 * 1024, maxHeaders: Int = 128, maxBodyBytes: Int = 64 * 1024) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaders = maxHeaders
        self.maxBodyBytes = maxBodyBytes
    }

    static let compactForms: [String: String] = [
        "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length", "c": "Content-Type", "f": "From",
        "s": "Subject", "k": "Supported", "t": "To", "v": "Via", "o": "Event", "u": "Allow-Events", "r": "Refer-To",
    ]

    static let canonical: [String: String] = {
        var m: [String: String] = [:]
        for n in ["Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards", "Content-Length", "Content-Type", "Route",
                  "Record-Route", "Allow", "Accept", "Supported", "Require", "Expires", "WWW-Authenticate", "Authorization",
                  "Proxy-Authenticate", "Proxy-Authorization", "User-Agent", "Server", "Subject", "Content-Encoding", "Event",
                  "Unsupported", "Min-Expires", "Retry-After", "Timestamp", "Date", "Content-Disposition", "Allow-Events",
                  "Refer-To", "Session-Expires", "Min-SE", "Proxy-Require", "Accept-Encoding", "Accept-Language", "Organization",
                  "Priority", "Reply-To", "Warning", "Authentication-Info", "Error-Info", "Alert-Info", "Call-Info", "In-Reply-To",
                  "MIME-Version", "Content-Language"] {
            m[n.lowercased()] = n
        }
        return m
    }()

    /// One UDP datagram: a whole message. Content-Length, when given, must not
    /// claim more than the datagram holds; bytes after it are ignored.
    public func parse(datagram bytes: [UInt8]) throws(SIPParseError) -> SIPMessage {
        var start = 0
        while start + 1 < bytes.count, bytes[start] == 0x0D || bytes[start] == 0x0A { start += 1 }
        guard let (headEnd, bodyStart) = Self.headerEnd(bytes, from: start, limit: maxHeaderBytes) else {
            throw SIPParseError(bytes.count - start > maxHeaderBytes ? .tooLarge : .badHeader, "no blank line after the headers")
        }
        var message = try head(Array(bytes[start..<headEnd]))
        let available = bytes.count - bodyStart
        let length = message.headers.contentLength ?? available
        guard message.headers["Content-Length"] == nil || message.headers.contentLength != nil, length >= 0, length <= available else {
            throw SIPParseError(.badContentLength, "Content-Length \(message.headers["Content-Length"] ?? "?") with \(available) bytes of body", partial: message.request)
        }
        guard length <= maxBodyBytes else { throw SIPParseError(.tooLarge, "body of \(length) bytes", partial: message.request) }
        message.body = Array(bytes[bodyStart..<(bodyStart + length)])
        return try message.checked()
    }

    /// The next message from a stream, or nil when more bytes are needed.
    /// Blank lines between messages (keep-alives) are skipped. Content-Length
    /// is required on streams (RFC 3261 §18.3).
    public func next(_ buffer: inout ByteBuffer) throws(SIPParseError) -> SIPMessage? {
        while let b = buffer.readableBytesView.first, b == 0x0D || b == 0x0A { buffer.moveReaderIndex(forwardBy: 1) }
        let view = Array(buffer.readableBytesView.prefix(maxHeaderBytes + 4))
        guard let (headEnd, bodyStart) = Self.headerEnd(view, from: 0, limit: maxHeaderBytes) else {
            if buffer.readableBytes > maxHeaderBytes { throw SIPParseError(.tooLarge, "headers over \(maxHeaderBytes) bytes") }
            return nil
        }
        var message = try head(Array(view[..<headEnd]))
        guard let length = message.headers.contentLength, length >= 0 else {
            throw SIPParseError(.badContentLength, "a stream message needs a valid Content-Length", partial: message.request)
        }
        guard length <= maxBodyBytes else { throw SIPParseError(.tooLarge, "body of \(length) bytes", partial: message.request) }
        guard buffer.readableBytes >= bodyStart + length else { return nil }
        buffer.moveReaderIndex(forwardBy: bodyStart)
        message.body = buffer.readBytes(length: length) ?? []
        return try message.checked()
    }

    /// The index where the headers end (before the blank line) and the body starts.
    static func headerEnd(_ b: [UInt8], from: Int, limit: Int) -> (Int, Int)? {
        var i = from
        let end = min(b.count, from + limit + 4)
        while i < end {
            if b[i] == 0x0A {
                if i + 1 < b.count, b[i + 1] == 0x0A { return (i, i + 2) }
                if i + 2 < b.count, b[i + 1] == 0x0D, b[i + 2] == 0x0A { return (i, i + 3) }
            }
            i += 1
        }
        return nil
    }

    private struct Parsed {
        var startLine: StartLine
        var headers: SIPHeaders
        var body: [UInt8] = []

        enum StartLine {
            case request(method: String, uri: String)
            case response(code: Int, reason: String)
        }

        var request: SIPRequest? {
            if case .request(let m, let u) = startLine { return SIPRequest(method: m, uri: u, headers: headers) }
            return nil
        }

        func checked() throws(SIPParseError) -> SIPMessage {
            for name in ["Via", "From", "To", "Call-ID", "CSeq"] where headers[name] == nil {
                throw SIPParseError(.missingHeader, name, partial: headers["Via"] == nil ? nil : request)
            }
            guard let cseq = headers.cseq else { throw SIPParseError(.badHeader, "CSeq \(headers["CSeq"] ?? "")", partial: request) }
            guard !headers.vias.isEmpty, headers.from != nil, headers.to != nil else {
                throw SIPParseError(.badHeader, "Via, From or To", partial: headers.vias.isEmpty ? nil : request)
            }
            switch startLine {
            case .request(let method, let uri):
                guard cseq.method == method || method == "ACK" || method == "CANCEL" else {
                    throw SIPParseError(.badHeader, "CSeq method \(cseq.method) is not \(method)", partial: request)
                }
                return .request(SIPRequest(method: method, uri: uri, headers: headers, body: body))
            case .response(let code, let reason):
                return .response(SIPResponse(code: code, reason: reason, headers: headers, body: body))
            }
        }
    }

    private func head(_ bytes: [UInt8]) throws(SIPParseError) -> Parsed {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw SIPParseError(.badHeader, "not UTF-8") }
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { $0.hasSuffix("\r") ? $0.dropLast() : Substring($0) }
        guard !lines.isEmpty else { throw SIPParseError(.badStartLine) }
        let start = lines.removeFirst()
        let startLine = try parseStartLine(start)
        var headers = SIPHeaders()
        for line in lines {
            guard !line.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" }) else {
                throw SIPParseError(.badHeader, "control character in a header line")
            }
            if let f = line.first, f == " " || f == "\t" {
                // A folded line continues the previous header (§7.3.1).
                guard !headers.fields.isEmpty else { throw SIPParseError(.badHeader, "continuation line first") }
                headers.fields[headers.fields.count - 1].value += " " + line.trimmingCharacters(in: " \t")
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { throw SIPParseError(.badHeader, String(line.prefix(60))) }
            let rawName = line[..<colon].trimmingCharacters(in: " \t")
            guard isToken(rawName) else { throw SIPParseError(.badHeader, "name \(rawName.prefix(40).debugDescription)") }
            let lower = rawName.lowercased()
            let name = Self.compactForms[lower] ?? Self.canonical[lower] ?? rawName
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            headers.add(name, value)
            guard headers.fields.count <= maxHeaders else { throw SIPParseError(.tooManyHeaders, "over \(maxHeaders)") }
        }
        return Parsed(startLine: startLine, headers: headers)
    }

    private func parseStartLine(_ line: Substring) throws(SIPParseError) -> Parsed.StartLine {
        let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2 else { throw SIPParseError(.badStartLine, String(line.prefix(60))) }
        if parts[0].hasPrefix("SIP/") {
            guard parts[0] == "SIP/2.0" else { throw SIPParseError(.badVersion, String(parts[0])) }
            guard parts[1].count == 3, let code = Int(parts[1]), (100...699).contains(code) else {
                throw SIPParseError(.badStartLine, String(line.prefix(60)))
            }
            return .response(code: code, reason: parts.count > 2 ? String(parts[2]) : "")
        }
        guard parts.count == 3, isToken(parts[0]), !parts[1].isEmpty, parts[1].contains(":") else {
            throw SIPParseError(.badStartLine, String(line.prefix(60)))
        }
        guard parts[2] == "SIP/2.0" else { throw SIPParseError(.badVersion, String(parts[2].prefix(20))) }
        return .request(method: String(parts[0]), uri: String(parts[1]))
    }
}

extension SIPMessage {
    /// The message on the wire, CRLF line ends, Content-Length set to the body.
    public var serialized: [UInt8] {
        var s: String
        var headers: SIPHeaders
        var body: [UInt8]
        switch self {
        case .request(let r):
            s = "\(r.method) \(r.uri) SIP/2.0\r\n"
            headers = r.headers
            body = r.body
        case .response(let r):
            s = "SIP/2.0 \(r.code) \(r.reason)\r\n"
            headers = r.headers
            body = r.body
        }
        headers.set("Content-Length", String(body.count))
        for h in headers.fields { s += "\(h.name): \(h.value)\r\n" }
        s += "\r\n"
        return Array(s.utf8) + body
    }
}
