/// A MIME media type with parameters (`type "/" subtype *( ";" gen-param )`, RFC 4975 §9).
///
/// Type, subtype and parameter names compare case-insensitively; parameter
/// values as written. `*` wildcards (`*`, `text/*`) match as SDP accept-types use them.
public struct MediaType: Sendable, Hashable, CustomStringConvertible {
    public struct Parameter: Sendable, Hashable {
        public var name: String
        public var value: String?
        public init(name: String, value: String? = nil) {
            self.name = name
            self.value = value
        }
    }

    public var type: String
    public var subtype: String
    public var parameters: [Parameter]

    public init(type: String, subtype: String, parameters: [Parameter] = []) {
        self.type = type
        self.subtype = subtype
        self.parameters = parameters
    }

    public static let textPlain = MediaType(type: "text", subtype: "plain")
    public static let messageCPIM = MediaType(type: "message", subtype: "cpim")
    public static let imdnXML = MediaType(type: "message", subtype: "imdn+xml")

    /// `type/subtype` in lower case, without parameters: the key used for matching.
    public var essence: String { (type + "/" + subtype).lowercased() }

    public func parameter(_ name: String) -> String? {
        parameters.first { asciiCaseInsensitiveEquals($0.name, name) }?.value
    }

    /// Whether `self`, a pattern such as `*`, `text/*` or `text/plain`, accepts `other`.
    public func accepts(_ other: MediaType) -> Bool {
        if type == "*" { return true }
        guard asciiCaseInsensitiveEquals(type, other.type) else { return false }
        return subtype == "*" || asciiCaseInsensitiveEquals(subtype, other.subtype)
    }

    public var description: String {
        var s = type + "/" + subtype
        for p in parameters {
            s += ";" + p.name
            if let v = p.value {
                s += "=" + (v.utf8.allSatisfy(isTokenByte) && !v.isEmpty ? v : quoted(v))
            }
        }
        return s
    }

    public static func == (a: MediaType, b: MediaType) -> Bool {
        asciiCaseInsensitiveEquals(a.type, b.type) && asciiCaseInsensitiveEquals(a.subtype, b.subtype)
            && a.parameters.count == b.parameters.count
            && zip(a.parameters, b.parameters).allSatisfy {
                asciiCaseInsensitiveEquals($0.name, $1.name) && $0.value == $1.value
            }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(essence)
        hasher.combine(parameters.count)
    }
}

/// Why a header value could not be parsed.
public struct HeaderValueError: Error, Sendable, Hashable, CustomStringConvertible {
    public var header: String
    public var value: String
    public var description: String { "malformed \(header) header: \(value.prefix(80))" }
}

extension MediaType {
    /// Parses `type/subtype;name=value;name="quoted value"`.
    public init(_ text: String) throws(HeaderValueError) {
        guard let parsed = MediaType.parse(Array(text.utf8)) else {
            throw HeaderValueError(header: "Content-Type", value: text)
        }
        self = parsed
    }

    static func parse<Bytes: RandomAccessCollection<UInt8>>(_ b: Bytes) -> MediaType? where Bytes.Index == Int {
        var i = b.startIndex
        let n = b.endIndex
        func skipWS() { while i < n, b[i] == 0x20 || b[i] == 0x09 { i += 1 } }
        func token() -> String? {
            let s = i
            while i < n, isTokenByte(b[i]), b[i] != UInt8(ascii: "/") { i += 1 }
            return i > s ? String(decoding: b[s..<i], as: UTF8.self) : nil
        }
        skipWS()
        guard let type = token(), i < n, b[i] == UInt8(ascii: "/") else { return nil }
        i += 1
        guard let subtype = token() else { return nil }
        var params: [Parameter] = []
        skipWS()
        while i < n {
            guard b[i] == UInt8(ascii: ";") else { return nil }
            i += 1
            skipWS()
            guard let name = token() else { return nil }
            skipWS()
            var value: String? = nil
            if i < n, b[i] == UInt8(ascii: "=") {
                i += 1
                skipWS()
                if i < n, b[i] == UInt8(ascii: "\"") {
                    guard let (v, next) = unquote(b, from: i) else { return nil }
                    value = v
                    i = next
                } else {
                    let s = i
                    while i < n, isTokenByte(b[i]) { i += 1 }
                    guard i > s else { return nil }
                    value = String(decoding: b[s..<i], as: UTF8.self)
                }
            }
            params.append(Parameter(name: name, value: value))
            skipWS()
        }
        return MediaType(type: type, subtype: subtype, parameters: params)
    }
}

/// Reads a quoted-string starting at `from` (the opening quote); returns its
/// unescaped content and the index after the closing quote.
func unquote<Bytes: RandomAccessCollection<UInt8>>(_ b: Bytes, from: Int) -> (String, Int)? where Bytes.Index == Int {
    var i = from + 1
    var out: [UInt8] = []
    while i < b.endIndex {
        let c = b[i]
        if c == UInt8(ascii: "\\") {
            guard i + 1 < b.endIndex else { return nil }
            out.append(b[i + 1])
            i += 2
        } else if c == UInt8(ascii: "\"") {
            return (String(decoding: out, as: UTF8.self), i + 1)
        } else if c == 0x0D || c == 0x0A {
            return nil
        } else {
            out.append(c)
            i += 1
        }
    }
    return nil
}

func quoted(_ s: String) -> String {
    var out = "\""
    for c in s {
        if c == "\"" || c == "\\" { out.append("\\") }
        out.append(c)
    }
    return out + "\""
}
