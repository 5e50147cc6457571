/// Reads an XMPP stream as it arrives: the stream header, then one complete
/// stanza at a time, then the end of the stream. Our own restricted XML
/// tokenizer (RFC 6120 §11): comments, processing instructions, DTDs and
/// entity references other than the five predefined ones and character
/// references end the stream with `<restricted-xml/>`, so there is nothing to
/// expand (no billion laughs, no external entities). Everything is bounded: a
/// stanza's bytes, its depth, its elements, a tag's attributes; bytes of an
/// unfinished stanza are held only up to the stanza limit. A malformed stream
/// throws `XMPPStreamError` (the condition to send back) and the parser is done.
///
/// Why not FoundationXML's `XMLParser`: it blocks a thread per stream and
/// accepts DTDs. libexpat would be a C dependency for what XMPP's restricted
/// XML needs: elements, attributes, namespaces, text, CDATA.
public struct XMPPStreamParser: Sendable {
    public struct Limits: Sendable, Hashable {
        /// Most bytes of one stanza, as sent (the stream header counts as one).
        public var maxStanzaBytes: Int
        /// Most elements open at once, the stream's own included.
        public var maxDepth: Int
        public var maxAttributes: Int
        /// Most elements in one stanza.
        public var maxElements: Int

        public init(maxStanzaBytes: Int = 262_144, maxDepth: Int = 32, maxAttributes: Int = 32, maxElements: Int = 2_048) {
            self.maxStanzaBytes = maxStanzaBytes
            self.maxDepth = maxDepth
            self.maxAttributes = maxAttributes
            self.maxElements = maxElements
        }
    }

    public enum Event: Sendable, Hashable {
        /// The `<stream:stream>` start tag (no children).
        case streamStart(XMPPElement)
        /// A complete top-level element: message, presence, iq, handshake, stream:error...
        case stanza(XMPPElement)
        /// `</stream:stream>`: nothing more is read.
        case streamEnd
    }

    public let limits: Limits
    private var buffer: [UInt8] = []
    /// The next byte of `buffer` to read.
    private var position = 0
    /// Open elements: the stream's first, then the stanza being read.
    private var stack: [Frame] = []
    /// Bytes read of the stanza that is open (0 between stanzas).
    private var stanzaBytes = 0
    private var stanzaElements = 0
    /// Bytes of an unfinished tag waiting for its `>`: it is tried again only
    /// when a `>` arrives after them (a tag sent a byte at a time costs linear time).
    private var unfinishedMarkup = 0
    private var seenMarkup = false
    private var failed: XMPPStreamError?
    public private(set) var ended = false

