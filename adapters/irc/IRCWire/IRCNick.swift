/// Nicks made from names that are not nicks (a display name, a SIP user part).
public enum IRCNick {
    /// The characters RFC 2812 allows in a nick (letters, digits, `-` and the specials).
    static let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_[]{}\\`^|")

    /// Whether every character of `s` may be in a nick.
    public static func isNickText(_ s: String) -> Bool { s.allSatisfy(allowed.contains) }

    /// `name` with only nick characters, at most `maxLength` of them; prefixed
    /// with `prefix` when that leaves it empty or starting with a digit or `-`
    /// (a nick cannot).
    public static func from(_ name: String, maxLength: Int, prefix: String) -> String {
        var nick = String(name.filter { allowed.contains($0) }.prefix(maxLength))
        if nick.isEmpty || nick.first == "-" || nick.first?.isNumber == true { nick = prefix + nick }
        return nick
    }
}
