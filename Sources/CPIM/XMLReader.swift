/// An element of a small XML document: name (without prefix), namespace URI,
/// children, and text content.
struct XMLElement: Sendable, Hashable {
    var name: String
    var namespace: String?
    var children: [XMLElement] = []
    var text: String = ""

    func child(_ name: String) -> XMLElement? { children.first { $0.name == name } }
}

/// Just enough XML for IMDN documents, and safe against hostile input: no DTDs
/// or entity declarations (so no entity expansion and no external entities),
/// bounded size and depth, well-formedness checked (tags must nest and match).
/// Namespaces are resolved for default (`xmlns`) and prefixed (`xmlns:p`) forms.
struct XMLReader {
    var maxBytes: Int
    var maxDepth: Int

    private struct Frame {
        var element: XMLElement
        var qualifiedName: String
        var scope: [String: String]
    }

    func parse(_ bytes: [UInt8]) throws(CPIMError) -> XMLElement {
        guard bytes.count <= maxBytes else { throw CPIMError(.malformedXML, "document over \(maxBytes) bytes") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw CPIMError(.badEncoding, "XML document") }
        let s = Array(text.unicodeScalars)
        var i = 0
        var stack: [Frame] = []
        var root: XMLElement?

        func fail(_ why: String) -> CPIMError { CPIMError(.malformedXML, "\(why) at character \(i)") }
        func startsWith(_ p: String) -> Bool {
            let ps = Array(p.unicodeScalars)
            return i + ps.count <= s.count && Array(s[i..<(i + ps.count)]) == ps
        }
        func skip(until end: String) throws(CPIMError) {
            let es = Array(end.unicodeScalars)
            while i + es.count <= s.count {
                if Array(s[i..<(i + es.count)]) == es {
                    i += es.count
                    return
                }
                i += 1
            }
            throw fail("unterminated \(end)")
        }
        func isNameChar(_ c: Unicode.Scalar) -> Bool {
            c.properties.isAlphabetic || c.properties.numericType != nil || c == "-" || c == "_" || c == "." || c == ":"
        }
        func name() throws(CPIMError) -> String {
            let start = i
            while i < s.count, isNameChar(s[i]) { i += 1 }
            guard i > start else { throw fail("expected a name") }
            return String(String.UnicodeScalarView(s[start..<i]))
        }
        func skipSpace() { while i < s.count, s[i] == " " || s[i] == "\t" || s[i] == "\r" || s[i] == "\n" { i += 1 } }
        func decodeEntities(_ raw: [Unicode.Scalar]) throws(CPIMError) -> String {
            var out = String.UnicodeScalarView()
            var j = 0
            while j < raw.count {
                guard raw[j] == "&" else {
                    out.append(raw[j])
                    j += 1
                    continue
                }
                guard let semi = raw[j...].firstIndex(of: ";"), semi - j <= 10 else { throw fail("bad entity reference") }
                let ent = String(String.UnicodeScalarView(raw[(j + 1)..<semi]))
                switch ent {
                case "amp": out.append("&")
                case "lt": out.append("<")
                case "gt": out.append(">")
                case "quot": out.append("\"")
                case "apos": out.append("'")
                default:
                    let number: UInt32?
                    if ent.hasPrefix("#x") { number = UInt32(ent.dropFirst(2), radix: 16) }
                    else if ent.hasPrefix("#") { number = UInt32(ent.dropFirst()) }
                    else { throw fail("unknown entity &\(ent);") }
                    guard let n = number, let scalar = Unicode.Scalar(n) else { throw fail("bad character reference") }
                    out.append(scalar)
                }
                j = semi + 1
            }
            return String(out)
        }
        func resolve(_ qname: String, _ scope: [String: String]) -> (String, String?) {
            if let colon = qname.firstIndex(of: ":") {
                return (String(qname[qname.index(after: colon)...]), scope[String(qname[..<colon])])
            }
            return (qname, scope[""])
        }

        while i < s.count {
            if s[i] == "<" {
                if startsWith("<?") {
                    try skip(until: "?>")
                } else if startsWith("<!--") {
                    try skip(until: "-->")
                } else if startsWith("<![CDATA[") {
                    guard !stack.isEmpty else { throw fail("CDATA outside the root element") }
                    i += 9
                    let start = i
                    try skip(until: "]]>")
                    stack[stack.count - 1].element.text += String(String.UnicodeScalarView(s[start..<(i - 3)]))
                } else if startsWith("<!") {
                    throw fail("DTDs and declarations are not accepted")
                } else if startsWith("</") {
                    i += 2
                    let qname = try name()
                    skipSpace()
                    guard i < s.count, s[i] == ">" else { throw fail("bad end tag") }
                    i += 1
                    guard let frame = stack.popLast(), frame.qualifiedName == qname else { throw fail("mismatched </\(qname)>") }
                    var done = frame.element
                    done.text = done.text.trimmingXMLSpace()
                    if stack.isEmpty { root = done } else { stack[stack.count - 1].element.children.append(done) }
                } else {
                    i += 1
                    guard root == nil else { throw fail("content after the root element") }
                    let qname = try name()
                    var scope = stack.last?.scope ?? [:]
                    var selfClosing = false
                    while true {
                        skipSpace()
                        guard i < s.count else { throw fail("unterminated tag") }
                        if s[i] == ">" { i += 1; break }
                        if s[i] == "/", i + 1 < s.count, s[i + 1] == ">" { i += 2; selfClosing = true; break }
                        let attr = try name()
                        skipSpace()
                        guard i < s.count, s[i] == "=" else { throw fail("attribute without a value") }
                        i += 1
                        skipSpace()
                        guard i < s.count, s[i] == "\"" || s[i] == "'" else { throw fail("unquoted attribute") }
                        let quote = s[i]
                        i += 1
                        let start = i
                        while i < s.count, s[i] != quote { if s[i] == "<" { throw fail("< in an attribute") }; i += 1 }
                        guard i < s.count else { throw fail("unterminated attribute") }
                        let value = try decodeEntities(Array(s[start..<i]))
                        i += 1
                        if attr == "xmlns" { scope[""] = value }
                        else if attr.hasPrefix("xmlns:") { scope[String(attr.dropFirst(6))] = value }
                    }
                    guard stack.count < maxDepth else { throw fail("nested deeper than \(maxDepth)") }
                    let (local, ns) = resolve(qname, scope)
                    let element = XMLElement(name: local, namespace: ns)
                    if selfClosing {
                        if stack.isEmpty { root = element } else { stack[stack.count - 1].element.children.append(element) }
                    } else {
                        stack.append(Frame(element: element, qualifiedName: qname, scope: scope))
                    }
                }
            } else {
                let start = i
                while i < s.count, s[i] != "<" { i += 1 }
                let raw = Array(s[start..<i])
                if stack.isEmpty {
                    guard raw.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }) else {
                        throw fail("text outside the root element")
                    }
                } else {
                    stack[stack.count - 1].element.text += try decodeEntities(raw)
                }
            }
        }
        guard stack.isEmpty, let root else { throw fail(stack.isEmpty ? "no root element" : "unclosed <\(stack.last?.qualifiedName ?? "")>") }
        return root
    }
}

extension String {
    func trimmingXMLSpace() -> String {
        var sub = Substring(self)
        while let f = sub.first, f.isWhitespace { sub.removeFirst() }
        while let l = sub.last, l.isWhitespace { sub.removeLast() }
        return String(sub)
    }
}
