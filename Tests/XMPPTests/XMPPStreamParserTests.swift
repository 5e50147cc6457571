import Testing
import XMPPWire

/// The stream reader: what a server sends, whole or a byte at a time, and a
/// table of hostile and malformed streams, each ending in the right stream
/// error with memory bounded.
struct XMPPStreamParserTests {
    static let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='msrp.localhost' id='abc123'>"
    static let stanzas = """
        <handshake/> \n\t<message from='bob@localhost/res' to='alice\\40example.com@msrp.localhost' type='chat' id="m&amp;1">\
        <body>caf\u{E9} &lt;b&gt; &#x1F600; &#65;<![CDATA[ <raw> & ]]></body><request xmlns='urn:xmpp:receipts'/>\
        <x:delay xmlns:x='urn:xmpp:delay' stamp='2026-12-05T08:00:00Z'/></message>\
        <iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>
        """

    static func events(_ text: String, chunk: Int = .max) throws -> [XMPPStreamParser.Event] {
        var parser = XMPPStreamParser()
        let bytes = Array(text.utf8)
        var out: [XMPPStreamParser.Event] = []
        var i = 0
        while i < bytes.count {
            let end = min(bytes.count, i + chunk)
            out += try parser.feed(bytes[i..<end])
            i = end
        }
        return out
    }

    @Test func aStreamWholeOrAByteAtATime() throws {
        let whole = try Self.events(Self.header + Self.stanzas)
        for chunk in [1, 2, 3, 7, 64] { #expect(try Self.events(Self.header + Self.stanzas, chunk: chunk) == whole) }
        #expect(whole.count == 5)
        guard case .streamStart(let head) = whole[0], case .stanza(let handshake) = whole[1], case .stanza(let message) = whole[2],
              case .stanza(let iq) = whole[3], whole[4] == .streamEnd else {
            Issue.record("unexpected events \(whole)")
            return
        }
        #expect(head["id"] == "abc123" && head.namespace == XMPPNamespace.streams)
        #expect(handshake.name == "handshake" && handshake.namespace == XMPPNamespace.component)
        #expect(message["id"] == "m&1" && message["to"] == "alice\\40example.com@msrp.localhost")
        #expect(message.child("body")?.text == "caf\u{E9} <b> \u{1F600} A <raw> & ")
        #expect(message.child("request", namespace: XMPPNamespace.receipts) != nil)
        #expect(message.child("delay", namespace: XMPPNamespace.delay)?["stamp"] == "2026-12-05T08:00:00Z")
        #expect(iq.child("ping")?.namespace == XMPPNamespace.ping)
    }

    @Test func writtenStanzasReadBackTheSame() throws {
        let m = XMPPElement("message", namespace: XMPPNamespace.component, ["to": "bob@localhost", "id": "a'b\"c<&>", "type": "chat"], children: [
            XMPPElement("body", namespace: XMPPNamespace.component, text: "line 1\nline 2 & <tags> \u{1}bell\u{7} \u{FFFE}"),
            XMPPElement("request", namespace: XMPPNamespace.receipts),
        ])
        let text = Self.header + m.xml(inheritedNamespace: XMPPNamespace.component)
        let events = try Self.events(text)
        guard case .stanza(let back) = events.last else { Issue.record("no stanza in \(events)"); return }
        #expect(back["id"] == "a'b\"c<&>")
        // Controls and non-characters XML cannot carry come back as U+FFFD, the rest unchanged.
        #expect(back.child("body")?.text == "line 1\nline 2 & <tags> \u{FFFD}bell\u{FFFD} \u{FFFD}")
        #expect(back.child("request")?.namespace == XMPPNamespace.receipts)
    }

    @Test func whitespaceKeepalivesBetweenStanzas() throws {
        let events = try Self.events(Self.header + " \n \n<presence/>  ", chunk: 1)
        #expect(events.count == 2)
    }

    /// Hostile and malformed streams: each ends with the condition RFC 6120 names.
    static let hostile: [(String, String)] = {
        let header = XMPPStreamParserTests.header
        var table: [(String, String)] = []
        func add(_ text: String, _ condition: String) { table.append((text, condition)) }
        add("<!DOCTYPE stream [<!ENTITY a 'x'>]>" + header, XMPPStreamError.restrictedXML)
        add("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;&lol;'>]>", XMPPStreamError.restrictedXML)
        add(header + "<message><body>&lol9;</body></message>", XMPPStreamError.restrictedXML)
        add(header + "<!-- a comment --><message/>", XMPPStreamError.restrictedXML)
        add(header + "<message><?php echo 1 ?></message>", XMPPStreamError.restrictedXML)
        add(header + "<message><body><!ENTITY x 'y'></body></message>", XMPPStreamError.restrictedXML)
        add(header + "<message></presence>", XMPPStreamError.notWellFormed)
        add(header + "<message><body>a\u{1}b</body></message>", XMPPStreamError.notWellFormed)
        add(header + "<message id='a<b'/>", XMPPStreamError.notWellFormed)
        add(header + "<message id=a/>", XMPPStreamError.notWellFormed)
        add(header + "<message id='1' id='2'/>", XMPPStreamError.notWellFormed)
        add(header + "<message a='1'b='2'/>", XMPPStreamError.notWellFormed)
        add(header + "<message><body>&#0;</body></message>", XMPPStreamError.notWellFormed)
        add(header + "<message><body>a & b</body></message>", XMPPStreamError.notWellFormed)
        add(header + "<1message/>", XMPPStreamError.notWellFormed)
        add(header + "<x:message/>", XMPPStreamError.badNamespacePrefix)
        add(header + "hello", XMPPStreamError.badFormat)
        add("<stream xmlns='jabber:client'>", XMPPStreamError.invalidNamespace)
        add("<?xml version='1.0' encoding='ISO-8859-1'?>" + header, XMPPStreamError.unsupportedEncoding)
        add(header + "<message " + (0..<40).map { "a\($0)='x'" }.joined(separator: " ") + "/>", XMPPStreamError.policyViolation)
        return table
    }()

    @Test(arguments: hostile)
    func hostileStreams(_ text: String, _ condition: String) {
        #expect {
            _ = try Self.events(text)
        } throws: { ($0 as? XMPPStreamError)?.condition == condition }
        // The same, a byte at a time.
        #expect {
            _ = try Self.events(text, chunk: 1)
        } throws: { ($0 as? XMPPStreamError)?.condition == condition }
    }

    @Test func invalidUTF8IsRefused() {
        var parser = XMPPStreamParser()
        let bytes = Array((Self.header + "<message><body>").utf8) + [0xC3, 0x28, 0xFF] + Array("</body></message>".utf8)
        #expect(throws: XMPPStreamError.self) { _ = try parser.feed(bytes) }
        var attribute = XMPPStreamParser()
        let inAttribute = Array((Self.header + "<message id='").utf8) + [0xED, 0xA0, 0x80] + Array("'/>".utf8)
        #expect { _ = try attribute.feed(inAttribute) } throws: { ($0 as? XMPPStreamError)?.condition == XMPPStreamError.unsupportedEncoding }
    }

    /// 10 MB in one stanza, sent in 64 KiB reads: refused once past the limit,
    /// having held no more than the limit and one read.
    @Test func aTenMegabyteStanzaEndsTheStream() throws {
        var parser = XMPPStreamParser()
        _ = try parser.feed(Array((Self.header + "<message><body>").utf8))
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 65_536)
        var fed = 0
        var failure: XMPPStreamError?
        while fed < 10_000_000 {
            do { _ = try parser.feed(chunk) } catch { failure = error; break }
            fed += chunk.count
        }
        #expect(failure?.condition == XMPPStreamError.policyViolation)
        #expect(fed <= parser.limits.maxStanzaBytes, "refused after \(fed) bytes")
        // And it stays refused.
        #expect(throws: XMPPStreamError.self) { _ = try parser.feed(Array("</body></message>".utf8)) }
    }

    @Test func aTagThatNeverEndsIsBoundedToo() {
        var parser = XMPPStreamParser()
        #expect(throws: XMPPStreamError.self) {
            _ = try parser.feed(Array((Self.header + "<message id='").utf8))
            for _ in 0..<100 { _ = try parser.feed([UInt8](repeating: UInt8(ascii: "a"), count: 16_384)) }
        }
    }

    @Test func tenThousandLevelsDeep() {
        let deep = Self.header + String(repeating: "<a>", count: 10_000) + String(repeating: "</a>", count: 10_000)
        #expect { _ = try Self.events(deep) } throws: { ($0 as? XMPPStreamError)?.condition == XMPPStreamError.policyViolation }
    }

    @Test func manyElementsInOneStanza() {
        let wide = Self.header + "<message>" + String(repeating: "<a/>", count: 5_000) + "</message>"
        #expect { _ = try Self.events(wide) } throws: { ($0 as? XMPPStreamError)?.condition == XMPPStreamError.policyViolation }
    }

    /// A stream cut off mid-stanza is not an error of the parser: nothing is
    /// returned for it (the connection's end says the rest).
    @Test func anUnclosedStreamYieldsOnlyWhatIsComplete() throws {
        let events = try Self.events(Self.header + "<message><body>half")
        #expect(events.count == 1)
    }

    @Test func theServersStreamErrorIsRead() throws {
        let events = try Self.events(Self.header + "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>bad secret</text></stream:error>")
        guard case .stanza(let e) = events.last else { Issue.record("no stanza"); return }
        let error = XMPPStreamError(received: e)
        #expect(error.condition == "not-authorized" && error.detail.contains("bad secret"))
    }
}

