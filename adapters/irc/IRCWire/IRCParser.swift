import NIOCore

/// Why a line is not an IRC message.
public struct IRCParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case empty = "empty line"
        case noCommand = "no command"
        case badCommand = "a command is letters or a three-digit numeric"
        case tooManyParams = "more than 15 parameters"
    }

    public var kind: Kind
    public init(_ kind: Kind) { self.kind = kind }
    public var description: String { kind.rawValue }
}

/// Parses one line (without its CR LF). Atoms are separated by one or more
/// spaces, as RFC 1459 allows (the irc-parser-tests corpus expects it); tag
/// values are unescaped (IRCv3: an unknown escape is the character itself, a
/// trailing lone backslash is dropped). Bytes that are not UTF-8 are read as
/// Latin-1, so that no line is lost (`lossy` tells).
public enum IRCParser {
    public static let maxParams = 15

    public static func parse(_ line: String) throws(IRCParseError) -> IRCMessage {
        try parse(Array(line.utf8)).message
    }

    /// The message and whether the bytes had to be read as Latin-1.
    public static func parse(_ bytes: [UInt8]) throws(IRCParseError) -> (message: IRCMessage, lossy: Bool) {
        try bytes.withUnsafeBufferPointer { b throws(IRCParseError) in try parse(b) }
    }

    /// A line as the framer hands it over.
    public static func parse(_ line: ByteBuffer) throws(IRCParseError) -> (message: IRCMessage, lossy: Bool) {
        let result: Result<(message: IRCMessage, lossy: Bool), IRCParseError> = line.withUnsafeReadableBytes { raw in
            let b = UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: UInt8.self), count: raw.count)
            do throws(IRCParseError) { return .success(try parse(b)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    public static func parse(_ b: UnsafeBufferPointer<UInt8>) throws(IRCParseError) -> (message: IRCMessage, lossy: Bool) {
        var i = 0
        let n = b.count
        var lossy = false
        func skipSpaces() { while i < n, b[i] == 0x20 { i += 1 } }
        func word() -> (Int, Int) {
            let start = i
            while i < n, b[i] != 0x20 { i += 1 }
            return (start, i)
        }
        func text(_ range: (Int, Int)) -> String {
            decode(UnsafeBufferPointer(rebasing: b[range.0..<range.1]), lossy: &lossy)
        }

        skipSpaces()
        guard i < n else { throw IRCParseError(.empty) }
        var tags: [IRCTag] = []
        if b[i] == 0x40 {  // @
            i += 1
            let (start, end) = word()
            tags = parseTags(UnsafeBufferPointer(rebasing: b[start..<end]), lossy: &lossy)
            skipSpaces()
        }
        var source: String?
        if i < n, b[i] == 0x3A {  // :
            i += 1
            source = text(word())
            skipSpaces()
        }
        let command = word()
        guard command.1 > command.0 else { throw IRCParseError(.noCommand) }
        // RFC 2812: letters, or a three-digit numeric. Anything else (a second "@"
        // or ":" word, control bytes) is not a command and would not survive a round trip.
        for k in command.0..<command.1 {
            let c = b[k]
            guard (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) else {
                throw IRCParseError(.badCommand)
            }
        }
        var params: [String] = []
        while true {
            skipSpaces()
            guard i < n else { break }
            if b[i] == 0x3A {
                params.append(text((i + 1, n)))
                break
            }
            params.append(text(word()))
        }
        guard params.count <= maxParams else { throw IRCParseError(.tooManyParams) }
        return (IRCMessage(tags: tags, source: source, command: text(command), params: params), lossy)
    }

    private static func parseTags(_ b: UnsafeBufferPointer<UInt8>, lossy: inout Bool) -> [IRCTag] {
        var tags: [IRCTag] = []
        var start = 0
        while start < b.count {
            var end = start
            while end < b.count, b[end] != 0x3B { end += 1 }  // ;
            // A tag needs a key: "@=x" or ";;" carry nothing and are skipped.
            if end > start, b[start] != 0x3D {
                var eq = start
                while eq < end, b[eq] != 0x3D { eq += 1 }  // =
                let key = decode(UnsafeBufferPointer(rebasing: b[start..<eq]), lossy: &lossy)
                let value = eq < end ? unescape(UnsafeBufferPointer(rebasing: b[(eq + 1)..<end]), lossy: &lossy) : ""
                if let k = tags.firstIndex(where: { $0.key == key }) {
                    tags[k].value = value
                } else {
                    tags.append(IRCTag(key, value))
                }
            }
            start = end + 1
        }
        return tags
    }

    private static func unescape(_ b: UnsafeBufferPointer<UInt8>, lossy: inout Bool) -> String {
        guard b.contains(0x5C) else { return decode(b, lossy: &lossy) }
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            let c = b[i]
            if c == 0x5C {
                i += 1
                guard i < b.count else { break }  // a lone trailing backslash is dropped
                switch b[i] {
                case 0x3A: out.append(0x3B)  // \: -> ;
                case 0x73: out.append(0x20)  // \s -> space
                case 0x72: out.append(0x0D)  // \r
                case 0x6E: out.append(0x0A)  // \n
                default: out.append(b[i])  // \\ -> \, \x -> x
                }
            } else {
                out.append(c)
            }
            i += 1
        }
        return out.withUnsafeBufferPointer { decode($0, lossy: &lossy) }
    }

    private static func decode(_ b: UnsafeBufferPointer<UInt8>, lossy: inout Bool) -> String {
        // Most of IRC is ASCII: that needs no validation beyond the check (and the
        // generic validating initialiser costs a metadata lookup per call).
        if b.allSatisfy({ $0 < 0x80 }) { return String(decoding: b, as: UTF8.self) }
        if let s = String(validating: b, as: UTF8.self) { return s }
        lossy = true
        return String(b.map { Character(Unicode.Scalar($0)) })
    }
}
