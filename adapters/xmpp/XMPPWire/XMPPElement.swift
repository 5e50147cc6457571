/// An XML element of an XMPP stream: a stanza and what it holds. Namespaces
/// are resolved (`namespace` is the URI, never a prefix); text is the
/// concatenated character data directly inside the element (XMPP payloads we
/// read are not mixed content).
public struct XMPPElement: Sendable, Hashable {
    public var name: String
    public var namespace: String
    /// In document order; names as written (`xml:lang`, `id`).
    public var attributes: [XMPPAttribute]
    public var children: [XMPPElement]
    public var text: String

    public init(_ name: String, namespace: String, attributes: [XMPPAttribute] = [], children: [XMPPElement] = [], text: String = "") {
        self.name = name
        self.namespace = namespace
        self.attributes = attributes
        self.children = children
        self.text = text
    }

    /// `XMPPElement("message", namespace: ns, ["to": "a@b", "type": "chat"])`: attributes
    /// written in the order given, nil values left out.
    public init(_ name: String, namespace: String, _ attributes: KeyValuePairs<String, String?>, children: [XMPPElement] = [], text: String = "") {
        self.init(name, namespace: namespace, attributes: attributes.compactMap { k, v in v.map { XMPPAttribute(k, $0) } },
                  children: children, text: text)
    }

    public subscript(attribute: String) -> String? {
        get { attributes.first { $0.name == attribute }?.value }
        set {
            attributes.removeAll { $0.name == attribute }
            if let newValue { attributes.append(XMPPAttribute(attribute, newValue)) }
        }
    }

    /// The first child named `name` (in `namespace` when given).
    public func child(_ name: String, namespace: String? = nil) -> XMPPElement? {
        children.first { $0.name == name && (namespace == nil || $0.namespace == namespace) }
    }
}

public struct XMPPAttribute: Sendable, Hashable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

// MARK: - Writing

extension XMPPElement {
    /// The element as XML, declaring its namespace when it differs from
    /// `inheritedNamespace` (a stanza inside a component stream inherits
    /// `jabber:component:accept`). Characters XML 1.0 cannot carry (controls
    /// other than tab, LF and CR; U+FFFE, U+FFFF) are written as U+FFFD: a body
    /// from MSRP may hold them, and one of them would end our stream.
    public func serialized(inheritedNamespace: String? = nil) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out, inheritedNamespace: inheritedNamespace)
        return out
    }

    public func xml(inheritedNamespace: String? = nil) -> String {
        String(decoding: serialized(inheritedNamespace: inheritedNamespace), as: UTF8.self)
    }

    public func write(into out: inout [UInt8], inheritedNamespace: String?) {
        out.append(UInt8(ascii: "<"))
        out.append(contentsOf: name.utf8)
        if namespace != inheritedNamespace {
            out.append(contentsOf: " xmlns='".utf8)
            XMLEscaping.appendEscaped(namespace, attribute: true, to: &out)
            out.append(UInt8(ascii: "'"))
        }
        for a in attributes {
            out.append(UInt8(ascii: " "))
            out.append(contentsOf: a.name.utf8)
            out.append(contentsOf: "='".utf8)
            XMLEscaping.appendEscaped(a.value, attribute: true, to: &out)
            out.append(UInt8(ascii: "'"))
        }
        if children.isEmpty && text.isEmpty {
            out.append(contentsOf: "/>".utf8)
            return
        }
        out.append(UInt8(ascii: ">"))
        XMLEscaping.appendEscaped(text, attribute: false, to: &out)
        for c in children { c.write(into: &out, inheritedNamespace: namespace) }
        out.append(contentsOf: "</".utf8)
        out.append(contentsOf: name.utf8)
        out.append(UInt8(ascii: ">"))
    }
}

public enum XMLEscaping {
    /// Appends `s` with `&`, `<`, `>` (and in attributes both quotes) escaped,
    /// characters XML 1.0 forbids replaced by U+FFFD.
    public static func appendEscaped(_ s: String, attribute: Bool, to out: inout [UInt8]) {
        let start = out.count
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "&"): out.append(contentsOf: "&amp;".utf8)
            case UInt8(ascii: "<"): out.append(contentsOf: "&lt;".utf8)
            case UInt8(ascii: ">"): out.append(contentsOf: "&gt;".utf8)
            case UInt8(ascii: "'") where attribute: out.append(contentsOf: "&apos;".utf8)
            case UInt8(ascii: "\"") where attribute: out.append(contentsOf: "&quot;".utf8)
            case 0x09, 0x0A, 0x0D:
                // In an attribute a raw tab or newline would be read back as a space.
                if attribute { out.append(contentsOf: "&#\(b);".utf8) } else { out.append(b) }
            case 0..<0x20: out.append(contentsOf: replacement)
            default: out.append(b)
            }
        }
        // U+FFFE and U+FFFF (EF BF BE / EF BF BF) are not XML characters either.
        if s.utf8.contains(0xEF) { replaceNonCharacters(in: &out, from: start) }
    }

    private static let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]

    private static func replaceNonCharacters(in out: inout [UInt8], from start: Int) {
        var i = start
        while i + 2 < out.count {
            if out[i] == 0xEF, out[i + 1] == 0xBF, out[i + 2] == 0xBE || out[i + 2] == 0xBF { out[i + 2] = 0xBD }
            i += 1
        }
    }
}