struct JIDTests {
    /// XEP-0106 §6's examples, both ways.
    @Test(arguments: [
        ("space cadet", "space\\20cadet"), ("call me \"ishmael\"", "call\\20me\\20\\22ishmael\\22"), ("at&t guy", "at\\26t\\20guy"),
        ("d'artagnan", "d\\27artagnan"), ("/.fanboy", "\\2f.fanboy"), ("::foo::", "\\3a\\3afoo\\3a\\3a"), ("<foo>", "\\3cfoo\\3e"),
        ("user@host", "user\\40host"), ("c:\\net", "c\\3a\\net"), ("c:\\\\net", "c\\3a\\\\net"), ("c:\\cool stuff", "c\\3a\\cool\\20stuff"),
        ("c:\\5commas", "c\\3a\\5c5commas"), ("alice@example.com", "alice\\40example.com"),
    ])
    func escaping(_ plain: String, _ escaped: String) {
        #expect(JIDEscaping.escape(plain) == escaped)
        #expect(JIDEscaping.unescape(escaped) == plain)
    }

    @Test func parsing() throws {
        let j = try #require(JID("Alice\\40Example.com@MSRP.localhost/Res/x"))
        #expect(j.local == "alice\\40example.com" && j.domain == "msrp.localhost" && j.resource == "Res/x")
        #expect(j.bare.description == "alice\\40example.com@msrp.localhost")
        #expect(JID("localhost")?.local == nil)
        for bad in ["", "@localhost", "a@", "a b@localhost", "a@local host", "a@localhost/", "a:b@localhost", String(repeating: "a", count: 1024) + "@x"] {
            #expect(JID(bad) == nil, "\(bad) accepted")
        }
    }
}
