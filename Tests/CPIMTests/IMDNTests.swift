import Testing

@testable import CPIM

@Suite struct IMDNNotificationTests {
    @Test func buildsAndParsesADeliveryNotification() throws {
        let n = IMDNNotification(
            messageID: "34jk324j", dateTime: "2008-04-04T12:16:49-05:00", recipientURI: "sip:ops@gw.example",
            originalRecipientURI: "sip:ops@gw.example", subject: "a <b> & \"c\"", status: "delivered")
        let parsed = try IMDNNotification(xml: Array(n.xml.utf8))
        #expect(parsed == n)
        let failed = IMDNNotification(messageID: "x", dateTime: "d", status: "failed")
        #expect(try IMDNNotification(xml: Array(failed.xml.utf8)).status == "failed")
    }

    /// RFC 5438 §7.2.1.1's example, with a prefixed namespace and a comment.
    @Test func parsesForeignDocuments() throws {
        let doc = """
            <?xml version="1.0" encoding="UTF-8"?>
            <!-- from a peer -->
            <i:imdn xmlns:i="urn:ietf:params:xml:ns:imdn" xmlns:x="urn:other">
              <i:message-id>34jk324j</i:message-id>
              <i:datetime>2008-04-04T12:16:49-05:00</i:datetime>
              <i:recipient-uri>im:bob@example.com</i:recipient-uri>
              <i:display-notification><i:status><i:displayed/></i:status></i:display-notification>
              <x:extra a='1'>&#x41;&amp;<![CDATA[<raw>]]></x:extra>
            </i:imdn>
            """
        let n = try IMDNNotification(xml: Array(doc.utf8))
        #expect(n.kind == .display)
        #expect(n.status == "displayed")
        #expect(n.recipientURI == "im:bob@example.com")
    }

    @Test func notificationIsACPIMMessage() throws {
        let n = IMDNNotification(messageID: "orig-1", dateTime: "2026-11-24T10:00:00Z", recipientURI: "sip:ops@gw.example", status: "delivered")
        let m = n.cpim(from: CPIMAddress(uri: "sip:ops@gw.example"), to: CPIMAddress(uri: "sip:alice@example.com"), notificationID: "n-1", dateTime: "2026-11-24T10:00:01Z")
        let parsed = try CPIMParser().parse(m.serialized)
        #expect(parsed.contentType == "message/imdn+xml")
        #expect(parsed.contentHeader("Content-Disposition") == "notification")
        #expect(parsed.values(namespace: IMDN.namespace, "Message-ID") == ["n-1"])
        #expect(try IMDNNotification(xml: parsed.content) == n)
    }

    static let hostile: [(String, String)] = [
        ("DTD with entity expansion", "<!DOCTYPE lolz [<!ENTITY lol \"lol\">]><imdn xmlns=\"urn:ietf:params:xml:ns:imdn\">&lol;</imdn>"),
        ("external entity", "<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><imdn/>"),
        ("unknown entity", "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>&xxe;</message-id></imdn>"),
        ("mismatched tags", "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>x</datetime></imdn>"),
        ("unclosed root", "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>x</message-id>"),
        ("two roots", "<imdn/><imdn/>"),
        ("wrong namespace", "<imdn xmlns=\"urn:evil\"><message-id>x</message-id></imdn>"),
        ("no notification", "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>x</message-id></imdn>"),
        ("no status", "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>x</message-id><delivery-notification/></imdn>"),
        ("too deep", String(repeating: "<a>", count: 100) + String(repeating: "</a>", count: 100)),
        ("text outside root", "junk<imdn/>"),
        ("unterminated comment", "<!-- <imdn/>"),
        ("empty", ""),
        ("bad character reference", "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>&#xD800;</message-id></imdn>"),
    ]

    @Test(arguments: hostile.indices)
    func hostileDocumentsAreRefused(_ i: Int) {
        let (name, doc) = Self.hostile[i]
        #expect(throws: CPIMError.self, "\(name)") { _ = try IMDNNotification(xml: Array(doc.utf8)) }
    }

    @Test func oversizedDocumentIsRefused() {
        let big = "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>" + String(repeating: "x", count: 70_000) + "</message-id></imdn>"
        #expect(throws: CPIMError.self) { _ = try IMDNNotification(xml: Array(big.utf8)) }
    }
}
