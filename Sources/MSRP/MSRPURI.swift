/// An MSRP URI (RFC 4975 §6): `msrp[s]://[userinfo@]host[:port][/session-id];transport[;param[=value]]*`.
///
/// Equality and hashing follow the comparison rules of §6.1: the scheme, the
/// host (case-insensitively, IP addresses by value), the port (an explicit port
/// never equals an absent one), the session id (case-sensitively) and the
/// transport (case-insensitively) take part; userinfo and extra parameters do not.
public struct MSRPURI: Sendable, CustomStringConvertible {
    public enum Scheme: String, Sendable, Hashable {
        case msrp
        case msrps
    }

    public enum Host: Sendable, Hashable, CustomStringConvertible {
        /// A registered name, kept as written (compared case-insensitively).
        case name(String)
        /// A dotted-quad IPv4 address.
        case ipv4(String)
        /// An IPv6 address as written between the brackets (compared by value).
        case ipv6(String)

        public var description: String {
            switch self {
            case .name(let s), .ipv4(let s): return s
            case .ipv6(let s): return "[\(s)]"
            }
        }

        /// The host as a socket layer wants it: no brackets around IPv6.
        public var address: String {
            switch self {
            case .name(let s), .ipv4(let s), .ipv6(let s): return s
            }
        }

        /// `.invalid` hosts are what WebSocket clients put in their URIs (RFC 7977).
        public var isInvalidDomain: Bool {
            if case .name(let s) = self { return s.lowercased().hasSuffix(".invalid") }
            return false
        }
    }

    public struct Parameter: Sendable, Hashable {
        public var name: String
        public var value: String?
        public init(name: String, value: String? = nil) {
            self.name = name
            self.value = value
        }

        /// `token ["=" token]`
        static func parse(_ b: UnsafeRawBufferPointer) -> Parameter? {
            guard !b.isEmpty else { return nil }
            let eq = b.firstIndex(of: UInt8(ascii: "=")) ?? b.count
            let name = UnsafeRawBufferPointer(rebasing: b[0..<eq])
            guard !name.isEmpty, name.allSatisfy(isTokenByte) else { return nil }
            guard eq < b.count else { return Parameter(name: String(decoding: name, as: UTF8.self)) }
            let value = UnsafeRawBufferPointer(rebasing: b[(eq + 1)...])
            guard !value.isEmpty, value.allSatisfy(isTokenByte) else { return nil }
            return Parameter(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
        }
    }

    public var scheme: Scheme
    public var userinfo: String?
    public var host: Host
    public var port: Int?
    public var sessionID: String?
    /// `tcp`, `ws` or any other token (kept as written, compared case-insensitively).
    public var transport: String
    public var parameters: [Parameter]

    public init(
        scheme: Scheme = .msrp, userinfo: String? = nil, host: Host, port: Int?,
        sessionID: String?, transport: String = "tcp", parameters: [Parameter] = []
    ) {
        self.scheme = scheme
        self.userinfo = userinfo
        self.host = host
        self.port = port
        self.sessionID = sessionID
        self.transport = transport
        self.parameters = parameters
    }

    /// The effective port to connect to: the URI's, or 2855 (§15.4) when it has none.
    public var effectivePort: Int { port ?? 2855 }

    public var isSecure: Bool { scheme == .msrps }

    public var description: String {
        var s = scheme.rawValue + "://"
        if let userinfo { s += userinfo + "@" }
        s += host.description
        if let port { s += ":" + String(port) }
        if let sessionID { s += "/" + sessionID }
        s += ";" + transport
        for p in parameters {
            s += ";" + p.name
            if let v = p.value { s += "=" + v }
        }
        return s
    }

    /// The same URI without the session part: identifies the device, not a session.
    public var authorityOnly: MSRPURI {
        var copy = self
        copy.sessionID = nil
        return copy
    }
}

extension MSRPURI: Hashable {
    public static func == (a: MSRPURI, b: MSRPURI) -> Bool {
        a.scheme == b.scheme
            && a.port == b.port
            && a.sessionID == b.sessionID
            && asciiCaseInsensitiveEquals(a.transport, b.transport)
            && a.hostKey == b.hostKey
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(scheme)
        hasher.combine(port)
        hasher.combine(sessionID)
        hasher.combine(transport.lowercased())
        hasher.combine(hostKey)
    }

