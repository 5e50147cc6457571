import Foundation
import Testing

@testable import SMTPWire

@Suite struct CharsetTests {
    @Test(arguments: [
        ("ISO-8859-1", [0x63, 0x61, 0x66, 0xE9] as [UInt8], "café"),
        ("iso-8859-15", [0xA4], "€"),
        ("windows-1252", [0x93, 0x68, 0x69, 0x94], "\u{201C}hi\u{201D}"),
        ("Windows-1250", [0x9A, 0x65, 0x9D], "šeť"),
        ("iso-8859-2", [0xB9], "š"),
        ("KOI8-R", [0xF0, 0xD2, 0xC9, 0xD7, 0xC5, 0xD4], "Привет"),
        ("\"utf-8\"", [0xC3, 0xA9], "é"),
        ("ISO-2022-JP", [0x1B, 0x24, 0x42, 0x24, 0x33, 0x24, 0x73, 0x1B, 0x28, 0x42], "こん"),
        ("us-ascii", [0xC3, 0xA9], "é"),  // mislabelled UTF-8 reads as UTF-8
        ("us-ascii", [0xE9], "é"),  // mislabelled Latin-1 as Windows-1252
        ("x-unknown-charset", [0x68, 0x69], "hi"),
        ("utf-8//TRANSLIT", [0x68, 0x69], "hi"),  // not a charset name: iconv options are never passed
    ])
    func decodes(_ charset: String, _ bytes: [UInt8], _ text: String) {
        #expect(Charset.decode(bytes, charset: charset) == text)
    }

    @Test func invalidBytesBecomeReplacementCharacters() {
        #expect(Charset.decode([0x61, 0xFF, 0x62], charset: "utf-8") == "a\u{FFFD}b")
        #expect(Charset.decode([0x82, 0xA0, 0x82], charset: "Shift_JIS") == "あ\u{FFFD}", "cut short")
    }
}

@Suite struct TransferDecodingTests {
    @Test func base64AcrossLinesAndJunk() {
        #expect(TransferDecoding.base64(Array("aGVs\r\nbG8g\nd29y bGQ=\r\n".utf8)[...]) == Array("hello world".utf8))
    }

    @Test func quotedPrintableSoftBreaksAndStrays() {
        let qp = "caf=C3=A9 =\r\nau lait=\nX =3d 1 = 2=\r\n"
        #expect(String(decoding: TransferDecoding.quotedPrintable(Array(qp.utf8)[...]), as: UTF8.self) == "café au laitX = 1 = 2")
    }

    @Test(arguments: [
        // RFC 2047 §8's examples.
        ("(=?ISO-8859-1?Q?a?=)", "(a)"),
        ("(=?ISO-8859-1?Q?a?= b)", "(a b)"),
        ("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a?=  \t =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
        ("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"),
        ("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore"),
        ("=?UTF-8?B?w6lsw6h2ZQ==?= Smith", "élève Smith"),
        ("=?utf-8?X?broken?= plain", "=?utf-8?X?broken?= plain"),
        ("no words", "no words"),
    ])
    func encodedWords(_ value: String, _ text: String) {
        #expect(EncodedWords.decode(value) == text)
    }

    @Test func rfc2231Parameters() {
        let p = HeaderParameters("""
            message/external-body; access-type=URL; URL*0="ftp://"; URL*1="cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"; \
            title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2="isn't it!"
            """)
        #expect(p.value == "message/external-body")
        #expect(p["access-type"] == "URL")
        #expect(p["url"] == "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar")
        #expect(p["title"] == "This is even more ***fun*** isn't it!")
        #expect(HeaderParameters("attachment; filename*=UTF-8''na%C3%AFve%20file.txt")["filename"] == "naïve file.txt")
        #expect(HeaderParameters("text/plain; charset=\"iso-8859-1\"; format=flowed")["charset"] == "iso-8859-1")
        #expect(HeaderParameters("attachment; filename=\"a;b \\\"c\\\".txt\"")["filename"] == "a;b \"c\".txt")
    }
}

@Suite struct MIMEPartTests {
    static let mail = """
        From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>\r
        Subject: =?UTF-8?B?UmU6IGNhZsOp?=\r
        Content-Type: multipart/mixed; boundary="outer"\r
        \r
        preamble\r
        --outer\r
        Content-Type: multipart/alternative; boundary=inner\r
        \r
        --inner\r
        Content-Type: text/plain; charset=iso-8859-1\r
        Content-Transfer-Encoding: quoted-printable\r
        \r
        Voil=E0\r
        --inner\r
        Content-Type: text/html; charset=utf-8\r
        \r
        <p>Voilà</p>\r
        --inner--\r
        --outer\r
        Content-Type: image/png; name="x.png"\r
        Content-Disposition: attachment; filename*=utf-8''%C3%A9t%C3%A9.png\r
        Content-Transfer-Encoding: base64\r
        \r
        iVBORw0KGgo=\r
        --outer--\r
        epilogue\r
        """

