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

    /// Each 64-bit draw gives 8 characters (62^8 < 2^64; the modulo bias is below
    /// 2^-40), so an id costs length/8 draws: with the system generator every draw is
    /// a getrandom call, and ids are made for every transaction.
    public static func make<R: RandomNumberGenerator>(length: Int = 16, using rng: inout R) -> String {
        precondition((4...32).contains(length), "an MSRP ident is 4 to 32 characters")
        return String(unsafeUninitializedCapacity: length) { out in
            var i = 0
            while i < length {
                var word = rng.next()
                for _ in 0..<min(8, length - i) {
                    out[i] = alphabet[Int(word % 62)]
                    word /= 62
                    i += 1
                }
            }
            return length
        }
    }

    /// Whether `s` is a valid transaction or message id.
    public static func isValid(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { isIdent(UnsafeRawBufferPointer($0)) }
    }
}
