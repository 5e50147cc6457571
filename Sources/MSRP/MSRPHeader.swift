/// One MSRP header field, typed where RFC 4975, RFC 4976 and RFC 7701 define
/// it, kept verbatim otherwise. `To-Path` and `From-Path` are not here: every
/// request and response has them, so the heads hold them as properties.
public enum MSRPHeader: Sendable, Hashable {
    case messageID(String)
    case byteRange(ByteRange)
    case successReport(SuccessReport)
    case failureReport(FailureReport)
    case status(MSRPStatus)
    case contentType(MediaType)
    case contentID(String)
    case contentDescription(String)
    case contentDisposition(String)
    case usePath([MSRPURI])
    case wwwAuthenticate(AuthParameters)
    case authorization(AuthParameters)
    case authenticationInfo(AuthParameters)
    case expires(Int64)
    case minExpires(Int64)
    case maxExpires(Int64)
    /// The raw value: a quoted-string (RFC 7701) or a URI (its early draft).
    case useNickname(String)
    /// An extension header, name and value as received.
    case other(name: String, value: String)

    public var name: String {
        switch self {
        case .messageID: return "Message-ID"
        case .byteRange: return "Byte-Range"
        case .successReport: return "Success-Report"
        case .failureReport: return "Failure-Report"
        case .status: return "Status"
        case .contentType: return "Content-Type"
        case .contentID: return "Content-ID"
        case .contentDescription: return "Content-Description"
        case .contentDisposition: return "Content-Disposition"
        case .usePath: return "Use-Path"
        case .wwwAuthenticate: return "WWW-Authenticate"
        case .authorization: return "Authorization"
        case .authenticationInfo: return "Authentication-Info"
        case .expires: return "Expires"
        case .minExpires: return "Min-Expires"
        case .maxExpires: return "Max-Expires"
        case .useNickname: return "Use-Nickname"
        case .other(let name, _): return name
        }
    }

    public var value: String {
        switch self {
        case .messageID(let v), .contentID(let v), .contentDescription(let v), .contentDisposition(let v),
            .useNickname(let v), .other(_, let v):
            return v
        case .byteRange(let r): return r.description
        case .successReport(let r): return r.rawValue
        case .failureReport(let r): return r.rawValue
        case .status(let s): return s.description
        case .contentType(let t): return t.description
        case .usePath(let p): return p.map(\.description).joined(separator: " ")
        case .wwwAuthenticate(let a), .authorization(let a), .authenticationInfo(let a): return a.description
        case .expires(let v), .minExpires(let v), .maxExpires(let v): return String(v)
        }
    }

    /// The header kinds the parser recognises, by lower-cased name.
    enum Kind: UInt32 {
        case toPath, fromPath, messageID, byteRange, successReport, failureReport, status, contentType
        case contentID, contentDescription, contentDisposition, usePath, wwwAuthenticate, authorization
        case authenticationInfo, expires, minExpires, maxExpires, useNickname, other

        /// Kinds whose parser accepts only a strict ASCII grammar, so a separate
        /// UTF-8 text check would be redundant.
        var validatesItsBytes: Bool {
            switch self {
            case .toPath, .fromPath, .usePath, .messageID, .byteRange, .successReport, .failureReport,
                .expires, .minExpires, .maxExpires:
                return true
            default:
                return false
            }
        }
    }