    @Test func nestedMultipart() {
        let m = MIMEPart.parse(Array(Self.mail.utf8))
        #expect(m.headers.decoded("From") == "André <andre@example.org>")
        #expect(m.headers.decoded("subject") == "Re: café")
        #expect(m.mediaType == "multipart/mixed")
        #expect(m.parts.count == 2)
        #expect(m.parts[0].parts.map(\.mediaType) == ["text/plain", "text/html"])
        #expect(m.parts[0].parts[0].text == "Voilà")
        #expect(m.parts[0].parts[1].text == "<p>Voilà</p>")
        #expect(m.parts[1].filename == "été.png")
        #expect(m.parts[1].disposition.value == "attachment")
        #expect(m.parts[1].decodedBody == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(m.leaves.count == 3)
    }

    @Test func boundedDepthAndParts() {
        // 50 nested multiparts: parsed to the depth bound, the rest an undivided body.
        var body = "text\r\n"
        for i in (0..<50).reversed() {
            body = "Content-Type: multipart/mixed; boundary=b\(i)\r\n\r\n--b\(i)\r\n\(body)\r\n--b\(i)--\r\n"
        }
        var depth = 0
        var part = MIMEPart.parse(Array(body.utf8))
        while let child = part.parts.first {
            depth += 1
            part = child
        }
        #expect(depth == MIMEPart.maxDepth)
        // 10,000 parts: the first maxParts are read.
        let many = "Content-Type: multipart/mixed; boundary=x\r\n\r\n" + String(repeating: "--x\r\n\r\nhi\r\n", count: 10_000) + "--x--\r\n"
        #expect(MIMEPart.parse(Array(many.utf8)).parts.count == MIMEPart.maxParts)
    }

    @Test func noHeadersNoBoundaryNoEnd() {
        #expect(MIMEPart.parse(Array("just text".utf8)).text == "just text")
        let unterminated = MIMEPart.parse(Array("Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n\r\nhello".utf8))
        #expect(unterminated.parts.map(\.text) == ["hello"])
        #expect(MIMEPart.parse([]).text == "")
    }
}

@Suite struct ReplyTextTests {
    @Test(arguments: [
        // Thunderbird
        ("Sounds good.\n\nOn 04/12/2026 10:00, Alice wrote:\n> Lunch at noon?\n> \n", "Sounds good."),
        // Gmail, attribution wrapped over two lines
        ("Yes!\r\n\r\nOn Fri, Dec 4, 2026 at 10:00 AM Alice Example <\r\nalice@example.com> wrote:\r\n\r\n> Lunch?\r\n", "Yes!"),
        // Apple Mail
        ("Fine\n\n> On 4 Dec 2026, at 10:00, Alice <a@x> wrote:\n> \n> Lunch?", "Fine"),
        // Outlook
        ("Agreed.\r\n\r\n________________________________\r\nFrom: Alice <a@x>\r\nSent: Friday, December 4, 2026 10:00\r\nTo: Bob\r\nSubject: Lunch\r\n\r\nLunch?", "Agreed."),
        ("Agreed.\n\n-----Original Message-----\nFrom: Alice\nSent: today\nLunch?", "Agreed."),
        ("Ok\n\nFrom: Alice <a@x>\nSent: Friday\nTo: Bob\nSubject: Lunch\n\nLunch?", "Ok"),
        // German and French attributions
        ("Ja.\n\nAm 04.12.2026 um 10:00 schrieb Alice:\n> Mittag?", "Ja."),
        ("Oui.\n\nLe 4 déc. 2026 à 10:00, Alice a écrit :\n> Midi ?", "Oui."),
        // Signature
        ("See you\n-- \nBob\nACME Corp", "See you"),
        // Interleaved
        ("> Lunch?\nYes.\n> Where?\nThe usual place.\n", "Yes.\nThe usual place."),
        // Forwarded
        ("FYI\n\n---------- Forwarded message ---------\nFrom: X\nDate: Y\nSubject: Z\n\nold", "FYI"),
        // "On ... wrote:" that is not followed by a quote stays
        ("On Monday I wrote:\nthe report is done", "On Monday I wrote:\nthe report is done"),
        // Blank lines squeezed, trailing space trimmed
        ("\n\nHello   \n\n\n\nworld\n\n", "Hello\n\nworld"),
    ])
    func newPart(_ text: String, _ expected: String) {
        #expect(ReplyText.newPart(of: text) == expected)
    }

