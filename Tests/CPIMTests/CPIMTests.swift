import Testing

@testable import CPIM

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite struct CPIMParsingTests {
    /// RFC 3862 §3.4-style message with a namespace, a language-tagged subject,
    /// escapes and an IMDN request (RFC 5438 §6.1.1 example headers).
    static let sample = """
        From: MR SANDERS <im:piglet@100akerwood.com>\r
        To: Depressed Donkey <im:eeyore@100akerwood.com>\r
        To: <sip:owl@100akerwood.com>\r
        cc: "Rabbit, the \\"Friend\\"" <im:rabbit@100akerwood.com>\r
        DateTime: 2000-12-13T13:40:00-08:00\r
        Subject: the weather will be fine today\r
        Subject:;lang=fr beau temps prevu pour aujourd'hui\r
        NS: MyFeatures <mid:MessageFeatures@id.foo.com>\r
        Require: MyFeatures.VitalMessageOption\r
        MyFeatures.VitalMessageOption: Confirmation-requested\r
        MyFeatures.WackyMessageOption: Use-silly-font\r
        NS: imdn <urn:ietf:params:imdn>\r
        imdn.Message-ID: 34jk324j\r
        imdn.Disposition-Notification: positive-delivery, negative-delivery, display\r
        X.Escaped: line one\\nline two \\\\ end\r
        \r
        Content-Type: text/xml; charset=utf-8\r
        Content-ID: <1234567890@foo.com>\r
        \r
        <body>
        Here is the text of my message.
        </body>
        """

    @Test func parsesEveryHeaderKind() throws {
        let m = try CPIMParser().parse(bytes(Self.sample))
        #expect(m.from == CPIMAddress(displayName: "MR SANDERS", uri: "im:piglet@100akerwood.com"))
        #expect(m.to.map(\.uri) == ["im:eeyore@100akerwood.com", "sip:owl@100akerwood.com"])
        #expect(m.to[1].displayName == nil)
        #expect(m.cc == [CPIMAddress(displayName: "Rabbit, the \"Friend\"", uri: "im:rabbit@100akerwood.com")])
        #expect(m.dateTime == "2000-12-13T13:40:00-08:00")
        #expect(m.subjects == [CPIMSubject("the weather will be fine today"), CPIMSubject("beau temps prevu pour aujourd'hui", language: "fr")])
        #expect(m.required == ["MyFeatures.VitalMessageOption"])
        #expect(m.values(namespace: "mid:MessageFeatures@id.foo.com", "WackyMessageOption") == ["Use-silly-font"])
        #expect(m.values("X.Escaped") == ["line one\nline two \\ end"])
        #expect(m.contentType == "text/xml; charset=utf-8")
        #expect(m.contentHeader("content-id") == "<1234567890@foo.com>")
        #expect(String(decoding: m.content, as: UTF8.self).hasPrefix("<body>\nHere is"))
        // Unknown headers stay, in order.
        #expect(m.headers.map(\.name).firstIndex(of: "MyFeatures.WackyMessageOption")! > m.headers.map(\.name).firstIndex(of: "MyFeatures.VitalMessageOption")!)

        let imdn = try #require(IMDNRequest(m))
        #expect(imdn.messageID == "34jk324j")
        #expect(imdn.dispositions == [.positiveDelivery, .negativeDelivery, .display])
    }

    @Test func roundTripsThroughTheSerializer() throws {
        let m = try CPIMParser().parse(bytes(Self.sample))
        let again = try CPIMParser().parse(m.serialized)
        #expect(again == m)
    }

    @Test func imdnPrefixIsWhateverTheSenderDeclared() throws {
        let m = try CPIMParser().parse(bytes("From: <sip:a@x>\r\nTo: <sip:b@x>\r\nNS: n <urn:ietf:params:imdn>\r\nn.Message-ID: abc\r\nn.Disposition-Notification: negative-delivery, bogus\r\n\r\nContent-Type: text/plain\r\n\r\nhi"))
        let r = try #require(IMDNRequest(m))
        #expect(r.messageID == "abc")
        #expect(r.dispositions == [.negativeDelivery])
        // Without an NS declaration, imdn.* headers are just unknown headers.
        let bare = try CPIMParser().parse(bytes("From: <sip:a@x>\r\nimdn.Message-ID: abc\r\n\r\nContent-Type: text/plain\r\n\r\nhi"))
        #expect(IMDNRequest(bare) == nil)
    }

    @Test func toleratesBareLineFeeds() throws {
        let m = try CPIMParser().parse(bytes("From: <sip:a@x>\nTo: <sip:b@x>\n\nContent-Type: text/plain\n\nhello\r\nworld"))
        #expect(m.content == bytes("hello\r\nworld"))
    }

    @Test func buildsAMessageThatParsesBack() throws {
        let req = IMDNRequest(messageID: "m-1", dispositions: [.positiveDelivery, .negativeDelivery])
        let m = CPIMMessage.make(
            from: CPIMAddress(displayName: "Alice Ünicode", uri: "sip:alice@example.com"), to: [CPIMAddress(uri: "sip:ops@gw.example")],
            dateTime: "2026-11-24T10:00:00Z", subject: CPIMSubject("Grüße", language: "de"), namespaces: [("imdn", IMDN.namespace)],
            extraHeaders: req.headers, contentType: "text/plain;charset=UTF-8", content: bytes("héllo\r\n\r\nworld"))
        let parsed = try CPIMParser().parse(m.serialized)
        #expect(parsed == m)
        #expect(IMDNRequest(parsed) == req)
        #expect(parsed.subjects == [CPIMSubject("Grüße", language: "de")])
    }
}