    /// Builds a typed header from a name kind and its raw value bytes.
    static func make(kind: Kind, name nameBytes: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(HeaderValueError) -> MSRPHeader {
        func text() -> String { String(decoding: value, as: UTF8.self) }
        func fail() -> HeaderValueError { HeaderValueError(header: String(decoding: nameBytes, as: UTF8.self), value: text()) }
        func equalsIgnoringCase(_ literal: StaticString) -> Bool {
            guard literal.utf8CodeUnitCount == value.count else { return false }
            for i in 0..<value.count where lower(value[i]) != literal.utf8Start[i] { return false }
            return true
        }
        func integer() throws(HeaderValueError) -> Int64 {
            guard !value.isEmpty, value.count <= 18, value.allSatisfy(isDigit) else { throw fail() }
            return value.reduce(0) { $0 * 10 + Int64($1 - UInt8(ascii: "0")) }
        }
        switch kind {
        case .messageID:
            guard isIdent(value) else { throw fail() }
            return .messageID(text())
        case .byteRange:
            guard let r = ByteRange.parse(value) else { throw fail() }
            return .byteRange(r)
        case .successReport:
            if equalsIgnoringCase("yes") { return .successReport(.yes) }
            if equalsIgnoringCase("no") { return .successReport(.no) }
            throw fail()
        case .failureReport:
            if equalsIgnoringCase("yes") { return .failureReport(.yes) }
            if equalsIgnoringCase("no") { return .failureReport(.no) }
            if equalsIgnoringCase("partial") { return .failureReport(.partial) }
            throw fail()
        case .status:
            do { return .status(try MSRPStatus(text())) } catch { throw fail() }
        case .contentType:
            guard let t = MediaType.parse(value) else { throw fail() }
            return .contentType(t)
        case .contentID: return .contentID(text())
        case .contentDescription: return .contentDescription(text())
        case .contentDisposition: return .contentDisposition(text())
        case .usePath:
            return .usePath(try parseURIList(value, header: "Use-Path"))
        case .wwwAuthenticate:
            return .wwwAuthenticate(try AuthParameters(text(), hasScheme: true, header: "WWW-Authenticate"))
        case .authorization:
            return .authorization(try AuthParameters(text(), hasScheme: true, header: "Authorization"))
        case .authenticationInfo:
            return .authenticationInfo(try AuthParameters(text(), hasScheme: false, header: "Authentication-Info"))
        case .expires: return .expires(try integer())
        case .minExpires: return .minExpires(try integer())
        case .maxExpires: return .maxExpires(try integer())
        case .useNickname:
            guard !value.isEmpty else { throw fail() }
            return .useNickname(text())
        case .toPath, .fromPath, .other:
            return .other(name: String(decoding: nameBytes, as: UTF8.self), value: text())
        }
    }

    /// Maps a header name (any case) to its kind without allocating.
    static func kind(of name: UnsafeRawBufferPointer) -> Kind {
        @inline(__always) func eq(_ lit: StaticString) -> Bool {
            guard lit.utf8CodeUnitCount == name.count else { return false }
            let p = lit.utf8Start
            for i in 0..<name.count where lower(name[i]) != lower(p[i]) { return false }
            return true
        }
        switch name.count {
        case 6: return eq("Status") ? .status : .other
        case 7:
            if eq("To-Path") { return .toPath }
            if eq("Expires") { return .expires }
            return .other
        case 8: return eq("Use-Path") ? .usePath : .other
        case 9: return eq("From-Path") ? .fromPath : .other
        case 10:
            if eq("Message-ID") { return .messageID }
            if eq("Byte-Range") { return .byteRange }
            if eq("Content-ID") { return .contentID }
            return .other
        case 11:
            if eq("Min-Expires") { return .minExpires }
            if eq("Max-Expires") { return .maxExpires }
            return .other
        case 12:
            if eq("Content-Type") { return .contentType }
            if eq("Use-Nickname") { return .useNickname }
            return .other
        case 13: return eq("Authorization") ? .authorization : .other
        case 14:
            if eq("Success-Report") { return .successReport }
            if eq("Failure-Report") { return .failureReport }
            return .other
        case 16: return eq("WWW-Authenticate") ? .wwwAuthenticate : .other
        case 19:
            if eq("Content-Description") { return .contentDescription }
            if eq("Content-Disposition") { return .contentDisposition }
            if eq("Authentication-Info") { return .authenticationInfo }
            return .other
        default: return .other
        }
    }
}

/// Parses a space-separated list of MSRP URIs (To-Path, From-Path, Use-Path).
func parseURIList(_ raw: UnsafeRawBufferPointer, header: String) throws(HeaderValueError) -> [MSRPURI] {
    var result: [MSRPURI] = []
    var i = 0
    let n = raw.count
    var failed = false
    while i < n {
        while i < n, raw[i] == 0x20 || raw[i] == 0x09 { i += 1 }
        let s = i
        while i < n, raw[i] != 0x20, raw[i] != 0x09 { i += 1 }
        guard i > s else { break }
        do {
            result.append(try MSRPURI.parse(UnsafeRawBufferPointer(rebasing: raw[s..<i])))
        } catch {
            failed = true
            break
        }
    }
    let value = raw
    guard !failed, !result.isEmpty else {
        throw HeaderValueError(header: header, value: String(decoding: value, as: UTF8.self))
    }
    return result
}

/// `ident = ALPHANUM 3*31ident-char` (transaction and message ids), §9.
func isIdent(_ b: UnsafeRawBufferPointer) -> Bool {
    guard b.count >= 4, b.count <= 32, isAlphaNum(b[0]) else { return false }
    for i in 1..<b.count where !isIdentChar(b[i]) { return false }
    return true
}

@inline(__always) func isIdentChar(_ c: UInt8) -> Bool {
    isAlphaNum(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: "-") || c == UInt8(ascii: "+")
        || c == UInt8(ascii: "%") || c == UInt8(ascii: "=")
}

/// The ordered header fields of a request or response (less To-Path and From-Path),
/// with typed accessors. Order is kept so that serialising what was parsed gives
/// the same bytes.
public struct MSRPHeaderFields: Sendable, Hashable, RandomAccessCollection, ExpressibleByArrayLiteral {
    public var fields: [MSRPHeader]