    @Test func htmlQuotesBecomeQuotedLines() {
        let gmail = """
            <div dir="ltr">Sure, <b>noon</b> works&nbsp;&amp; fine</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Fri, Dec 4, 2026 at 10:00 AM Alice &lt;<a href="mailto:a@x">a@x</a>&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0">Lunch?<br>At noon</blockquote></div>
            """
        let text = HTMLText.plain(gmail)
        #expect(text.contains("> Lunch?"), "\(text)")
        #expect(ReplyText.newPart(of: text) == "Sure, noon works & fine")
        #expect(HTMLText.plain("<html><head><style>p{color:red}</style><title>t</title></head><body><p>x&#233;&#x263A;</p><script>alert(1)</script></body></html>") == "xé☺")
    }
}

@Suite struct DeliveryStatusTests {
    /// As Postfix's bounce(8) writes it.
    static let postfixBounce = """
        From: MAILER-DAEMON@postfix.test (Mail Delivery System)\r
        Subject: Undelivered Mail Returned to Sender\r
        Auto-Submitted: auto-replied\r
        MIME-Version: 1.0\r
        Content-Type: multipart/report; report-type=delivery-status;\r
        \tboundary="8A1B2C.1733300000/postfix.test"\r
        \r
        This is a MIME-encapsulated message.\r
        \r
        --8A1B2C.1733300000/postfix.test\r
        Content-Description: Notification\r
        Content-Type: text/plain; charset=us-ascii\r
        \r
        I'm sorry to have to inform you that your message could not be delivered.\r
        \r
        --8A1B2C.1733300000/postfix.test\r
        Content-Description: Delivery report\r
        Content-Type: message/delivery-status\r
        \r
        Reporting-MTA: dns; postfix.test\r
        X-Postfix-Queue-ID: 8A1B2C\r
        Arrival-Date: Fri,  4 Dec 2026 10:00:00 +0000 (UTC)\r
        \r
        Final-Recipient: rfc822; nobody@example.org\r
        Original-Recipient: rfc822;nobody@example.org\r
        Action: failed\r
        Status: 5.1.1\r
        Diagnostic-Code: X-Postfix; unknown user: "nobody"\r
        \r
        Final-Recipient: rfc822; slow@example.net\r
        Action: delayed\r
        Status: 4.4.1\r
        \r
        --8A1B2C.1733300000/postfix.test\r
        Content-Description: Undelivered Message Headers\r
        Content-Type: text/rfc822-headers\r
        \r
        Message-ID: <event.1@gw.example>\r
        \r
        --8A1B2C.1733300000/postfix.test--\r
        """

    @Test func postfixBounce() throws {
        let report = try #require(DeliveryStatus(MIMEPart.parse(Array(Self.postfixBounce.utf8))))
        #expect(report.reportingMTA == "postfix.test")
        #expect(report.recipients.count == 2)
        #expect(report.recipients[0] == .init(address: "nobody@example.org", action: .failed, status: "5.1.1", diagnostic: "unknown user: \"nobody\""))
        #expect(report.recipients[0].msrpCode == 404)
        #expect(report.recipients[1].action == .delayed)
    }

    @Test func notAReport() {
        #expect(DeliveryStatus(MIMEPart.parse(Array("Subject: hi\r\n\r\nhello".utf8))) == nil)
        #expect(DeliveryStatus(MIMEPart.parse(Array("Content-Type: multipart/report; report-type=disposition-notification; boundary=x\r\n\r\n--x\r\n\r\n--x--".utf8))) == nil)
    }

