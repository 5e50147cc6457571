/// What a server said it supports in its EHLO reply (RFC 5321 §4.1.1.1).
public struct SMTPCapabilities: Sendable, Hashable {
    public var keywords: Set<String> = []
    /// SIZE limit in bytes; nil when not announced (or announced without a number).
    public var maxSize: Int?
    public var authMechanisms: Set<String> = []

    public init() {}

    /// From the EHLO reply's lines (the first one is the greeting).
    public init(ehlo reply: SMTPReply) {
        for line in reply.lines.dropFirst() {
            let words = line.split(separator: " ").map { $0.uppercased() }
            guard let keyword = words.first else { continue }
            keywords.insert(keyword)
            switch keyword {
            case "SIZE": maxSize = words.count > 1 ? Int(words[1]).flatMap { $0 > 0 ? $0 : nil } : nil
            case "AUTH": authMechanisms.formUnion(words.dropFirst())
            default: break
            }
        }
    }

    public func has(_ keyword: String) -> Bool { keywords.contains(keyword.uppercased()) }
    public var startTLS: Bool { has("STARTTLS") }
    public var pipelining: Bool { has("PIPELINING") }
    public var eightBitMIME: Bool { has("8BITMIME") }
    public var smtpUTF8: Bool { has("SMTPUTF8") }
    public var enhancedStatusCodes: Bool { has("ENHANCEDSTATUSCODES") }
}
