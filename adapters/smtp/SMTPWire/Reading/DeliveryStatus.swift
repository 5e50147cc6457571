/// A delivery status notification (RFC 3464): `multipart/report;
/// report-type=delivery-status` with a `message/delivery-status` part (or the
/// `message/global-delivery-status` of RFC 6533), read into one entry per
/// recipient.
public struct DeliveryStatus: Sendable, Hashable {
    public enum Action: String, Sendable {
        case failed, delayed, delivered, relayed, expanded
    }

    public struct Recipient: Sendable, Hashable {
        /// The address part of Final-Recipient (`rfc822;bob@example.org`).
        public var address: String
        public var action: Action
        /// The enhanced status code (`5.1.1`).
        public var status: String
        /// Diagnostic-Code's text, when given (`smtp; 550 5.1.1 No such user`).
        public var diagnostic: String?

        /// The MSRP status for a failure REPORT about this recipient.
        public var msrpCode: Int { EnhancedStatus.msrpCode(status) }
    }

    public var reportingMTA: String?
    public var recipients: [Recipient]

    /// The report in `mail`, nil when it is not one.
    public init?(_ mail: MIMEPart) {
        let report = mail.mediaType == "multipart/report" ? mail : mail.parts.first { $0.mediaType == "multipart/report" }
        guard let report, report.contentType["report-type"]?.lowercased() == "delivery-status" || report.contentType["report-type"]?.lowercased() == "global-delivery-status",
              let status = report.parts.first(where: { $0.mediaType == "message/delivery-status" || $0.mediaType == "message/global-delivery-status" })
        else { return nil }
        // Groups of fields separated by blank lines: the message's, then one per recipient.
        var groups: [MailHeaders] = []
        var rest = status.decodedBody[...]
        while !rest.isEmpty, groups.count < 1_000 {
            while let f = rest.first, f == 0x0D || f == 0x0A { rest = rest.dropFirst() }
            guard !rest.isEmpty else { break }
            let (fields, next) = MailHeaders.parse(rest)
            if fields.fields.isEmpty { break }
            groups.append(fields)
            rest = rest[next...]
        }
        guard let first = groups.first else { return nil }
        reportingMTA = first["Reporting-MTA"].map(Self.typedValue)
        recipients = groups.dropFirst().compactMap { g in
            guard let final = g["Final-Recipient"] ?? g["Original-Recipient"],
                  let action = g["Action"].flatMap({ Action(rawValue: $0.trimmingSpaces().lowercased().split(separator: " ").first.map(String.init) ?? "") })
            else { return nil }
            let status = g["Status"].map { String($0.trimmingSpaces().prefix { !$0.isWhitespace }) } ?? (action == .failed ? "5.0.0" : "4.0.0")
            return Recipient(address: Self.typedValue(final), action: action, status: status, diagnostic: g["Diagnostic-Code"].map(Self.typedValue))
        }
        guard !recipients.isEmpty else { return nil }
    }

    /// `rfc822; bob@example.org` → `bob@example.org`.
    static func typedValue(_ v: String) -> String {
        guard let semi = v.firstIndex(of: ";") else { return v.trimmingSpaces() }
        return String(v[v.index(after: semi)...]).trimmingSpaces()
    }
}

/// Enhanced mail system status codes (RFC 3463) as MSRP statuses for a
/// failure REPORT: 404 for a bad address (x.1.x), 413 for size (x.2.3, x.3.4,
/// a 552), 415 for content (x.6.x), 408 for a time-out (x.4.7, expired),
/// 403 for everything else.
public enum EnhancedStatus {
    public static func msrpCode(_ status: String, replyCode: Int? = nil) -> Int {
        let parts = status.split(separator: ".")
        let subject = parts.count == 3 ? String(parts[1]) : ""
        let detail = parts.count == 3 ? String(parts[2]) : ""
        if replyCode == 552 || (subject == "2" && detail == "3") || (subject == "3" && detail == "4") { return 413 }
        if subject == "6" { return 415 }
        if subject == "1", ["1", "2", "3", "6"].contains(detail) { return 404 }
        if subject == "4", detail == "7" { return 408 }
        return 403
    }
}
