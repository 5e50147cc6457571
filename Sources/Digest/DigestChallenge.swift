import Crypto

/// A `WWW-Authenticate` or `Proxy-Authenticate` digest challenge (RFC 3261
/// §22.4, RFC 7616 for the algorithms, RFC 8760 for SHA-256 in SIP).
public struct DigestChallenge: Sendable, Hashable {
    public enum Algorithm: String, Sendable, Hashable {
        case md5 = "MD5"
        case md5Session = "MD5-sess"
        case sha256 = "SHA-256"
        case sha256Session = "SHA-256-sess"

        var isSession: Bool { self == .md5Session || self == .sha256Session }

        func hash(_ text: String) -> String {
            switch self {
            case .md5, .md5Session: return Insecure.MD5.hash(data: Array(text.utf8)).hex
            case .sha256, .sha256Session: return SHA256.hash(data: Array(text.utf8)).hex
            }
        }
    }

    public var realm: String
    public var nonce: String
    public var opaque: String?
    public var algorithm: Algorithm
    /// The qop options offered; empty for RFC 2069-style challenges.
    public var qop: [String]
    public var stale: Bool

    /// Parses `Digest realm="…", nonce="…", …`; nil for another scheme, an
    /// algorithm we do not speak, or a challenge without realm and nonce.
    public init?(_ header: String) {
        let text = header.trimmingWhitespace()
        guard text.count > 7, text.prefix(7).lowercased() == "digest " else { return nil }
        var fields: [String: String] = [:]
        for part in splitOutsideQuotes(String(text.dropFirst(7)), on: ",") {
            guard let eq = part.firstIndex(of: "=") else { continue }
            let name = part[..<eq].trimmingWhitespace().lowercased()
            fields[name] = Self.unquote(part[part.index(after: eq)...].trimmingWhitespace())
        }
        guard let realm = fields["realm"], let nonce = fields["nonce"] else { return nil }
        let name = fields["algorithm"] ?? "MD5"
        guard let algorithm = [Algorithm.md5, .md5Session, .sha256, .sha256Session].first(where: { $0.rawValue.lowercased() == name.lowercased() }) else {
            return nil
        }
        self.realm = realm
        self.nonce = nonce
        self.opaque = fields["opaque"]
        self.algorithm = algorithm
        self.qop = fields["qop"].map { $0.split(separator: ",").map { $0.trimmingWhitespace().lowercased() } } ?? []
        self.stale = fields["stale"]?.lowercased() == "true"
    }

    /// Of several challenges (one per algorithm, RFC 8760 §2.4), the strongest we speak.
    public static func preferred(_ headers: [String]) -> DigestChallenge? {
        let parsed = headers.compactMap(DigestChallenge.init)
        return parsed.first { $0.algorithm == .sha256 || $0.algorithm == .sha256Session } ?? parsed.first
    }

    /// The `Authorization`/`Proxy-Authorization` value for one request.
    /// `cnonce` and `nonceCount` matter only with qop; `body` only with auth-int.
    public func authorization(
        username: String, password: String, method: String, uri: String, body: [UInt8] = [], cnonce: String, nonceCount: UInt32
    ) -> String {
        let useQop: String? = qop.contains("auth") ? "auth" : (qop.contains("auth-int") ? "auth-int" : nil)
        let nc = String(nonceCount, radix: 16).leftPadded(to: 8)
        var ha1 = algorithm.hash("\(username):\(realm):\(password)")
        if algorithm.isSession { ha1 = algorithm.hash("\(ha1):\(nonce):\(cnonce)") }
        let ha2 = useQop == "auth-int"
            ? algorithm.hash("\(method):\(uri):\(Self.bodyHash(body, algorithm))")
            : algorithm.hash("\(method):\(uri)")
        let response = useQop.map { algorithm.hash("\(ha1):\(nonce):\(nc):\(cnonce):\($0):\(ha2)") } ?? algorithm.hash("\(ha1):\(nonce):\(ha2)")
        var parts = [
            "username=\"\(Self.escape(username))\"", "realm=\"\(Self.escape(realm))\"", "nonce=\"\(Self.escape(nonce))\"",
            "uri=\"\(Self.escape(uri))\"", "response=\"\(response)\"", "algorithm=\(algorithm.rawValue)",
        ]
        if let useQop { parts += ["qop=\(useQop)", "nc=\(nc)", "cnonce=\"\(Self.escape(cnonce))\""] }
        if let opaque { parts.append("opaque=\"\(Self.escape(opaque))\"") }
        return "Digest " + parts.joined(separator: ", ")
    }

