import Digest
/// A SIP header as received or to be sent: the canonical (long-form) name and
/// its value, in order. Header names compare case-insensitively (RFC 3261 §7.3.1).
public struct SIPHeader: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// SIP headers in order, with the lookups the user agent needs.
public struct SIPHeaders: Sendable, Hashable, ExpressibleByArrayLiteral {
    public var fields: [SIPHeader]

    public init(_ fields: [SIPHeader] = []) { self.fields = fields }
    public init(arrayLiteral elements: SIPHeader...) { self.fields = elements }

    /// The first value of `name`.
    public subscript(name: String) -> String? {
        let n = name.lowercased()
        return fields.first { $0.name.lowercased() == n }?.value
    }

    /// Every value of `name`, comma-separated lists split (for Via, Route,
    /// Record-Route, Contact, Allow, Supported...).
    public func values(_ name: String) -> [String] {
        let n = name.lowercased()
        return fields.filter { $0.name.lowercased() == n }.flatMap { splitHeaderList($0.value) }
    }

    public mutating func add(_ name: String, _ value: String) { fields.append(SIPHeader(name, value)) }

    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    public mutating func remove(_ name: String) {
        let n = name.lowercased()
        fields.removeAll { $0.name.lowercased() == n }
    }

    public var callID: String? { self["Call-ID"] }
    public var cseq: CSeq? { self["CSeq"].flatMap(CSeq.init) }
    public var contentLength: Int? { self["Content-Length"].flatMap { Int($0.trimmingCharacters(in: " \t")) } }
    public var contentType: String? { self["Content-Type"] }
    public var from: NameAddr? { self["From"].flatMap(NameAddr.init) }
    public var to: NameAddr? { self["To"].flatMap(NameAddr.init) }
    public var vias: [Via] { values("Via").compactMap(Via.init) }
    public var maxForwards: Int? { self["Max-Forwards"].flatMap { Int($0.trimmingCharacters(in: " \t")) } }
}

public struct CSeq: Sendable, Hashable, CustomStringConvertible {
    public var number: UInt32
    public var method: String

    public init(number: UInt32, method: String) {
        self.number = number
        self.method = method
    }

    public init?(_ text: String) {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count == 2, let n = UInt32(parts[0]), isToken(parts[1]) else { return nil }
        self.init(number: n, method: String(parts[1]))
    }

    public var description: String { "\(number) \(method)" }
}

/// `"Display" <sip:uri>;tag=x` or `sip:uri;tag=x` (From, To, Contact, Route).
public struct NameAddr: Sendable, Hashable, CustomStringConvertible {
    public var displayName: String?
    public var uri: String
    /// Header parameters (after the `>` or after the bare URI): `tag`, `expires`...
    public var parameters: [(String, String?)]

    public init(displayName: String? = nil, uri: String, parameters: [(String, String?)] = []) {
        self.displayName = displayName
        self.uri = uri
        self.parameters = parameters
    }

    public init?(_ text: String) {
        let t = text.trimmingCharacters(in: " \t")
        var rest: Substring
        if let open = t.firstIndex(of: "<") {
            guard let close = t[open...].firstIndex(of: ">") else { return nil }
            let name = t[..<open].trimmingCharacters(in: " \t\"")
            displayName = name.isEmpty ? nil : name
            uri = String(t[t.index(after: open)..<close])
            rest = t[t.index(after: close)...]
        } else {
            // Without brackets, parameters after the URI belong to the header (§20.10).
            let semi = t.firstIndex(of: ";") ?? t.endIndex
            displayName = nil
            uri = String(t[..<semi])
            rest = t[semi...]
        }
        guard uri.contains(":"), !uri.contains(" ") else { return nil }
        parameters = parseParameters(rest)
    }

    public func parameter(_ name: String) -> String? {
        parameters.first { $0.0.lowercased() == name.lowercased() }?.1 ?? nil
    }

    public var tag: String? { parameter("tag") }

    public var description: String {
        var s = displayName.map { "\"\($0)\" " } ?? ""
        s += "<\(uri)>"
        for (k, v) in parameters { s += ";" + k + (v.map { "=" + $0 } ?? "") }
        return s
    }