@Suite struct CPIMBadInputTests {
    /// Each hostile or malformed body and the error it must give (never a crash).
    static let cases: [(String, [UInt8], CPIMError.Kind)] = [
        ("no blank line at all", bytes("From: <sip:a@x>\r\nTo: <sip:b@x>\r\n"), .missingBlankLine),
        ("no content headers", bytes("From: <sip:a@x>\r\n\r\n"), .missingContentHeaders),
        ("content headers without Content-Type", bytes("From: <sip:a@x>\r\n\r\nContent-ID: <x>\r\n\r\nbody"), .missingContentHeaders),
        ("header without colon", bytes("From <sip:a@x>\r\n\r\nContent-Type: text/plain\r\n\r\n"), .malformedHeader),
        ("empty header name", bytes(": value\r\n\r\nContent-Type: text/plain\r\n\r\n"), .malformedHeader),
        ("space in header name", bytes("Fr om: <sip:a@x>\r\n\r\nContent-Type: text/plain\r\n\r\n"), .malformedHeader),
        ("NUL in a value", [UInt8]("From: <sip:a".utf8) + [0] + bytes(">\r\n\r\nContent-Type: text/plain\r\n\r\n"), .malformedHeader),
        ("invalid UTF-8", bytes("From: ") + [0xC3, 0x28] + bytes("\r\n\r\nContent-Type: text/plain\r\n\r\n"), .badEncoding),
        ("endless header line", bytes("X: ") + Array(repeating: UInt8(ascii: "a"), count: 20_000), .headerBlockTooLarge),
        ("too many headers", bytes(String(repeating: "X: y\r\n", count: 100) + "\r\nContent-Type: text/plain\r\n\r\n"), .tooManyHeaders),
        ("empty input", [], .missingBlankLine),
    ]

    @Test(arguments: cases.indices)
    func refused(_ i: Int) {
        let (name, input, kind) = Self.cases[i]
        do {
            _ = try CPIMParser().parse(input)
            Issue.record("\(name): accepted")
        } catch {
            #expect(error.kind == kind, "\(name): \(error)")
        }
    }

    @Test func badAddresses() throws {
        for text in ["", "<>", "Bob <sip:b@x", "Bob sip:b@x>", "<no-scheme>", "\"Unclosed <sip:a@x>", "a b c", "<sip:a@x> <sip:b@x>"] {
            #expect(throws: CPIMError.self, "\(text.debugDescription)") { _ = try CPIMAddress(parsing: text) }
        }
        #expect(try CPIMAddress(parsing: "sip:bare@x") == CPIMAddress(uri: "sip:bare@x"))
    }

    /// Random bytes and random damage to a valid message: the parser returns or
    /// throws, never crashes, and never reads past its limits.
    @Test func randomInputNeverCrashes() {
        var rng = SystemRandomNumberGenerator()
        let valid = bytes(CPIMParsingTests.sample)
        let parser = CPIMParser(maxHeaderBytes: 2048, maxHeaders: 32)
        for _ in 0..<3000 {
            var input = valid
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let at = Int.random(in: 0..<input.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: input[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: input.insert(contentsOf: bytes(["\r\n", "\n", ":", "\\", "<", ";lang="].randomElement(using: &rng)!), at: at)
                default: input.removeSubrange(at..<min(input.count, at + Int.random(in: 1...40, using: &rng)))
                }
            }
            if let m = try? parser.parse(input) {
                #expect(m.headers.count + m.contentHeaders.count <= 32)
                _ = IMDNRequest(m)
            }
        }
    }
}