    public init(_ fields: [MSRPHeader] = []) { self.fields = fields }
    public init(arrayLiteral elements: MSRPHeader...) { self.fields = elements }

    public var startIndex: Int { fields.startIndex }
    public var endIndex: Int { fields.endIndex }
    public subscript(i: Int) -> MSRPHeader { fields[i] }

    public mutating func append(_ h: MSRPHeader) { fields.append(h) }

    /// Replaces the first field with the same name, or appends; a Content-Type stays last.
    public mutating func set(_ h: MSRPHeader) {
        if let i = fields.firstIndex(where: { asciiCaseInsensitiveEquals($0.name, h.name) }) {
            fields[i] = h
        } else if let ct = fields.firstIndex(where: { if case .contentType = $0 { return true } else { return false } }) {
            fields.insert(h, at: ct)
        } else {
            fields.append(h)
        }
    }

    public mutating func remove(named name: String) {
        fields.removeAll { asciiCaseInsensitiveEquals($0.name, name) }
    }

    /// The value of the first field with this name (any kind), as text.
    public subscript(name: String) -> String? {
        fields.first { asciiCaseInsensitiveEquals($0.name, name) }?.value
    }

    public var messageID: String? {
        for case .messageID(let v) in fields { return v }
        return nil
    }
    public var byteRange: ByteRange? {
        for case .byteRange(let v) in fields { return v }
        return nil
    }
    /// Success-Report, `no` when absent (§7.1.1).
    public var successReport: SuccessReport {
        for case .successReport(let v) in fields { return v }
        return .no
    }
    /// Failure-Report, `yes` when absent (§7.1.1).
    public var failureReport: FailureReport {
        for case .failureReport(let v) in fields { return v }
        return .yes
    }
    public var status: MSRPStatus? {
        for case .status(let v) in fields { return v }
        return nil
    }
    public var contentType: MediaType? {
        for case .contentType(let v) in fields { return v }
        return nil
    }
    public var usePath: [MSRPURI]? {
        for case .usePath(let v) in fields { return v }
        return nil
    }
    public var wwwAuthenticate: [AuthParameters] {
        fields.compactMap { if case .wwwAuthenticate(let v) = $0 { return v } else { return nil } }
    }
    public var authorization: AuthParameters? {
        for case .authorization(let v) in fields { return v }
        return nil
    }
    public var authenticationInfo: AuthParameters? {
        for case .authenticationInfo(let v) in fields { return v }
        return nil
    }
    public var expires: Int64? {
        for case .expires(let v) in fields { return v }
        return nil
    }
    public var minExpires: Int64? {
        for case .minExpires(let v) in fields { return v }
        return nil
    }
    public var maxExpires: Int64? {
        for case .maxExpires(let v) in fields { return v }
        return nil
    }
    /// The nickname of Use-Nickname, unquoted when written as a quoted-string (RFC 7701).
    public var useNickname: String? {
        for case .useNickname(let v) in fields {
            let b = Array(v.utf8)
            if b.first == UInt8(ascii: "\""), let (s, end) = unquote(b, from: 0), end == b.count { return s }
            return v
        }
        return nil
    }
}