    /// The host in the form §6.1 compares: lower-cased and percent-decoded names,
    /// IPv6 addresses as their 16 bytes.
    private var hostKey: String {
        switch host {
        case .name(let s): return percentDecodedUnreserved(s).lowercased()
        case .ipv4(let s): return s
        case .ipv6(let s):
            if let bytes = IPv6Address.parse(s) {
                return bytes.map { String($0, radix: 16) }.joined(separator: ":")
            }
            return s.lowercased()
        }
    }
}

/// Errors from parsing an MSRP URI; `text` is the offending input.
public struct MSRPURIError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        case scheme = "scheme is not msrp or msrps"
        case authority = "malformed authority"
        case host = "malformed host"
        case port = "malformed port"
        case sessionID = "malformed session id"
        case transport = "missing or malformed transport"
        case parameter = "malformed parameter"
    }
    public var reason: Reason
    public var text: String
    public var description: String { "invalid MSRP URI (\(reason.rawValue)): \(text)" }
}

extension MSRPURI {
    /// Parses a URI from its text form.
    public init(_ text: String) throws(MSRPURIError) {
        var utf8 = Array(text.utf8)
        self = try utf8.withUnsafeMutableBufferPointer { buf throws(MSRPURIError) in
            try MSRPURI.parse(UnsafeRawBufferPointer(buf))
        }
    }

    /// Parses a URI from ASCII bytes (as the header parser sees them).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(MSRPURIError) -> MSRPURI {
        func fail(_ r: MSRPURIError.Reason) -> MSRPURIError {
            MSRPURIError(reason: r, text: String(decoding: bytes, as: UTF8.self))
        }
        let n = bytes.count
        // Scheme: "msrp://" or "msrps://", case-insensitively.
        var i = 0
        let scheme: Scheme
        if n >= 7, lower(bytes[0]) == UInt8(ascii: "m"), lower(bytes[1]) == UInt8(ascii: "s"),
            lower(bytes[2]) == UInt8(ascii: "r"), lower(bytes[3]) == UInt8(ascii: "p")
        {
            if bytes[4] == UInt8(ascii: ":") {
                scheme = .msrp
                i = 5
            } else if lower(bytes[4]) == UInt8(ascii: "s"), n >= 8, bytes[5] == UInt8(ascii: ":") {
                scheme = .msrps
                i = 6
            } else {
                throw fail(.scheme)
            }
        } else {
            throw fail(.scheme)
        }
        guard i + 2 <= n, bytes[i] == UInt8(ascii: "/"), bytes[i + 1] == UInt8(ascii: "/") else {
            throw fail(.scheme)
        }
        i += 2