    public static func == (a: NameAddr, b: NameAddr) -> Bool { a.description == b.description }
    public func hash(into h: inout Hasher) { h.combine(description) }
}

/// One Via value: `SIP/2.0/UDP host:port;branch=z9hG4bK...;rport`.
public struct Via: Sendable, Hashable {
    public var transport: String
    public var host: String
    public var port: Int?
    public var parameters: [(String, String?)]

    public init?(_ text: String) {
        let t = text.trimmingCharacters(in: " \t")
        let parts = t.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count == 2 else { return nil }
        let proto = parts[0].split(separator: "/")
        guard proto.count == 3, proto[0].uppercased() == "SIP", proto[1] == "2.0" else { return nil }
        transport = proto[2].uppercased()
        let rest = parts[1].trimmingCharacters(in: " \t")
        let semi = rest.firstIndex(of: ";") ?? rest.endIndex
        let sentBy = rest[..<semi].trimmingCharacters(in: " \t")
        parameters = parseParameters(rest[semi...])
        if sentBy.hasPrefix("[") {
            guard let close = sentBy.firstIndex(of: "]") else { return nil }
            host = String(sentBy[sentBy.index(after: sentBy.startIndex)..<close])
            let after = sentBy[sentBy.index(after: close)...]
            port = after.hasPrefix(":") ? Int(after.dropFirst()) : nil
        } else if let colon = sentBy.lastIndex(of: ":") {
            host = String(sentBy[..<colon])
            guard let p = Int(sentBy[sentBy.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
        } else {
            host = sentBy
            port = nil
        }
        guard !host.isEmpty else { return nil }
    }

    public func parameter(_ name: String) -> String? {
        parameters.first { $0.0.lowercased() == name.lowercased() }?.1 ?? nil
    }

    public func has(_ name: String) -> Bool { parameters.contains { $0.0.lowercased() == name.lowercased() } }

    public var branch: String? { parameter("branch") }

    public static func == (a: Via, b: Via) -> Bool { a.transport == b.transport && a.host == b.host && a.port == b.port && a.branch == b.branch }
    public func hash(into h: inout Hasher) { h.combine(branch) }
}

public struct SIPRequest: Sendable, Hashable {
    public var method: String
    public var uri: String
    public var headers: SIPHeaders
    public var body: [UInt8]

    public init(method: String, uri: String, headers: SIPHeaders, body: [UInt8] = []) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
    }
}

public struct SIPResponse: Sendable, Hashable {
    public var code: Int
    public var reason: String
    public var headers: SIPHeaders
    public var body: [UInt8]

    public init(code: Int, reason: String, headers: SIPHeaders, body: [UInt8] = []) {
        self.code = code
        self.reason = reason
        self.headers = headers
        self.body = body
    }
}

public enum SIPMessage: Sendable, Hashable {
    case request(SIPRequest)
    case response(SIPResponse)

    public var headers: SIPHeaders {
        switch self {
        case .request(let r): return r.headers
        case .response(let r): return r.headers
        }
    }
}

// MARK: - Small parsing helpers

/// `;a=b;c` into pairs (values unquoted).
func parseParameters<S: StringProtocol>(_ text: S) -> [(String, String?)] {
    splitOutsideQuotes(String(text), on: ";").compactMap { p in
        let t = p.trimmingCharacters(in: " \t")
        guard !t.isEmpty else { return nil }
        if let eq = t.firstIndex(of: "=") {
            return (String(t[..<eq]).trimmingCharacters(in: " \t"), String(t[t.index(after: eq)...]).trimmingCharacters(in: " \t\""))
        }
        return (t, nil)
    }
}

/// A comma-separated header list, split outside quotes and angle brackets.
func splitHeaderList(_ value: String) -> [String] {
    splitOutsideQuotes(value, on: ",").map { $0.trimmingCharacters(in: " \t") }.filter { !$0.isEmpty }
}

func isToken<S: StringProtocol>(_ s: S) -> Bool {
    !s.isEmpty && s.utf8.allSatisfy { c in
        (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || (0x30...0x39).contains(c) || "-.!%*_+`'~".utf8.contains(c)
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
