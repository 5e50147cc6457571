/// A stanza-level error (RFC 6120 §8.3): the server or the recipient refused
/// one stanza; the stream goes on.
public struct XMPPStanzaError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `cancel`, `continue`, `modify`, `auth` or `wait`.
    public var type: String
    /// The defined condition (`item-not-found`, `service-unavailable`...).
    public var condition: String
    public var text: String?

    public init(type: String, condition: String, text: String? = nil) {
        self.type = type
        self.condition = condition
        self.text = text
    }

    /// The `<error/>` child of a stanza of type `error`.
    public init?(stanza: XMPPElement) {
        guard stanza["type"] == "error" else { return nil }
        let error = stanza.children.first { $0.name == "error" }
        let condition = error?.children.first { $0.namespace == XMPPNamespace.stanzas && $0.name != "text" }?.name
        self.init(type: error?["type"] ?? "cancel", condition: condition ?? "undefined-condition",
                  text: error?.child("text", namespace: XMPPNamespace.stanzas)?.text)
    }

    public var description: String { "\(type)/\(condition)" + (text.map { " (\($0))" } ?? "") }

    /// The `<error/>` element for a reply.
    public var element: XMPPElement {
        var children = [XMPPElement(condition, namespace: XMPPNamespace.stanzas)]
        if let text { children.append(XMPPElement("text", namespace: XMPPNamespace.stanzas, text: text)) }
        return XMPPElement("error", namespace: XMPPNamespace.component, ["type": type], children: children)
    }
}
