import Crypto
import Foundation

/// The signed token in the addresses the gateway gives out on mails it sends:
/// `reply+TOKEN@domain` (Reply-To) and `bounce+TOKEN@domain` (the VERP return
/// path). It names the event the mail carried and when it stops being good;
/// an HMAC-SHA256 (truncated to 80 bits) over both and the kind makes it
/// unforgeable, and a reply token is no bounce token. Base32 in lower case, so
/// that mail systems that change the case of local parts do not break it; 36
/// characters, so that the local part stays under RFC 5321's 64.
public struct MailToken: Sendable, Hashable {
    public enum Kind: String, Sendable {
        case reply, bounce
    }

    public var kind: Kind
    public var event: Int64
    /// Good until (whole minutes).
    public var expires: Date

    public init(kind: Kind, event: Int64, expires: Date) {
        self.kind = kind
        self.event = event
        self.expires = Date(timeIntervalSince1970: (expires.timeIntervalSince1970 / 60).rounded(.down) * 60)
    }

    /// The local part: `reply+TOKEN`.
    public func localPart(signedWith keys: MailTokenKeys) -> String {
        "\(kind.rawValue)+" + Base32.encode(payload + keys.mac(kind: kind, payload: payload))
    }

    var payload: [UInt8] {
        let minutes = UInt32(clamping: Int64(expires.timeIntervalSince1970 / 60))
        return withUnsafeBytes(of: UInt64(bitPattern: event).bigEndian, Array.init) + withUnsafeBytes(of: minutes.bigEndian, Array.init)
    }

    public enum Refusal: Error, Sendable, Hashable, CustomStringConvertible {
        case notOurs, malformed, forged, expired(Date)
        public var description: String {
            switch self {
            case .notOurs: "not a reply or bounce address"
            case .malformed: "malformed token"
            case .forged: "token signature does not verify"
            case .expired(let at): "token expired at \(at)"
            }
        }
    }

    /// The token of a local part (`reply+...`, `bounce+...`), verified with any
    /// of `keys` and not expired at `now`.
    public static func verify(localPart: String, keys: MailTokenKeys, now: Date) throws(Refusal) -> MailToken {
        let parts = localPart.lowercased().split(separator: "+", maxSplits: 1)
        guard parts.count == 2, let kind = Kind(rawValue: String(parts[0])) else { throw .notOurs }
        guard let bytes = Base32.decode(parts[1]), bytes.count == 22 else { throw .malformed }
        let payload = Array(bytes[0..<12])
        guard keys.verifies(mac: Array(bytes[12...]), kind: kind, payload: payload) else { throw .forged }
        let event = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let minutes = bytes[8..<12].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let token = MailToken(kind: kind, event: Int64(bitPattern: event), expires: Date(timeIntervalSince1970: Double(minutes) * 60))
        guard token.expires > now else { throw .expired(token.expires) }
        return token
    }
}

/// The secrets tokens are signed with: the first signs, all verify (rotation:
/// add the new one first, drop the old one when its tokens have expired).
public struct MailTokenKeys: Sendable, Hashable {
    let keys: [[UInt8]]

    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public init(secrets: [String]) throws(Invalid) {
        guard !secrets.isEmpty else { throw Invalid(description: "at least one secret is needed") }
        for s in secrets where s.utf8.count < 16 {
            throw Invalid(description: "a token secret must be at least 16 bytes (this one has \(s.utf8.count))")
        }
        keys = secrets.map { Array($0.utf8) }
    }

    func mac(kind: MailToken.Kind, payload: [UInt8], key: [UInt8]? = nil) -> [UInt8] {
        var message = Array(kind.rawValue.utf8)
        message.append(0)
        message += payload
        let code = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key ?? keys[0]))
        return Array(Array(code).prefix(10))
    }

    func verifies(mac given: [UInt8], kind: MailToken.Kind, payload: [UInt8]) -> Bool {
        keys.contains { key in
            let expected = mac(kind: kind, payload: payload, key: key)
            // Constant time: every byte compared.
            return expected.count == given.count && zip(expected, given).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
        }
    }
}

/// RFC 4648 base32, lower case, no padding.
enum Base32 {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var acc: UInt32 = 0
        var bits = 0
        for b in bytes {
            acc = (acc << 8) | UInt32(b)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int((acc >> UInt32(bits)) & 31)])
            }
        }
        if bits > 0 { out.append(alphabet[Int((acc << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        var acc: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = c - UInt8(ascii: "a")
            case UInt8(ascii: "2")...UInt8(ascii: "7"): v = c - UInt8(ascii: "2") + 26
            default: return nil
            }
            acc = (acc << 5) | UInt32(v)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return out
    }
}

/// The addresses mails carry when replies and bounces come back to the
/// gateway's SMTP listener: `reply+TOKEN@domain`, `bounce+TOKEN@domain`.
public struct ReplyAddressing: Sendable, Hashable {
    /// The reply domain (MX or relay pointed at the gateway's listener).
    public var domain: String
    public var keys: MailTokenKeys
    /// How long a token is good for.
    public var lifetime: TimeInterval

    public init(domain: String, keys: MailTokenKeys, lifetime: TimeInterval) {
        self.domain = domain.lowercased()
        self.keys = keys
        self.lifetime = lifetime
    }

    public func address(_ kind: MailToken.Kind, event: Int64, now: Date = Date()) -> String {
        MailToken(kind: kind, event: event, expires: now.addingTimeInterval(lifetime)).localPart(signedWith: keys) + "@" + domain
    }
}