        // Authority runs to the first "/" (session id) or ";" (transport). Userinfo may
        // contain ";" (a sub-delim), so look for "@" before deciding where the host starts.
        var firstSlash = n
        for j in i..<n where bytes[j] == UInt8(ascii: "/") {
            firstSlash = j
            break
        }
        var userinfo: String? = nil
        var hostStart = i
        var at = -1
        for j in i..<firstSlash where bytes[j] == UInt8(ascii: "@") { at = j }
        if at >= 0 {
            guard at > i else { throw fail(.authority) }
            for j in i..<at where !isUserinfoByte(bytes[j]) { throw fail(.authority) }
            userinfo = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[i..<at]), as: UTF8.self)
            hostStart = at + 1
        }
        var authorityEnd = hostStart
        while authorityEnd < n, bytes[authorityEnd] != UInt8(ascii: "/"), bytes[authorityEnd] != UInt8(ascii: ";") {
            authorityEnd += 1
        }
        guard authorityEnd > hostStart else { throw fail(.host) }

        // Host and port.
        let host: Host
        var port: Int? = nil
        var portStart = -1
        if bytes[hostStart] == UInt8(ascii: "[") {
            var close = -1
            for j in hostStart..<authorityEnd where bytes[j] == UInt8(ascii: "]") {
                close = j
                break
            }
            guard close > hostStart + 1 else { throw fail(.host) }
            let literal = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(hostStart + 1)..<close]), as: UTF8.self)
            guard IPv6Address.parse(literal) != nil else { throw fail(.host) }
            host = .ipv6(literal)
            if close + 1 < authorityEnd {
                guard bytes[close + 1] == UInt8(ascii: ":") else { throw fail(.host) }
                portStart = close + 2
            }
        } else {
            var colon = -1
            for j in hostStart..<authorityEnd where bytes[j] == UInt8(ascii: ":") {
                colon = j
                break
            }
            let hostEnd = colon >= 0 ? colon : authorityEnd
            guard hostEnd > hostStart else { throw fail(.host) }
            for j in hostStart..<hostEnd where !isRegNameByte(bytes[j]) { throw fail(.host) }
            let hostBytes = UnsafeRawBufferPointer(rebasing: bytes[hostStart..<hostEnd])
            let text = String(decoding: hostBytes, as: UTF8.self)
            host = IPv4Address.isValid(hostBytes) ? .ipv4(text) : .name(text)
            if colon >= 0 { portStart = colon + 1 }
        }
        if portStart >= 0 {
            guard portStart < authorityEnd, authorityEnd - portStart <= 5 else { throw fail(.port) }
            var value = 0
            for j in portStart..<authorityEnd {
                let d = bytes[j]
                guard d >= UInt8(ascii: "0"), d <= UInt8(ascii: "9") else { throw fail(.port) }
                value = value * 10 + Int(d - UInt8(ascii: "0"))
            }
            guard value <= 65535 else { throw fail(.port) }
            port = value
        }

        // Session id: 1*(unreserved / "+" / "=" / "/") up to ";".
        i = authorityEnd
        var sessionID: String? = nil
        if i < n, bytes[i] == UInt8(ascii: "/") {
            let start = i + 1
            var end = start
            while end < n, bytes[end] != UInt8(ascii: ";") {
                guard isSessionIDByte(bytes[end]) else { throw fail(.sessionID) }
                end += 1
            }
            guard end > start else { throw fail(.sessionID) }
            sessionID = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
            i = end
        }

        // ";" transport, then ";" params.
        guard i < n, bytes[i] == UInt8(ascii: ";") else { throw fail(.transport) }
        var transport = ""
        var parameters: [Parameter] = []
        var segStart = i + 1
        var j = i + 1
        while j <= n {
            if j == n || bytes[j] == UInt8(ascii: ";") {
                let segment = UnsafeRawBufferPointer(rebasing: bytes[segStart..<j])
                if segStart == i + 1 {
                    guard !segment.isEmpty, segment.allSatisfy(isAlphaNum) else { throw fail(.transport) }
                    transport = String(decoding: segment, as: UTF8.self)
                } else {
                    guard let p = Parameter.parse(segment) else { throw fail(.parameter) }
                    parameters.append(p)
                }
                segStart = j + 1
            }
            j += 1
        }
        return MSRPURI(
            scheme: scheme, userinfo: userinfo, host: host, port: port,
            sessionID: sessionID, transport: transport, parameters: parameters)
    }
}

// MARK: - Character classes (RFC 3986 and RFC 4975 §9)

@inline(__always) func lower(_ b: UInt8) -> UInt8 {
    (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b
}

@inline(__always) func isAlpha(_ b: UInt8) -> Bool {
    let l = b | 0x20
    return l >= UInt8(ascii: "a") && l <= UInt8(ascii: "z")
}

@inline(__always) func isDigit(_ b: UInt8) -> Bool {
    b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")
}

@inline(__always) func isAlphaNum(_ b: UInt8) -> Bool { isAlpha(b) || isDigit(b) }

@inline(__always) func isUnreserved(_ b: UInt8) -> Bool {
    isAlphaNum(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_")
        || b == UInt8(ascii: "~")
}

@inline(__always) func isSubDelim(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
        UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
        UInt8(ascii: "="):
        return true
    default: return false
    }
}

@inline(__always) func isUserinfoByte(_ b: UInt8) -> Bool {
    isUnreserved(b) || isSubDelim(b) || b == UInt8(ascii: ":") || b == UInt8(ascii: "%")
}

/// reg-name bytes, less ";" which ends the authority in an MSRP URI.
@inline(__always) func isRegNameByte(_ b: UInt8) -> Bool {
    (isUnreserved(b) || isSubDelim(b) || b == UInt8(ascii: "%")) && b != UInt8(ascii: ";")
}

@inline(__always) func isSessionIDByte(_ b: UInt8) -> Bool {
    isUnreserved(b) || b == UInt8(ascii: "+") || b == UInt8(ascii: "=") || b == UInt8(ascii: "/")
}

/// `token` of RFC 4975 §9.
@inline(__always) func isTokenByte(_ b: UInt8) -> Bool {
    switch b {
    case 0x21, 0x23...0x27, 0x2A...0x2B, 0x2D...0x2E, 0x30...0x39, 0x41...0x5A, 0x5E...0x7E: return true
    default: return false
    }
}

func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    let x = a.utf8, y = b.utf8
    guard x.count == y.count else { return false }
    return zip(x, y).allSatisfy { lower($0) == lower($1) }
}