    @Test(arguments: [("5.1.1", 404), ("5.1.10", 403), ("5.2.2", 403), ("5.2.3", 413), ("5.3.4", 413), ("5.6.0", 415), ("4.4.7", 408), ("5.7.1", 403), ("", 403)])
    func statusToMSRP(_ status: String, _ code: Int) {
        #expect(EnhancedStatus.msrpCode(status) == code)
    }
}

@Suite struct MailTokenTests {
    let keys = try! MailTokenKeys(secrets: ["a secret of sixteen+ bytes"])
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func roundTripFitsALocalPart() throws {
        let token = MailToken(kind: .reply, event: 0x7FFF_FFFF_FFFF_FFFF, expires: now.addingTimeInterval(86400))
        let local = token.localPart(signedWith: keys)
        #expect(local.hasPrefix("reply+"))
        #expect(local.utf8.count <= 64, "\(local)")
        #expect(try MailToken.verify(localPart: local, keys: keys, now: now) == token)
        #expect(try MailToken.verify(localPart: local.uppercased(), keys: keys, now: now) == token, "an MTA changing the case")
    }

    @Test func refusals() throws {
        let local = MailToken(kind: .reply, event: 42, expires: now.addingTimeInterval(60)).localPart(signedWith: keys)
        #expect(throws: MailToken.Refusal.forged) { try MailToken.verify(localPart: "bounce+" + local.dropFirst(6), keys: keys, now: now) }
        let other = try MailTokenKeys(secrets: ["another secret, 16 bytes or more"])
        #expect(throws: MailToken.Refusal.forged) { try MailToken.verify(localPart: local, keys: other, now: now) }
        var flipped = Array(local)
        flipped[10] = flipped[10] == "a" ? "b" : "a"
        #expect(throws: MailToken.Refusal.forged) { try MailToken.verify(localPart: String(flipped), keys: keys, now: now) }
        #expect(throws: MailToken.Refusal.malformed) { try MailToken.verify(localPart: "reply+abc", keys: keys, now: now) }
        #expect(throws: MailToken.Refusal.malformed) { try MailToken.verify(localPart: "reply+" + String(repeating: "!", count: 36), keys: keys, now: now) }
        #expect(throws: MailToken.Refusal.notOurs) { try MailToken.verify(localPart: "postmaster", keys: keys, now: now) }
        #expect(throws: MailToken.Refusal.notOurs) { try MailToken.verify(localPart: "other+x", keys: keys, now: now) }
        do {
            _ = try MailToken.verify(localPart: local, keys: keys, now: now.addingTimeInterval(120))
            Issue.record("an expired token must be refused")
        } catch {
            if case .expired = error {} else { Issue.record("refused as \(error), not expired") }
        }
    }

    @Test func rotation() throws {
        let local = MailToken(kind: .bounce, event: 7, expires: now.addingTimeInterval(60)).localPart(signedWith: keys)
        let rotated = try MailTokenKeys(secrets: ["the new secret, sixteen bytes", "a secret of sixteen+ bytes"])
        #expect(try MailToken.verify(localPart: local, keys: rotated, now: now).event == 7)
        #expect(throws: MailTokenKeys.Invalid.self) { try MailTokenKeys(secrets: ["short"]) }
        #expect(throws: MailTokenKeys.Invalid.self) { try MailTokenKeys(secrets: []) }
    }
}


@Suite struct MailDateTests {
    @Test(arguments: [
        ("Fri, 4 Dec 2026 10:00:00 +0100", "2026-12-04T09:00:00Z"),
        ("4 Dec 2026 10:00 -0000", "2026-12-04T10:00:00Z"),
        ("Fri,  4 Dec 26 10:00:00 GMT (UTC)", "2026-12-04T10:00:00Z"),
        ("Thu, 3 Dec 2026 23:30:15 PST", "2026-12-04T07:30:15Z"),
    ])
    func parses(_ text: String, _ rfc3339: String) throws {
        let date = try #require(MailDate.parse(text))
        let f = ISO8601DateFormatter()
        #expect(f.string(from: date) == rfc3339)
    }

    @Test(arguments: ["", "yesterday", "Fri, 40 Dec 2026 10:00:00 +0000", "4 Foo 2026 10:00", "4 Dec 2026 25:00"])
    func refuses(_ text: String) {
        #expect(MailDate.parse(text) == nil)
    }
}