    private struct Frame: Sendable {
        var qualifiedName: String
        var element: XMPPElement
        var text: [UInt8]
        var defaultNamespace: String
        var prefixes: [(prefix: String, uri: String)]
    }

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Takes the next bytes of the stream; returns what they complete.
    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) throws(XMPPStreamError) -> [Event] where Bytes.Element == UInt8 {
        if let failed { throw failed }
        guard !ended else { return [] }
        buffer.append(contentsOf: bytes)
        var events: [Event] = []
        do {
            try parse(into: &events)
        } catch {
            failed = error
            buffer = []
            stack = []
            throw error
        }
        return events
    }

    private mutating func parse(into events: inout [Event]) throws(XMPPStreamError) {
        while position < buffer.count, !ended {
            let consumed: Int
            if buffer[position] == UInt8(ascii: "<") {
                if unfinishedMarkup > 0 {
                    guard buffer[(position + unfinishedMarkup)...].contains(UInt8(ascii: ">")) else {
                        unfinishedMarkup = buffer.count - position
                        break
                    }
                }
                guard let n = try markup(at: position, events: &events) else {
                    unfinishedMarkup = buffer.count - position
                    break
                }
                unfinishedMarkup = 0
                consumed = n
            } else {
                consumed = try text(at: position)
                if consumed == 0 { break }
            }
            position += consumed
            if stack.count >= 2 { stanzaBytes += consumed } else { (stanzaBytes, stanzaElements) = (0, 0) }
        }
        if position == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 65_536)
            position = 0
        } else if position > 16_384 {
            buffer.removeFirst(position)
            position = 0
        }
        let pending = buffer.count - position
        if stanzaBytes + pending > limits.maxStanzaBytes {
            throw XMPPStreamError(XMPPStreamError.policyViolation, "a stanza of more than \(limits.maxStanzaBytes) bytes")
        }
    }

    // MARK: - Markup

    /// Reads the tag, CDATA section or declaration at `p`; the bytes it took,
    /// or nil when it is not complete yet.
    private mutating func markup(at p: Int, events: inout [Event]) throws(XMPPStreamError) -> Int? {
        guard p + 1 < buffer.count else { return nil }
        switch buffer[p + 1] {
        case UInt8(ascii: "/"): return try endTag(at: p, events: &events)
        case UInt8(ascii: "?"): return try declaration(at: p)
        case UInt8(ascii: "!"): return try bang(at: p)
        default: return try startTag(at: p, events: &events)
        }
    }

    private mutating func startTag(at p: Int, events: inout [Event]) throws(XMPPStreamError) -> Int? {
        seenMarkup = true
        guard let nameEnd = try name(at: p + 1) else { return nil }
        let qname = try qualifiedName(buffer[(p + 1)..<nameEnd])
        var i = nameEnd
        var defaultNamespace = stack.last?.defaultNamespace ?? ""
        var prefixes = stack.last?.prefixes ?? []
        let inheritedPrefixes = prefixes.count
        var declaredDefault = false
        var attributes: [XMPPAttribute] = []
        var selfClosing = false
        while true {
            let afterSpace = skipSpace(from: i)
            guard afterSpace < buffer.count else { return nil }
            let c = buffer[afterSpace]
            if c == UInt8(ascii: ">") { i = afterSpace + 1; break }
            if c == UInt8(ascii: "/") {
                guard afterSpace + 1 < buffer.count else { return nil }
                guard buffer[afterSpace + 1] == UInt8(ascii: ">") else { throw malformed("a / inside a tag") }
                i = afterSpace + 2
                selfClosing = true
                break
            }
            guard afterSpace > i else { throw malformed("attributes not separated by white space") }
            guard let attributeEnd = try name(at: afterSpace) else { return nil }
            let attributeName = try qualifiedName(buffer[afterSpace..<attributeEnd])
            var j = skipSpace(from: attributeEnd)
            guard j < buffer.count else { return nil }
            guard buffer[j] == UInt8(ascii: "=") else { throw malformed("attribute \(attributeName) without a value") }
            j = skipSpace(from: j + 1)
            guard j < buffer.count else { return nil }
            let quote = buffer[j]
            guard quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"") else { throw malformed("attribute \(attributeName) not quoted") }
            guard let (value, valueEnd) = try attributeValue(from: j + 1, quote: quote) else { return nil }
            // Namespace declarations bind; everything else is an attribute. Each name once.
            if attributeName == "xmlns" {
                guard !declaredDefault else { throw malformed("attribute xmlns twice") }
                declaredDefault = true
                defaultNamespace = value
            } else if attributeName.utf8.starts(with: "xmlns:".utf8) {
                let prefix = String(attributeName.dropFirst(6))
                guard !prefixes[inheritedPrefixes...].contains(where: { $0.prefix == prefix }) else { throw malformed("attribute \(attributeName) twice") }
                prefixes.append((prefix, value))
            } else {
                guard !attributes.contains(where: { $0.name == attributeName }) else { throw malformed("attribute \(attributeName) twice") }
                attributes.append(XMPPAttribute(attributeName, value))
            }
            guard attributes.count + prefixes.count - inheritedPrefixes + (declaredDefault ? 1 : 0) <= limits.maxAttributes else {
                throw XMPPStreamError(XMPPStreamError.policyViolation, "more than \(limits.maxAttributes) attributes in a tag")
            }
            i = valueEnd
        }
        // The whole tag is here: take it.
        guard stack.count < limits.maxDepth else {
            throw XMPPStreamError(XMPPStreamError.policyViolation, "elements nested deeper than \(limits.maxDepth)")
        }
        // A prefixed attribute keeps its binding with it, as an xmlns:p attribute,
        // so that the element written back out still declares what it uses.
        var bound: [String] = []
        for a in attributes {
            guard let colon = a.name.utf8.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let prefix = String(a.name[..<colon])
            guard prefix != "xml", !bound.contains(prefix) else { continue }
            guard let uri = prefixes.last(where: { $0.prefix == prefix })?.uri else {
                throw XMPPStreamError(XMPPStreamError.badNamespacePrefix, "no namespace for the attribute prefix \(prefix)")
            }
            bound.append(prefix)
            attributes.append(XMPPAttribute("xmlns:" + prefix, uri))
        }
        let qualified = qname
        let local: String
        let namespace: String
        if let colon = qualified.utf8.firstIndex(of: UInt8(ascii: ":")) {
            let prefix = qualified[..<colon]
            guard let uri = prefixes.last(where: { $0.prefix == prefix })?.uri else {
                throw XMPPStreamError(XMPPStreamError.badNamespacePrefix, "no namespace for the prefix \(prefix)")
            }
            (local, namespace) = (String(qualified[qualified.index(after: colon)...]), uri)
        } else {
            (local, namespace) = (qualified, defaultNamespace)
        }
        let element = XMPPElement(local, namespace: namespace, attributes: attributes)
        if stack.isEmpty {
            guard local == "stream", namespace == XMPPNamespace.streams else {
                throw XMPPStreamError(XMPPStreamError.invalidNamespace, "the stream starts with <\(qualified)>, not a stream header")
            }
            guard !selfClosing else { throw XMPPStreamError(XMPPStreamError.badFormat, "an empty stream") }
            events.append(.streamStart(element))
        } else {
            stanzaElements += 1
            guard stanzaElements <= limits.maxElements else {
                throw XMPPStreamError(XMPPStreamError.policyViolation, "more than \(limits.maxElements) elements in a stanza")
            }
        }
        let frame = Frame(qualifiedName: qname, element: element, text: [], defaultNamespace: defaultNamespace, prefixes: prefixes)
        if selfClosing {
            try close(frame, events: &events)
        } else {
            stack.append(frame)
        }
        return i - p
    }

    private mutating func endTag(at p: Int, events: inout [Event]) throws(XMPPStreamError) -> Int? {
        guard let nameEnd = try name(at: p + 2) else { return nil }
        let end = skipSpace(from: nameEnd)
        guard end < buffer.count else { return nil }
        guard buffer[end] == UInt8(ascii: ">") else { throw malformed("an end tag with more than a name") }
        guard let frame = stack.popLast() else { throw malformed("an end tag with nothing open") }
        guard buffer[(p + 2)..<nameEnd].elementsEqual(frame.qualifiedName.utf8) else {
            throw malformed("</\(String(decoding: buffer[(p + 2)..<nameEnd], as: UTF8.self))> closes <\(frame.qualifiedName)>")
        }
        try close(frame, events: &events)
        return end + 1 - p
    }

    /// An element is complete: into its parent, or out as a stanza.
    private mutating func close(_ frame: Frame, events: inout [Event]) throws(XMPPStreamError) {
        var element = frame.element
        if !frame.text.isEmpty {
            guard let text = Self.utf8(frame.text[...]) else {
                throw XMPPStreamError(XMPPStreamError.unsupportedEncoding, "text that is not UTF-8 in <\(element.name)>")
            }
            if Self.hasNonCharacter(frame.text[...]) { throw malformed("U+FFFE or U+FFFF in <\(element.name)>") }
            element.text = text
        }
        switch stack.count {
        case 0:
            ended = true
            events.append(.streamEnd)
        case 1:
            events.append(.stanza(element))
        default:
            stack[stack.count - 1].element.children.append(element)
        }
    }

    /// `<?xml ...?>` before anything else; any other `<?` is a processing instruction.
    private mutating func declaration(at p: Int) throws(XMPPStreamError) -> Int? {
        let xml: [UInt8] = Array("<?xml".utf8)
        guard p + xml.count < buffer.count else { return nil }
        guard !seenMarkup, buffer[p..<(p + xml.count)].elementsEqual(xml), isSpace(buffer[p + xml.count]) else {
            throw XMPPStreamError(XMPPStreamError.restrictedXML, "a processing instruction")
        }
        guard let end = find([UInt8(ascii: "?"), UInt8(ascii: ">")], from: p) else { return nil }
        let text = String(decoding: buffer[p..<end], as: UTF8.self).lowercased()
        if let encoding = text.split(separator: "encoding", maxSplits: 1, omittingEmptySubsequences: false).dropFirst().first {
            let value = encoding.drop { $0 == " " || $0 == "=" || $0 == "'" || $0 == "\"" }
            guard value.hasPrefix("utf-8") else { throw XMPPStreamError(XMPPStreamError.unsupportedEncoding, "a stream not in UTF-8") }
        }
        seenMarkup = true
        return end + 2 - p
    }

    /// `<![CDATA[...]]>` is text; `<!--`, `<!DOCTYPE`, `<!ENTITY` are restricted.
    private mutating func bang(at p: Int) throws(XMPPStreamError) -> Int? {
        let cdata: [UInt8] = Array("<![CDATA[".utf8)
        let have = min(cdata.count, buffer.count - p)
        if buffer[p..<(p + have)].elementsEqual(cdata[..<have]) {
            guard have == cdata.count else { return nil }
            guard stack.count >= 2 else { throw XMPPStreamError(XMPPStreamError.badFormat, "character data outside a stanza") }
            guard let end = find(Array("]]>".utf8), from: p + cdata.count) else { return nil }
            let content = buffer[(p + cdata.count)..<end]
            try checkCharacters(content)
            stack[stack.count - 1].text.append(contentsOf: content)
            return end + 3 - p
        }
        guard p + 3 < buffer.count else { return nil }
        if buffer[p + 2] == UInt8(ascii: "-") { throw XMPPStreamError(XMPPStreamError.restrictedXML, "a comment") }
        throw XMPPStreamError(XMPPStreamError.restrictedXML, "a DTD or declaration")
    }

    // MARK: - Text

    /// Character data up to the next `<` (or the end of what has come, short of
    /// an unfinished reference); the bytes taken.
    private mutating func text(at p: Int) throws(XMPPStreamError) -> Int {
        var end = p
        while end < buffer.count, buffer[end] != UInt8(ascii: "<") { end += 1 }
        let inside = stack.count >= 2
        // Inside a stanza the text goes straight into its element's bytes.
        var out: [UInt8] = []
        if inside { swap(&out, &stack[stack.count - 1].text) }
        defer { if inside { swap(&out, &stack[stack.count - 1].text) } }
        let before = out.count
        var i = p
        var runStart = p
        while i < end {
            let b = buffer[i]
            if b == UInt8(ascii: "&") {
                guard let semicolon = buffer[i..<end].firstIndex(of: UInt8(ascii: ";")) else {
                    if end == buffer.count, end - i < 12 {
                        end = i  // the rest of the reference is still to come
                        break
                    }
                    throw malformed("an & that starts no reference")
                }
                out.append(contentsOf: buffer[runStart..<i])
                try reference(buffer[(i + 1)..<semicolon], into: &out)
                i = semicolon + 1
                runStart = i
                continue
            }
            if b < 0x20, b != 0x09, b != 0x0A, b != 0x0D { throw malformed("the control character \(b)") }
            i += 1
        }
        out.append(contentsOf: buffer[runStart..<min(i, end)])
        if !inside, !out[before...].allSatisfy(isSpace) {
            throw XMPPStreamError(XMPPStreamError.badFormat, "text outside a stanza")
        }
        return end - p
    }

    /// A reference's name (between `&` and `;`): one of the five predefined
    /// entities or a character reference to an XML character.
    private func reference(_ name: ArraySlice<UInt8>, into out: inout [UInt8]) throws(XMPPStreamError) {
        let a = name.startIndex
        switch name.count {
        case 2 where name[a + 1] == UInt8(ascii: "t") && name[a] == UInt8(ascii: "l"): out.append(UInt8(ascii: "<")); return
        case 2 where name[a + 1] == UInt8(ascii: "t") && name[a] == UInt8(ascii: "g"): out.append(UInt8(ascii: ">")); return
        case 3 where name.elementsEqual("amp".utf8): out.append(UInt8(ascii: "&")); return
        case 4 where name.elementsEqual("quot".utf8): out.append(UInt8(ascii: "\"")); return
        case 4 where name.elementsEqual("apos".utf8): out.append(UInt8(ascii: "'")); return
        default: break
        }
        guard name.first == UInt8(ascii: "#") else {
            throw XMPPStreamError(XMPPStreamError.restrictedXML, "a reference to the entity \(String(decoding: name, as: UTF8.self))")
        }
        let digits = String(decoding: name.dropFirst(), as: UTF8.self)
        let value = digits.hasPrefix("x") ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits, radix: 10)
        guard let value, let scalar = Unicode.Scalar(value), Self.isXMLCharacter(scalar) else {
            throw malformed("a character reference to no XML character (&\(String(decoding: name, as: UTF8.self));)")
        }
        out.append(contentsOf: Array(String(Character(scalar)).utf8))
    }

    /// U+FFFE and U+FFFF (EF BF BE, EF BF BF) are valid UTF-8 but no XML characters.
    static func hasNonCharacter(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard bytes.contains(0xEF) else { return false }
        var i = bytes.startIndex
        while i + 2 < bytes.endIndex {
            if bytes[i] == 0xEF, bytes[i + 1] == 0xBF, bytes[i + 2] >= 0xBE { return true }
            i += 1
        }
        return false
    }

    static func isXMLCharacter(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09, 0x0A, 0x0D, 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: true
        default: false
        }
    }

    /// An attribute value from `from` to its closing quote, references decoded
    /// and white space normalised (XML 1.0 §3.3.3); nil when not complete.
    private func attributeValue(from: Int, quote: UInt8) throws(XMPPStreamError) -> (String, Int)? {
        // Most values have nothing to decode or normalise: made from the bytes at once.
        var plainEnd = from
        while plainEnd < buffer.count {
            let b = buffer[plainEnd]
            if b == quote || b == UInt8(ascii: "&") || b == UInt8(ascii: "<") || b < 0x20 { break }
            plainEnd += 1
        }
        if plainEnd < buffer.count, buffer[plainEnd] == quote {
            let bytes = buffer[from..<plainEnd]
            guard let value = Self.utf8(bytes) else {
                throw XMPPStreamError(XMPPStreamError.unsupportedEncoding, "an attribute value that is not UTF-8")
            }
            if Self.hasNonCharacter(bytes) { throw malformed("U+FFFE or U+FFFF in an attribute value") }
            return (value, plainEnd + 1)
        }
        var out: [UInt8] = []
        var i = from
        while i < buffer.count {
            let b = buffer[i]
            switch b {
            case quote:
                guard let value = Self.utf8(out[...]) else {
                    throw XMPPStreamError(XMPPStreamError.unsupportedEncoding, "an attribute value that is not UTF-8")
                }
                if Self.hasNonCharacter(out[...]) { throw malformed("U+FFFE or U+FFFF in an attribute value") }
                return (value, i + 1)
            case UInt8(ascii: "<"): throw malformed("a < in an attribute value")
            case UInt8(ascii: "&"):
                guard let semicolon = buffer[i...].prefix(12).firstIndex(of: UInt8(ascii: ";")) else {
                    if buffer.count - i < 12 { return nil }
                    throw malformed("an & that starts no reference")
                }
                try reference(buffer[(i + 1)..<semicolon], into: &out)
                i = semicolon + 1
                continue
            case 0x09, 0x0A, 0x0D: out.append(UInt8(ascii: " "))
            case 0..<0x20: throw malformed("the control character \(b) in an attribute value")
            default: out.append(b)
            }
            i += 1
        }
        return nil
    }

    // MARK: - Pieces

    /// The end of the name starting at `p`; nil when it may go on past what has come.
    private func name(at p: Int) throws(XMPPStreamError) -> Int? {
        var i = p
        while i < buffer.count, Self.isNameByte(buffer[i]) { i += 1 }
        guard i < buffer.count else { return nil }
        guard i > p else { throw malformed("a tag without a name") }
        guard Self.canStartName(buffer[p]) else { throw malformed("a name starting with \(Character(Unicode.Scalar(buffer[p])))") }
        return i
    }

    private static func canStartName(_ b: UInt8) -> Bool {
        !(b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) && b != UInt8(ascii: "-") && b != UInt8(ascii: ".") && b != UInt8(ascii: ":")
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), 0x80...0xFF: true
        default: false
        }
    }

    private func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    private func skipSpace(from p: Int) -> Int {
        var i = p
        while i < buffer.count, isSpace(buffer[i]) { i += 1 }
        return i
    }

    private func find(_ needle: [UInt8], from p: Int) -> Int? {
        var i = p
        while i + needle.count <= buffer.count {
            if buffer[i] == needle[0], buffer[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    /// A name as Namespaces in XML wants it: `local` or `prefix:local`, never
    /// an empty part or a second colon.
    private func qualifiedName(_ bytes: ArraySlice<UInt8>) throws(XMPPStreamError) -> String {
        if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
            guard colon > bytes.startIndex, colon < bytes.endIndex - 1, Self.canStartName(bytes[colon + 1]),
                  !bytes[(colon + 1)...].contains(UInt8(ascii: ":")) else {
                throw malformed("the name \(String(decoding: bytes, as: UTF8.self)) is not prefix:local")
            }
        }
        return try string(bytes)
    }

    /// The bytes as a String when they are UTF-8: ASCII (nearly everything in
    /// XMPP markup) decoded at once, the rest validated. Through a buffer
    /// pointer: the generic `String(validating:)` on a slice was a tenth of the time.
    static func utf8(_ bytes: ArraySlice<UInt8>) -> String? {
        bytes.withUnsafeBufferPointer { b in
            var ascii = true
            for byte in b where byte >= 0x80 {
                ascii = false
                break
            }
            return ascii ? String(decoding: b, as: UTF8.self) : String(validating: b, as: UTF8.self)
        }
    }

    private func string(_ bytes: ArraySlice<UInt8>) throws(XMPPStreamError) -> String {
        guard let s = Self.utf8(bytes) else {
            throw XMPPStreamError(XMPPStreamError.unsupportedEncoding, "a name that is not UTF-8")
        }
        return s
    }

    private func checkCharacters(_ bytes: ArraySlice<UInt8>) throws(XMPPStreamError) {
        if let bad = bytes.first(where: { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }) {
            throw malformed("the control character \(bad)")
        }
    }

    private func malformed(_ why: String) -> XMPPStreamError {
        XMPPStreamError(XMPPStreamError.notWellFormed, why)
    }
}
