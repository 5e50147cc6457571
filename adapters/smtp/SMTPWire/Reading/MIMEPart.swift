/// A mail or one of its parts, read into a tree (RFC 2045, 2046): headers,
/// content type, the body still transfer-encoded, and the parts of a
/// multipart. Bounded in depth and part count; what is past the bounds stays
/// an undivided body (nothing is lost, nothing grows without end).
public struct MIMEPart: Sendable {
    public var headers: MailHeaders
    public var contentType: HeaderParameters
    /// The body as it came (transfer encoding not undone).
    public var rawBody: ArraySlice<UInt8>
    public var parts: [MIMEPart]

    public static let maxDepth = 8
    public static let maxParts = 200

    /// `type/subtype`, lower case; `text/plain` when absent (RFC 2045 §5.2),
    /// `message/rfc822` inside a `multipart/digest`.
    public var mediaType: String { contentType.value.isEmpty ? "text/plain" : contentType.value }
    public var isMultipart: Bool { mediaType.hasPrefix("multipart/") }

    /// The body with its transfer encoding undone.
    public var decodedBody: [UInt8] { TransferDecoding.decode(rawBody, encoding: headers["Content-Transfer-Encoding"]) }

    /// The text of a `text/*` part in its charset.
    public var text: String { Charset.decode(decodedBody, charset: contentType["charset"]) }

    public var disposition: HeaderParameters { HeaderParameters(headers["Content-Disposition"]) }

    /// The file name it gives (Content-Disposition, or Content-Type's `name`),
    /// RFC 2231 or RFC 2047 encoded as mailers do.
    public var filename: String? {
        (disposition["filename"] ?? contentType["name"]).map(EncodedWords.decode)
    }


    public static func parse(_ bytes: [UInt8]) -> MIMEPart {
        var budget = maxParts
        return parse(bytes[...], depth: 0, budget: &budget)
    }

    static func parse(_ bytes: ArraySlice<UInt8>, depth: Int, budget: inout Int, defaultType: String = "") -> MIMEPart {
        let (headers, bodyStart) = MailHeaders.parse(bytes)
        var contentType = HeaderParameters(headers["Content-Type"])
        if contentType.value.isEmpty || !contentType.value.contains("/") {
            contentType = HeaderParameters(defaultType.isEmpty ? nil : defaultType)
        }
        var part = MIMEPart(headers: headers, contentType: contentType, rawBody: bytes[bodyStart...], parts: [])
        guard part.isMultipart, depth < maxDepth, let boundary = contentType["boundary"], !boundary.isEmpty, boundary.utf8.count <= 200 else {
            return part
        }
        let childDefault = part.mediaType == "multipart/digest" ? "message/rfc822" : ""
        for body in bodies(of: part.rawBody, boundary: Array(boundary.utf8)) {
            guard budget > 0 else { break }
            budget -= 1
            part.parts.append(parse(body, depth: depth + 1, budget: &budget, defaultType: childDefault))
        }
        return part
    }

    /// The bodies between `--boundary` lines, up to `--boundary--` (RFC 2046
    /// §5.1.1): the line break before a delimiter belongs to it.
    static func bodies(of body: ArraySlice<UInt8>, boundary: [UInt8]) -> [ArraySlice<UInt8>] {
        let delimiter = [UInt8(ascii: "-"), UInt8(ascii: "-")] + boundary
        var out: [ArraySlice<UInt8>] = []
        var partStart: Int?
        var i = body.startIndex
        while i < body.endIndex {
            let lineEnd = body[i...].firstIndex(of: 0x0A) ?? body.endIndex
            let line = body[i..<lineEnd]
            if line.starts(with: delimiter) {
                let after = line.dropFirst(delimiter.count)
                let closing = after.starts(with: [UInt8(ascii: "-"), UInt8(ascii: "-")])
                if after.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) || closing {
                    if let start = partStart {
                        // The CRLF (or LF) before the delimiter is the delimiter's.
                        var end = i
                        if end > start, body[end - 1] == 0x0A { end -= 1 }
                        if end > start, body[end - 1] == 0x0D { end -= 1 }
                        out.append(body[start..<end])
                    }
                    if closing { return out }
                    partStart = lineEnd < body.endIndex ? lineEnd + 1 : lineEnd
                }
            }
            i = lineEnd < body.endIndex ? lineEnd + 1 : body.endIndex
        }
        // No closing delimiter: the last part runs to the end.
        if let start = partStart, start < body.endIndex { out.append(body[start...]) }
        return out
    }

    /// Every leaf part, depth first.
    public var leaves: [MIMEPart] { isMultipart && !parts.isEmpty ? parts.flatMap(\.leaves) : [self] }
}