    private static func bodyHash(_ body: [UInt8], _ algorithm: Algorithm) -> String {
        switch algorithm {
        case .md5, .md5Session: return Insecure.MD5.hash(data: body).hex
        case .sha256, .sha256Session: return SHA256.hash(data: body).hex
        }
    }

    private static func unquote(_ s: String) -> String {
        guard s.count >= 2, s.first == "\"", s.last == "\"" else { return s }
        var out = ""
        var escaped = false
        for c in s.dropFirst().dropLast() {
            if escaped { out.append(c); escaped = false } else if c == "\\" { escaped = true } else { out.append(c) }
        }
        return out
    }

    private static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            if c == "\\" || c == "\"" { out.append("\\") }
            out.append(c)
        }
        return out
    }

    /// A fresh client nonce.
    public static func makeCnonce() -> String {
        var rng = SystemRandomNumberGenerator()
        return String(rng.next(), radix: 16).leftPadded(to: 16)
    }
}

extension Sequence where Element == UInt8 {
    var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in self { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0x0F)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

/// Splits a header value at `separator`, but not inside quoted strings or
/// angle brackets (`a="x,y", <sip:b;c,d>`): what SIP and MSRP header lists need.
public func splitOutsideQuotes(_ s: String, on separator: Character) -> [String] {
    var out: [String] = []
    var current = ""
    var quoted = false
    var angle = 0
    var escaped = false
    for c in s {
        if escaped {
            current.append(c)
            escaped = false
            continue
        }
        switch c {
        case "\\" where quoted: escaped = true
        case "\"": quoted.toggle()
        case "<" where !quoted: angle += 1
        case ">" where !quoted: angle = max(0, angle - 1)
        case separator where !quoted && angle == 0:
            out.append(current)
            current = ""
            continue
        default: break
        }
        current.append(c)
    }
    out.append(current)
    return out
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    fileprivate func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}

/// The server side: checks a client's digest `Authorization` (its parameters,
/// names lower-cased) against the password, for `method`. The nonce's freshness
/// is the caller's business (it issued it).
public enum DigestVerifier {
    public static func verify(_ p: [String: String], password: String, method: String) -> Bool {
        guard let username = p["username"], let realm = p["realm"], let nonce = p["nonce"], let uri = p["uri"],
              let response = p["response"] else { return false }
        let algorithm = DigestChallenge.Algorithm(rawValue: p["algorithm"] ?? "MD5") ?? .md5
        guard let qop = p["qop"] else {
            let ha1 = algorithm.hash("\(username):\(realm):\(password)")
            return algorithm.hash("\(ha1):\(nonce):\(algorithm.hash("\(method):\(uri)"))") == response.lowercased()
        }
        guard qop == "auth", let nc = p["nc"], let cnonce = p["cnonce"] else { return false }
        var ha1 = algorithm.hash("\(username):\(realm):\(password)")
        if algorithm.isSession { ha1 = algorithm.hash("\(ha1):\(nonce):\(cnonce)") }
        let ha2 = algorithm.hash("\(method):\(uri)")
        return algorithm.hash("\(ha1):\(nonce):\(nc):\(cnonce):\(qop):\(ha2)") == response.lowercased()
    }
}
