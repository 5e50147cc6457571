import Foundation
import NIOCore
import Testing

@testable import SMTPWire

@Suite struct SMTPReplyParserTests {
    func parse(_ text: String, split: Int? = nil, parser: SMTPReplyParser = SMTPReplyParser()) throws(SMTPProtocolError) -> [SMTPReply] {
        var p = parser
        var out: [SMTPReply] = []
        let bytes = Array(text.utf8)
        let cut = split ?? bytes.count
        var buffer = ByteBuffer()
        for piece in [bytes[..<cut], bytes[cut...]] {
            buffer.writeBytes(piece)
            while let r = try p.next(&buffer) { out.append(r) }
        }
        return out
    }

    @Test func multiLineRepliesAtEverySplit() throws {
        let text = "250-mail.example.com Hello\r\n250-SIZE 10240000\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8\r\n354 go ahead\r\n"
        for cut in 0...text.utf8.count {
            let replies = try parse(text, split: cut)
            #expect(replies.count == 2, "split at \(cut)")
            #expect(replies.first?.lines == ["mail.example.com Hello", "SIZE 10240000", "PIPELINING", "AUTH PLAIN LOGIN", "SMTPUTF8"])
            #expect(replies.last?.code == 354)
        }
        let caps = SMTPCapabilities(ehlo: try parse(text)[0])
        #expect(caps.maxSize == 10_240_000)
        #expect(caps.pipelining && caps.smtpUTF8 && !caps.startTLS)
        #expect(caps.authMechanisms == ["PLAIN", "LOGIN"])
    }

    @Test func enhancedStatusCodes() throws {
        let r = try parse("550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n")[0]
        #expect(r.enhancedCode == "5.1.1")
        #expect(r.isPermanent)
        #expect(try parse("250 Ok\r\n")[0].enhancedCode == nil)
        #expect(try parse("451 4.7.1 Try again later\n")[0].enhancedCode == "4.7.1", "bare LF is tolerated")
        #expect(try parse("220\r\n")[0].lines == [""])
    }

    static let hostile: [(String, String, SMTPProtocolError.Kind)] = [
        ("garbage", "hello there\r\n", .malformedReply),
        ("code out of range", "999 what\r\n", .malformedReply),
        ("code 100", "100 what\r\n", .malformedReply),
        ("short", "25\r\n", .malformedReply),
        ("bad separator", "250/ok\r\n", .malformedReply),
        ("mixed codes", "250-a\r\n251 b\r\n", .mixedCodes),
        ("over-long line", "250 " + String(repeating: "x", count: 5000) + "\r\n", .overlongLine),
        ("no line end, endless", "250 " + String(repeating: "x", count: 5000), .overlongLine),
        ("too many lines", String(repeating: "250-x\r\n", count: 200) + "250 x\r\n", .tooManyLines),
    ]

    @Test(arguments: hostile.indices)
    func hostileReplies(_ i: Int) {
        let (name, text, kind) = Self.hostile[i]
        do {
            _ = try parse(text)
            Issue.record("\(name): accepted")
        } catch {
            #expect(error.kind == kind, "\(name): \(error)")
        }
    }

    @Test func randomBytesNeverCrash() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var p = SMTPReplyParser(maxLineBytes: 256, maxLines: 8)
            var buffer = ByteBuffer(bytes: (0..<Int.random(in: 0...600, using: &rng)).map { _ in
                [UInt8(ascii: "2"), UInt8(ascii: "5"), UInt8(ascii: "0"), UInt8(ascii: "-"), UInt8(ascii: " "), 0x0D, 0x0A, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
            })
            while (try? p.next(&buffer)) != nil, buffer.readableBytes > 0 {}
            #expect(buffer.readableBytes <= 600)
        }
    }
}

@Suite struct MIMETests {
    @Test func quotedPrintableKeepsLinesShortAndRoundTrips() {
        let text = "Grüße aus Köln — " + String(repeating: "long line ", count: 30) + "end \nsecond = line\ttab "
        let qp = MIMEEncoding.quotedPrintable(text)
        for line in qp.components(separatedBy: "\r\n") { #expect(line.utf8.count <= 76, "\(line)") }
        #expect(qp.unicodeScalars.allSatisfy { $0.isASCII })
        #expect(decodeQP(qp) == text.replacingOccurrences(of: "\n", with: "\r\n"))
    }

    func decodeQP(_ s: String) -> String {
        var bytes: [UInt8] = []
        let b = Array(s.replacingOccurrences(of: "=\r\n", with: "").utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "="), i + 2 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
                bytes.append(v)
                i += 3
            } else {
                bytes.append(b[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func encodedWordsForNonASCIIHeaders() {
        #expect(MIMEEncoding.headerText("plain subject") == "plain subject")
        let words = MIMEEncoding.headerText(String(repeating: "日本語のテキスト", count: 6))
        for w in words.split(separator: " ") {
            #expect(w.hasPrefix("=?UTF-8?B?") && w.hasSuffix("?="))
            #expect(w.count <= 75)
        }
        #expect(MIMEEncoding.displayName("Alice \"A\" Smith") == "\"Alice \\\"A\\\" Smith\"")
    }

    @Test func foldedHeaders() {
        let h = MIMEEncoding.header("References", (0..<20).map { "<id\($0)@example.com>" }.joined(separator: " "))
        let lines = h.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(lines.count > 1)
        #expect(lines.allSatisfy { $0.utf8.count <= 78 })
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix(" ") })
    }

    @Test func dotStuffingAndLineEnds() {
        let message = Array(".leading dot\nbare LF\r\n..two dots\rbare CR\r\n.\r\nlast".utf8)
        let out = String(decoding: SMTPData.stuffed(message), as: UTF8.self)
        #expect(out == "..leading dot\r\nbare LF\r\n...two dots\r\nbare CR\r\n..\r\nlast\r\n.\r\n")
        #expect(String(decoding: SMTPData.stuffed([]), as: UTF8.self) == ".\r\n")
    }

    @Test func composedMailIsSevenBitWithShortLines() {
        let draft = MailDraft(
            from: MailAddress(name: "Zoë (via MSRP)", address: "gw@example.com"), replyTo: MailAddress(address: "ops@example.com"),
            to: [MailAddress(address: "oncall@example.com")], subject: "Störung in Halle 3", date: Date(timeIntervalSince1970: 1_790_000_000),
            messageID: "<event.1@example.com>", inReplyTo: "<session.s1@example.com>", references: ["<session.s1@example.com>"],
            content: .html("<p>Hallo <b>Welt</b> &amp; mehr</p>" + String(repeating: "x", count: 2000)))
        let text = String(decoding: draft.composed(), as: UTF8.self)
        #expect(text.unicodeScalars.allSatisfy { $0.isASCII })
        #expect(text.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 998 })
        #expect(text.contains("Content-Type: multipart/alternative"))
        #expect(text.contains("Message-ID: <event.1@example.com>"))
        #expect(text.contains("Date: Mon, 21 Sep 2026"))
        #expect(HTMLText.plain( "<p>Hallo <b>Welt</b> &amp; mehr</p><br/>x") == "Hallo Welt & mehr\n\nx")
    }

    @Test func addressValidation() {
        #expect(MailAddress(address: "a@b.example").isValid)
        for bad in ["", "a", "@b", "a@", "a b@c", "a@b>c", "a@b\r\nRCPT TO:<x@y>", "a,b@c"] { #expect(!MailAddress(address: bad).isValid, "\(bad)") }
        #expect(MailAddress(address: "jörg@example.de").needsSMTPUTF8)
    }
}
