/// Random identifiers for transactions, messages and sessions.
///
/// Transaction ids must not occur in the bodies they frame; with 16 random
/// characters from 62 the chance is negligible, and the chunker checks anyway.
public enum MSRPIdentifier {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// A random `ident` (§9) of `length` characters (4...32).
    public static func make(length: Int = 16) -> String {
        var rng = SystemRandomNumberGenerator()
        return make(length: length, using: &rng)
    }

    public static func make<R: RandomNumberGenerator>(length: Int = 16, using rng: inout R) -> String {
        precondition((4...32).contains(length), "an MSRP ident is 4 to 32 characters")
        var bytes = [UInt8](repeating: 0, count: length)
        for i in 0..<length { bytes[i] = alphabet[Int(rng.next(upperBound: UInt32(alphabet.count)))] }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `s` is a valid transaction or message id.
    public static func isValid(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { isIdent(UnsafeRawBufferPointer($0)) }
    }
}
