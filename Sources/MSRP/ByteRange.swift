/// The Byte-Range header (RFC 4975 §7.1.1): `start-end/total`, positions counted
/// from 1, `end` and `total` possibly unknown (`*`). An empty message is `1-0/0`.
public struct ByteRange: Sendable, Hashable, CustomStringConvertible {
    public var start: Int64
    /// Position of the last byte, or nil for `*`.
    public var end: Int64?
    /// Total message size, or nil for `*`.
    public var total: Int64?

    public init(start: Int64, end: Int64?, total: Int64?) {
        self.start = start
        self.end = end
        self.total = total
    }

    /// The whole message of `size` bytes in one chunk.
    public static func whole(_ size: Int64) -> ByteRange {
        ByteRange(start: 1, end: size, total: size)
    }

    public var description: String {
        "\(start)-\(end.map(String.init) ?? "*")/\(total.map(String.init) ?? "*")"
    }
}

extension ByteRange {
    public init(_ text: String) throws(HeaderValueError) {
        guard let r = ByteRange.parse(Array(text.utf8)[...]) else {
            throw HeaderValueError(header: "Byte-Range", value: text)
        }
        self = r
    }

    /// Parses and validates: start >= 1, end >= start - 1, end <= total, no Int64 overflow.
    static func parse<Bytes: RandomAccessCollection<UInt8>>(_ b: Bytes) -> ByteRange? where Bytes.Index == Int {
        var i = b.startIndex
        func number() -> Int64?? {  // .some(nil) = "*", nil = malformed
            if i < b.endIndex, b[i] == UInt8(ascii: "*") {
                i += 1
                return .some(nil)
            }
            let s = i
            var v: Int64 = 0
            while i < b.endIndex, isDigit(b[i]) {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(b[i] - UInt8(ascii: "0")))
                if o1 || o2 { return nil }
                v = a
                i += 1
            }
            return i > s ? .some(v) : nil
        }
        guard let startOpt = number(), let start = startOpt, i < b.endIndex, b[i] == UInt8(ascii: "-") else {
            return nil
        }
        i += 1
        guard let end = number(), i < b.endIndex, b[i] == UInt8(ascii: "/") else { return nil }
        i += 1
        guard let total = number(), i == b.endIndex else { return nil }
        guard start >= 1 else { return nil }
        if let end, end < start - 1 { return nil }
        if let total {
            if let end, end > total { return nil }
            if start > total + 1 { return nil }
        }
        return ByteRange(start: start, end: end, total: total)
    }
}

/// The Status header of a REPORT (§7.1.2): `namespace code [reason]`, e.g. `000 200 OK`.
public struct MSRPStatus: Sendable, Hashable, CustomStringConvertible {
    public var namespace: Int
    public var code: Int
    public var reason: String?

    public init(namespace: Int = 0, code: Int, reason: String? = nil) {
        self.namespace = namespace
        self.code = code
        self.reason = reason
    }

    public var isSuccess: Bool { namespace == 0 && (200..<300).contains(code) }

    public var description: String {
        let ns = String(namespace)
        let padded = String(repeating: "0", count: max(0, 3 - ns.count)) + ns
        return padded + " " + String(code) + (reason.map { " " + $0 } ?? "")
    }

    public init(_ text: String) throws(HeaderValueError) {
        let b = Array(text.utf8)
        guard b.count >= 7, b[0..<3].allSatisfy(isDigit), b[3] == 0x20, b[4..<7].allSatisfy(isDigit),
            b.count == 7 || b[7] == 0x20
        else { throw HeaderValueError(header: "Status", value: text) }
        namespace = Int(String(decoding: b[0..<3], as: UTF8.self)) ?? 0
        code = Int(String(decoding: b[4..<7], as: UTF8.self)) ?? 0
        reason = b.count > 8 ? String(decoding: b[8...], as: UTF8.self) : nil
    }
}

/// Success-Report (§7.1.1); absent means `no`.
public enum SuccessReport: String, Sendable, Hashable {
    case yes, no
}

/// Failure-Report (§7.1.1); absent means `yes`.
public enum FailureReport: String, Sendable, Hashable {
    case yes, no, partial

    /// Whether a 200 response is sent for a chunk (only with `yes`).
    public var wantsSuccessResponse: Bool { self == .yes }
    /// Whether an error response or failure REPORT may be sent (`yes` and `partial`).
    public var wantsFailures: Bool { self != .no }
}

/// The parameters of an HTTP-style authentication header as RFC 4976 uses them:
/// `Digest realm="x", nonce="y", qop="auth"` (WWW-Authenticate, Authorization,
/// Authentication-Info; the last has no scheme).
public struct AuthParameters: Sendable, Hashable, CustomStringConvertible {
    public struct Parameter: Sendable, Hashable {
        public var name: String
        public var value: String
        public var quoted: Bool
        public init(name: String, value: String, quoted: Bool = true) {
            self.name = name
            self.value = value
            self.quoted = quoted
        }
    }

    public var scheme: String?
    public var parameters: [Parameter]

    public init(scheme: String?, parameters: [Parameter]) {
        self.scheme = scheme
        self.parameters = parameters
    }

    public subscript(_ name: String) -> String? {
        parameters.first { asciiCaseInsensitiveEquals($0.name, name) }?.value
    }

    public var description: String {
        let params = parameters.map { $0.name + "=" + ($0.quoted ? quoted($0.value) : $0.value) }
            .joined(separator: ", ")
        guard let scheme else { return params }
        return params.isEmpty ? scheme : scheme + " " + params
    }

    /// Parses `[scheme] name=value, name="value", ...`.
    public init(_ text: String, hasScheme: Bool, header: String) throws(HeaderValueError) {
        let b = Array(text.utf8)
        var i = 0
        func skipWS() { while i < b.count, b[i] == 0x20 || b[i] == 0x09 { i += 1 } }
        func fail() -> HeaderValueError { HeaderValueError(header: header, value: text) }
        skipWS()
        var scheme: String? = nil
        if hasScheme {
            let s = i
            while i < b.count, isTokenByte(b[i]) { i += 1 }
            guard i > s else { throw fail() }
            scheme = String(decoding: b[s..<i], as: UTF8.self)
        }
        var params: [Parameter] = []
        skipWS()
        while i < b.count {
            let s = i
            while i < b.count, isTokenByte(b[i]), b[i] != UInt8(ascii: "=") { i += 1 }
            guard i > s else { throw fail() }
            let name = String(decoding: b[s..<i], as: UTF8.self)
            skipWS()
            guard i < b.count, b[i] == UInt8(ascii: "=") else { throw fail() }
            i += 1
            skipWS()
            if i < b.count, b[i] == UInt8(ascii: "\"") {
                guard let (v, next) = unquote(b, from: i) else { throw fail() }
                params.append(Parameter(name: name, value: v, quoted: true))
                i = next
            } else {
                let vs = i
                while i < b.count, b[i] != UInt8(ascii: ","), b[i] != 0x20, b[i] != 0x09 { i += 1 }
                guard i > vs else { throw fail() }
                params.append(Parameter(name: name, value: String(decoding: b[vs..<i], as: UTF8.self), quoted: false))
            }
            skipWS()
            if i < b.count {
                guard b[i] == UInt8(ascii: ",") else { throw fail() }
                i += 1
                skipWS()
            }
        }
        self.scheme = scheme
        self.parameters = params
    }
}
