/// Why an SDP body was refused; the API answers 400 (or 488 in SIP) with it.
public struct SDPError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var line: Int?

    public init(_ reason: String, line: Int? = nil) {
        self.reason = reason
        self.line = line
    }

    public var description: String { line.map { "SDP line \($0): \(reason)" } ?? "SDP: \(reason)" }
}

/// Reads SDP (RFC 4566) text: `x=value` lines, CRLF or LF, in the order the RFC
/// gives for `v`, `o`, `s` at the start. Bounded in size and line count.
public struct SDPParser: Sendable {
    public var maxBytes: Int
    public var maxLines: Int

    public init(maxBytes: Int = 16 * 1024, maxLines: Int = 256) {
        self.maxBytes = maxBytes
        self.maxLines = maxLines
    }

    public func parse(_ text: String) throws(SDPError) -> SessionDescription {
        guard text.utf8.count <= maxBytes else { throw SDPError("over \(maxBytes) bytes") }
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        guard lines.count <= maxLines else { throw SDPError("over \(maxLines) lines") }
        guard !lines.isEmpty else { throw SDPError("empty") }

        var sd = SessionDescription(origin: "", otherLines: [])
        var sawOrigin = false, sawName = false
        var current: MediaDescription?
        for (n, line) in lines.enumerated() {
            let number = n + 1
            let chars = Array(line.utf8)
            guard chars.count >= 2, chars[1] == UInt8(ascii: "="), (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(chars[0]) else {
                throw SDPError("not a type=value line: \(String(line.prefix(60)).debugDescription)", line: number)
            }
            guard !line.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" }) else {
                throw SDPError("control character", line: number)
            }
            let type = Character(Unicode.Scalar(chars[0]))
            let value = String(line.dropFirst(2))
            if number == 1 {
                guard type == "v", value == "0" else { throw SDPError("must start with v=0", line: number) }
                continue
            }
            switch type {
            case "v":
                throw SDPError("second v= line", line: number)
            case "o":
                guard current == nil, !sawOrigin, value.split(separator: " ").count == 6 else { throw SDPError("bad o= line", line: number) }
                sd.origin = value
                sawOrigin = true
            case "s":
                guard current == nil, !sawName else { throw SDPError("misplaced s= line", line: number) }
                sd.sessionName = value
                sawName = true
            case "c":
                if current != nil { current?.connection = value } else { sd.connection = value }
            case "a":
                let attribute: SDPAttribute
                if let colon = value.firstIndex(of: ":") {
                    attribute = SDPAttribute(String(value[..<colon]), String(value[value.index(after: colon)...]))
                } else {
                    attribute = SDPAttribute(value)
                }
                guard !attribute.name.isEmpty else { throw SDPError("attribute without a name", line: number) }
                if current != nil { current?.attributes.append(attribute) } else { sd.attributes.append(attribute) }
            case "m":
                if let m = current { sd.media.append(m) }
                let parts = value.split(separator: " ", omittingEmptySubsequences: true)
                // The port may carry a count (`49170/2`); a bare "/" has no port at all.
                let portText = parts.count >= 3 ? parts[1].split(separator: "/", omittingEmptySubsequences: false).first : nil
                guard let portText, let port = Int(portText), (0...65535).contains(port) else {
                    throw SDPError("bad m= line", line: number)
                }
                current = MediaDescription(media: String(parts[0]), port: port, proto: String(parts[2]), formats: parts.dropFirst(3).map(String.init))
            default:
                if current != nil { current?.otherLines.append(line) } else { sd.otherLines.append(line) }
            }
        }
        if let m = current { sd.media.append(m) }
        guard sawOrigin, sawName else { throw SDPError("missing o= or s= line") }
        return sd
    }
}
