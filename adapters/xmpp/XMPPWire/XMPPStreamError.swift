/// Why an XMPP stream ends (RFC 6120 §4.9.3): what our parser found wrong in
/// what the server sent, or the `<stream:error/>` the server sent us.
public struct XMPPStreamError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The defined condition's element name (`restricted-xml`, `not-authorized`...).
    public var condition: String
    /// Why, for the log: never sent to the peer as more than the condition.
    public var detail: String

    public init(_ condition: String, _ detail: String) {
        self.condition = condition
        self.detail = detail
    }

    public var description: String { "stream error <\(condition)/>: \(detail)" }

    public static let badFormat = "bad-format"
    public static let notWellFormed = "not-well-formed"
    /// Comments, processing instructions, DTDs, entity declarations or
    /// references other than the predefined ones (RFC 6120 §11.1).
    public static let restrictedXML = "restricted-xml"
    /// Over a size, depth or count limit.
    public static let policyViolation = "policy-violation"
    /// Not UTF-8, or not valid UTF-8 (§11.6).
    public static let unsupportedEncoding = "unsupported-encoding"
    public static let invalidNamespace = "invalid-namespace"
    public static let badNamespacePrefix = "bad-namespace-prefix"
    public static let notAuthorized = "not-authorized"

    public static let namespace = "urn:ietf:params:xml:ns:xmpp-streams"

    /// The `<stream:error>` element a server sent: its condition and text.
    public init(received element: XMPPElement) {
        let condition = element.children.first { $0.namespace == Self.namespace && $0.name != "text" }?.name ?? "undefined-condition"
        let text = element.child("text", namespace: Self.namespace)?.text
        self.init(condition, text.map { "the server said: \($0)" } ?? "sent by the server")
    }

    /// Our `<stream:error/>` for this condition, to send before closing, with
    /// the `stream:` prefix the stream header bound.
    public var serialized: String {
        "<stream:error><\(condition) xmlns='\(Self.namespace)'/></stream:error>"
    }
}

public enum XMPPNamespace {
    public static let streams = "http://etherx.jabber.org/streams"
    public static let component = "jabber:component:accept"
    public static let stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
    public static let receipts = "urn:xmpp:receipts"
    public static let stanzaID = "urn:xmpp:sid:0"
    public static let delay = "urn:xmpp:delay"
    public static let ping = "urn:xmpp:ping"
    public static let discoInfo = "http://jabber.org/protocol/disco#info"
    public static let discoItems = "http://jabber.org/protocol/disco#items"
    public static let version = "jabber:iq:version"
    public static let chatMarkers = "urn:xmpp:chat-markers:0"
    public static let muc = "http://jabber.org/protocol/muc"
    public static let mucUser = "http://jabber.org/protocol/muc#user"
}
