/// What a reply says: its new text (plain text preferred, HTML made text,
/// the quoted history gone) and its attachments. Forwarded mails
/// (`message/rfc822`), signatures (`application/pkcs7-signature`,
/// `application/pgp-signature`) and images embedded in an HTML body (a
/// `Content-ID` inside `multipart/related`: logos in signatures) are not
/// attachments a person sent.
public struct ReplyContent: Sendable {
    public struct Attachment: Sendable, Hashable {
        public var contentType: String
        public var filename: String?
        public var bytes: [UInt8]
    }

    public var text: String
    public var attachments: [Attachment]
    /// Parts left out (forwarded mails, signatures, embedded images, past the limit).
    public var leftOut: Int

    public static let maxAttachments = 10

    public init(_ mail: MIMEPart) {
        var body: String?
        var attachments: [Attachment] = []
        var leftOut = 0
        func walk(_ part: MIMEPart, inRelated: Bool) {
            let type = part.mediaType
            switch type {
            case "multipart/alternative":
                let choice = part.parts.first { $0.mediaType == "text/plain" && $0.disposition.value != "attachment" }
                    ?? part.parts.first { $0.mediaType == "text/html" }
                    ?? part.parts.first { $0.isMultipart }
                if let choice { walk(choice, inRelated: inRelated) }
            case "multipart/signed":
                if let first = part.parts.first { walk(first, inRelated: inRelated) }
                leftOut += max(0, part.parts.count - 1)
            case _ where part.isMultipart:
                for child in part.parts { walk(child, inRelated: inRelated || type == "multipart/related") }
            case "message/rfc822", "message/global", "application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature":
                leftOut += 1
            case _ where (type == "text/plain" || type == "text/html") && body == nil && part.disposition.value != "attachment":
                body = type == "text/html" ? HTMLText.plain(part.text) : part.text
            default:
                if inRelated, part.headers["Content-ID"] != nil, part.disposition.value != "attachment" {
                    leftOut += 1
                } else if attachments.count < Self.maxAttachments {
                    attachments.append(Attachment(contentType: type, filename: part.filename, bytes: part.decodedBody))
                } else {
                    leftOut += 1
                }
            }
        }
        walk(mail, inRelated: false)
        self.text = ReplyText.newPart(of: body ?? "")
        self.attachments = attachments
        self.leftOut = leftOut
    }
}
