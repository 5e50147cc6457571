/// RFC 5438 (IMDN): what a sender asks for inside CPIM, and the notifications.
public enum IMDN {
    /// The CPIM namespace of the request headers.
    public static let namespace = "urn:ietf:params:imdn"
    /// The XML namespace of notifications.
    public static let xmlNamespace = "urn:ietf:params:xml:ns:imdn"
    public static let contentType = "message/imdn+xml"
}

/// Dispositions a sender may ask to be told about.
public enum IMDNDisposition: String, Sendable, Hashable, CaseIterable {
    case positiveDelivery = "positive-delivery"
    case negativeDelivery = "negative-delivery"
    case display
    case processing
}

/// The notification request carried in a CPIM message's `imdn.*` headers.
public struct IMDNRequest: Sendable, Hashable {
    public var messageID: String
    public var dispositions: [IMDNDisposition]
    public var originalTo: String?
    /// IMDN-Record-Route values, in order (the route a notification takes back).
    public var recordRoute: [String]
    public var route: [String]

    public init(messageID: String, dispositions: [IMDNDisposition], originalTo: String? = nil, recordRoute: [String] = [], route: [String] = []) {
        self.messageID = messageID
        self.dispositions = dispositions
        self.originalTo = originalTo
        self.recordRoute = recordRoute
        self.route = route
    }

    /// The request in `message`, whatever prefix it declared for the IMDN
    /// namespace; nil when it asks for nothing. Unknown disposition tokens are
    /// ignored (RFC 5438 §7.2.1.1: a recipient answers the ones it knows).
    public init?(_ message: CPIMMessage) {
        guard let id = message.values(namespace: IMDN.namespace, "Message-ID").first?.trimmingASCIIWhitespace(), !id.isEmpty
        else { return nil }
        let tokens = message.values(namespace: IMDN.namespace, "Disposition-Notification")
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingASCIIWhitespace().lowercased() }
        self.init(
            messageID: id, dispositions: tokens.compactMap(IMDNDisposition.init(rawValue:)),
            originalTo: message.values(namespace: IMDN.namespace, "Original-To").first,
            recordRoute: message.values(namespace: IMDN.namespace, "IMDN-Record-Route"),
            route: message.values(namespace: IMDN.namespace, "IMDN-Route"))
    }

    /// The headers that carry this request, with prefix `imdn` (declare it with
    /// `NS: imdn <urn:ietf:params:imdn>`).
    public var headers: [CPIMHeader] {
        var h = [CPIMHeader(name: "imdn.Message-ID", value: messageID)]
        if !dispositions.isEmpty {
            h.append(CPIMHeader(name: "imdn.Disposition-Notification", value: dispositions.map(\.rawValue).joined(separator: ", ")))
        }
        if let originalTo { h.append(CPIMHeader(name: "imdn.Original-To", value: originalTo)) }
        h += recordRoute.map { CPIMHeader(name: "imdn.IMDN-Record-Route", value: $0) }
        h += route.map { CPIMHeader(name: "imdn.IMDN-Route", value: $0) }
        return h
    }
}

/// A message/imdn+xml notification (RFC 5438 §7.2).
public struct IMDNNotification: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case delivery = "delivery-notification"
        case display = "display-notification"
        case processing = "processing-notification"
    }

    /// The `imdn.Message-ID` of the message this is about.
    public var messageID: String
    /// The `DateTime` of that message.
    public var dateTime: String
    public var recipientURI: String?
    public var originalRecipientURI: String?
    public var subject: String?
    public var kind: Kind
    /// `delivered`, `failed`, `forbidden`, `error`, `displayed`, `processed`, `stored`.
    public var status: String

    public init(
        messageID: String, dateTime: String, recipientURI: String? = nil, originalRecipientURI: String? = nil,
        subject: String? = nil, kind: Kind = .delivery, status: String
    ) {
        self.messageID = messageID
        self.dateTime = dateTime
        self.recipientURI = recipientURI
        self.originalRecipientURI = originalRecipientURI
        self.subject = subject
        self.kind = kind
        self.status = status
    }

    /// The XML document.
    public var xml: String {
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<imdn xmlns=\"\(IMDN.xmlNamespace)\">\r\n"
        s += "  <message-id>\(xmlEscape(messageID))</message-id>\r\n"
        s += "  <datetime>\(xmlEscape(dateTime))</datetime>\r\n"
        if let r = recipientURI { s += "  <recipient-uri>\(xmlEscape(r))</recipient-uri>\r\n" }
        if let r = originalRecipientURI { s += "  <original-recipient-uri>\(xmlEscape(r))</original-recipient-uri>\r\n" }
        if let subject { s += "  <subject>\(xmlEscape(subject))</subject>\r\n" }
        s += "  <\(kind.rawValue)>\r\n    <status>\r\n      <\(status)/>\r\n    </status>\r\n  </\(kind.rawValue)>\r\n</imdn>\r\n"
        return s
    }

    /// Reads a notification document. Rejects anything that is not an `imdn`
    /// element in the IMDN namespace with a message-id and one notification.
    public init(xml bytes: [UInt8]) throws(CPIMError) {
        let root = try XMLReader(maxBytes: 64 * 1024, maxDepth: 16).parse(bytes)
        guard root.name == "imdn", root.namespace == IMDN.xmlNamespace else {
            throw CPIMError(.notIMDN, "root element is <\(root.name)> in \(root.namespace ?? "no namespace")")
        }
        guard let id = root.child("message-id")?.text, !id.isEmpty else { throw CPIMError(.notIMDN, "no message-id") }
        guard let (kind, element) = [Kind.delivery, .display, .processing].lazy.compactMap({ k in root.child(k.rawValue).map { (k, $0) } }).first,
            let status = element.child("status")?.children.first?.name
        else { throw CPIMError(.notIMDN, "no notification with a status") }
        self.init(
            messageID: id, dateTime: root.child("datetime")?.text ?? "", recipientURI: root.child("recipient-uri")?.text,
            originalRecipientURI: root.child("original-recipient-uri")?.text, subject: root.child("subject")?.text,
            kind: kind, status: status)
    }

    /// The notification as a CPIM message from `from` (the recipient of the
    /// original) to `to` (its sender), with its own `imdn.Message-ID`.
    public func cpim(from: CPIMAddress, to: CPIMAddress, notificationID: String, dateTime: String) -> CPIMMessage {
        CPIMMessage.make(
            from: from, to: [to], dateTime: dateTime, namespaces: [("imdn", IMDN.namespace)],
            extraHeaders: [CPIMHeader(name: "imdn.Message-ID", value: notificationID)],
            contentType: IMDN.contentType, contentHeaders: [CPIMHeader(name: "Content-Disposition", value: "notification")],
            content: Array(xml.utf8))
    }
}

func xmlEscape(_ s: String) -> String {
    var out = ""
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}