/// Decodes percent-encoded unreserved characters (RFC 3986 §6.2.2.2); leaves others encoded.
func percentDecodedUnreserved(_ s: String) -> String {
    guard s.utf8.contains(UInt8(ascii: "%")) else { return s }
    var out: [UInt8] = []
    let b = Array(s.utf8)
    var i = 0
    while i < b.count {
        if b[i] == UInt8(ascii: "%"), i + 2 < b.count, let h = hexValue(b[i + 1]), let l = hexValue(b[i + 2]),
            isUnreserved(h << 4 | l)
        {
            out.append(h << 4 | l)
            i += 3
        } else {
            out.append(b[i])
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}

@inline(__always) func hexValue(_ b: UInt8) -> UInt8? {
    switch b {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
    default: return nil
    }
}

enum IPv4Address {
    /// A dotted quad: four decimal parts of 1-3 digits, each at most 255.
    static func isValid<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool {
        var parts = 0
        var digits = 0
        var value = 0
        for b in bytes {
            if b == UInt8(ascii: ".") {
                guard digits > 0 else { return false }
                parts += 1
                digits = 0
                value = 0
            } else if isDigit(b) {
                digits += 1
                value = value * 10 + Int(b - UInt8(ascii: "0"))
                guard digits <= 3, value <= 255 else { return false }
            } else {
                return false
            }
        }
        return parts == 3 && digits > 0
    }

    static func isValid(_ s: String) -> Bool { isValid(s.utf8) }
}

enum IPv6Address {
    /// Parses an IPv6 address (RFC 4291 text forms, with "::" and a trailing IPv4) into 16 bytes.
    static func parse(_ s: String) -> [UInt8]? {
        var text = Substring(s)
        if let pct = text.firstIndex(of: "%") { text = text[..<pct] }  // zone id
        var tail: [UInt8] = []
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            let v4 = String(text[text.index(after: lastColon)...])
            guard IPv4Address.isValid(v4) else { return nil }
            tail = v4.split(separator: ".").compactMap { UInt8($0) }
            text = text[...lastColon]
            if text.hasSuffix("::") == false { text = text.dropLast() }
        }
        let halves = String(text).components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            for g in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard !g.isEmpty, g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        guard let head = groups(Substring(halves[0])) else { return nil }
        let rest = halves.count == 2 ? groups(Substring(halves[1])) : []
        guard let rest else { return nil }
        let groupCount = 8 - tail.count / 2
        var all: [UInt16]
        if halves.count == 2 {
            guard head.count + rest.count < groupCount else { return nil }
            all = head + Array(repeating: 0, count: groupCount - head.count - rest.count) + rest
        } else {
            guard head.count == groupCount else { return nil }
            all = head
        }
        var bytes: [UInt8] = []
        for g in all { bytes += [UInt8(g >> 8), UInt8(g & 0xFF)] }
        return bytes + tail
    }
}

extension String {
    fileprivate func components(separatedBy sep: String) -> [String] {
        var out: [String] = []
        var rest = Substring(self)
        while let r = rest.range(of: sep) {
            out.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        out.append(String(rest))
        return out
    }
}

extension Substring {
    fileprivate func range(of needle: String) -> Range<Substring.Index>? {
        let n = Array(needle.utf8)
        var i = startIndex
        while i < endIndex {
            var j = i
            var k = 0
            while k < n.count, j < endIndex, self.utf8[j] == n[k] {
                j = self.utf8.index(after: j)
                k += 1
            }
            if k == n.count { return i..<j }
            i = index(after: i)
        }
        return nil
    }
}
