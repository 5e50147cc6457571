import Crypto
import Foundation

/// Standard Webhooks 1.0 signatures: `webhook-signature: v1,<base64 HMAC-SHA256 of
/// "{id}.{timestamp}.{body}">`, one per secret, space separated.
public struct WebhookSigner: Sendable {
    public struct SecretError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Key bytes (SymmetricKey is not Sendable; making one per signature is cheap).
    private let keys: [Data]

    public init(secrets: [String]) throws(SecretError) {
        var keys: [Data] = []
        for s in secrets { keys.append(try Self.key(from: s)) }
        self.keys = keys
    }

    /// The key bytes of a `whsec_<base64>` secret.
    static func key(from secret: String) throws(SecretError) -> Data {
        let encoded = secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret
        guard let data = Data(base64Encoded: encoded), data.count >= 16 else {
            throw SecretError(description: "a secret must be whsec_ followed by base64 of at least 16 bytes")
        }
        return data
    }

    /// The `webhook-signature` header value.
    public func signature(id: String, timestamp: Int64, body: [UInt8]) -> String {
        var message = Array("\(id).\(timestamp).".utf8)
        message += body
        return keys.map { key in
            "v1," + Data(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))).base64EncodedString()
        }.joined(separator: " ")
    }
}
