import NIOCore
import Testing

@testable import MSRP

@Suite struct URITests {
    /// The serializer writes a URI part by part: the same text as `description`.
    @Test(arguments: [
        "msrp://127.0.0.1:2855/abc;tcp", "msrps://bob@relay.example.com:443/s-1.2;tcp;x=y;flag",
        "msrp://[2001:db8::1]:0/q;ws", "msrp://h.invalid/abc;ws", "msrps://relay.example.com;tcp", "MSRP://Host:65535/Z;TCP",
    ])
    func serializedAsDescribed(_ text: String) throws {
        let uri = try MSRPURI(text)
        var buffer = ByteBuffer()
        let n = buffer.writeMSRPURI(uri)
        #expect(String(buffer: buffer) == uri.description)
        #expect(n == buffer.readableBytes)
    }

    @Test func parsesTheForms() throws {
        let a = try MSRPURI("msrp://host.example.com:8493/asfd34;tcp")
        #expect(a.scheme == .msrp)
        #expect(a.host == .name("host.example.com"))
        #expect(a.port == 8493)
        #expect(a.sessionID == "asfd34")
        #expect(a.transport == "tcp")

        let b = try MSRPURI("msrps://alice%40x@[2001:db8::1]:2855/s+=/x;ws;foo=bar;flag")
        #expect(b.scheme == .msrps)
        #expect(b.userinfo == "alice%40x")
        #expect(b.host == .ipv6("2001:db8::1"))
        #expect(b.sessionID == "s+=/x")
        #expect(b.transport == "ws")
        #expect(b.parameters == [.init(name: "foo", value: "bar"), .init(name: "flag")])
        #expect(b.description == "msrps://alice%40x@[2001:db8::1]:2855/s+=/x;ws;foo=bar;flag")

        let relay = try MSRPURI("msrps://relay.example.com;tcp")
        #expect(relay.sessionID == nil)
        #expect(relay.port == nil)
        #expect(relay.effectivePort == 2855)

        let v4 = try MSRPURI("msrp://127.0.0.1:2855/abc;tcp")
        #expect(v4.host == .ipv4("127.0.0.1"))
        #expect(try MSRPURI("MSRP://x.invalid:1/a;ws").host.isInvalidDomain)
    }

    @Test(arguments: [
        "http://a.b:1/x;tcp", "msrp:/a.b:1/x;tcp", "msrp://a.b:1/x", "msrp://a.b:1/x;", "msrp://:1/x;tcp",
        "msrp://a.b:99999/x;tcp", "msrp://a.b:1a/x;tcp", "msrp://[zz::1]:1/x;tcp", "msrp://a.b:1/;tcp",
        "msrp://a.b:1/x y;tcp", "msrp://a.b:1/x;t-cp", "msrp://a.b:1/x;tcp;=v", "msrp://a b:1/x;tcp",
        "msrp://@a.b:1/x;tcp", "msrp://[::1/x;tcp", "", "msrp://",
    ])
    func rejectsMalformed(text: String) {
        #expect(throws: MSRPURIError.self) { try MSRPURI(text) }
    }

    @Test func comparesAsSection6_1Says() throws {
        func eq(_ a: String, _ b: String) throws -> Bool { try MSRPURI(a) == MSRPURI(b) }
        #expect(try eq("msrp://HOST.example.com:1/abc;tcp", "MSRP://host.EXAMPLE.com:1/abc;TCP"))
        #expect(try eq("msrp://user@host:1/abc;tcp", "msrp://host:1/abc;tcp"))  // userinfo ignored
        #expect(try eq("msrp://h%6Fst:1/abc;tcp", "msrp://host:1/abc;tcp"))  // percent-decoding
        #expect(try eq("msrp://[2001:db8::1]:1/a;tcp", "msrp://[2001:DB8:0:0:0:0:0:1]:1/a;tcp"))
        #expect(try eq("msrp://h:1/a;tcp;x=1", "msrp://h:1/a;tcp"))  // other parameters ignored
        #expect(try !eq("msrp://h:1/abc;tcp", "msrp://h:1/ABC;tcp"))  // session id case-sensitive
        #expect(try !eq("msrp://h:1/abc;tcp", "msrps://h:1/abc;tcp"))
        #expect(try !eq("msrp://h:1/abc;tcp", "msrp://h/abc;tcp"))  // explicit port vs none
        #expect(try !eq("msrp://h:1/abc;tcp", "msrp://h:1;tcp"))  // session id vs none
        #expect(try !eq("msrp://h:1/abc;tcp", "msrp://h:1/abc;ws"))
        #expect(try MSRPURI("msrp://H:1/a;tcp").hashValue == MSRPURI("msrp://h:1/a;TCP").hashValue)
    }

    @Test func ipv6Forms() {
        #expect(IPv6Address.parse("::1") == Array(repeating: 0, count: 15) + [1])
        #expect(IPv6Address.parse("::ffff:1.2.3.4") == Array(repeating: 0, count: 10) + [0xff, 0xff, 1, 2, 3, 4])
        #expect(IPv6Address.parse("1:2:3:4:5:6:7:8")?.count == 16)
        #expect(IPv6Address.parse("1:2:3:4:5:6:7:8:9") == nil)
        #expect(IPv6Address.parse("1::2::3") == nil)
        #expect(IPv6Address.parse("12345::") == nil)
    }
}

@Suite struct HeaderValueTests {
    @Test func byteRanges() throws {
        #expect(try ByteRange("1-25/25") == ByteRange(start: 1, end: 25, total: 25))
        #expect(try ByteRange("1-*/8") == ByteRange(start: 1, end: nil, total: 8))
        #expect(try ByteRange("5-*/*") == ByteRange(start: 5, end: nil, total: nil))
        #expect(try ByteRange("1-0/0") == ByteRange(start: 1, end: 0, total: 0))
        for bad in ["", "1-2", "0-1/1", "5-3/10", "1-20/10", "a-1/1", "1-1/1x", "1--1/1", "9223372036854775808-1/1",
                    "1-99999999999999999999/1", " 1-2/2", "30-*/10"] {
            #expect(throws: HeaderValueError.self, "\(bad)") { try ByteRange(bad) }
        }
    }

    @Test func mediaTypes() throws {
        let t = try MediaType("text/plain; charset=UTF-8;format=\"flowed x\"")
        #expect(t.essence == "text/plain")
        #expect(t.parameter("CHARSET") == "UTF-8")
        #expect(t.parameter("format") == "flowed x")
        #expect(t.description == "text/plain;charset=UTF-8;format=\"flowed x\"")
        #expect(MediaType(type: "*", subtype: "*").accepts(.messageCPIM))
        #expect(MediaType(type: "text", subtype: "*").accepts(.textPlain))
        #expect(!MediaType(type: "text", subtype: "*").accepts(.messageCPIM))
        for bad in ["text", "text/", "/plain", "text/plain;", "text/plain;a=\"x", "text/plain x"] {
            #expect(throws: HeaderValueError.self, "\(bad)") { try MediaType(bad) }
        }
    }

    @Test func statusAndAuth() throws {
        #expect(try MSRPStatus("000 408 Request Timeout") == MSRPStatus(code: 408, reason: "Request Timeout"))
        #expect(try MSRPStatus("000 200").reason == nil)
        #expect(throws: HeaderValueError.self) { try MSRPStatus("0 200") }
        let a = try AuthParameters(#"Digest realm="msrpgw.test", nonce="abc", qop="auth""#, hasScheme: true, header: "WWW-Authenticate")
        #expect(a.scheme == "Digest")
        #expect(a["realm"] == "msrpgw.test")
        #expect(a["QOP"] == "auth")
        let b = try AuthParameters(#"Digest username="u", nc=00000001, response="x\"y""#, hasScheme: true, header: "Authorization")
        #expect(b["nc"] == "00000001")
        #expect(b["response"] == "x\"y")
        #expect(try AuthParameters(b.description, hasScheme: true, header: "Authorization") == b)
        #expect(throws: HeaderValueError.self) { try AuthParameters("Digest realm", hasScheme: true, header: "X") }
    }

    @Test func relayAndChatHeaders() throws {
        let text = wire("""
        MSRP abcd1234 AUTH
        To-Path: msrps://relay.example.com:2855;tcp
        From-Path: msrps://client.example.com:4000/xyz;tcp
        Use-Path: msrps://relay.example.com:2855/r1;tcp msrps://relay2.example.com:2855/r2;tcp
        Expires: 900
        Min-Expires: 60
        Max-Expires: 3600
        Use-Nickname: "Alice \\"A\\""
        Authentication-Info: nextnonce="n2", qop=auth
        X-Custom: kept in order
        -------abcd1234$

        """)
        let run = parse(text)
        let head = try #require(run.frames.first?.request)
        #expect(head.method == .auth)
        #expect(head.headers.usePath?.count == 2)
        #expect(head.headers.expires == 900)
        #expect(head.headers.minExpires == 60)
        #expect(head.headers.maxExpires == 3600)
        #expect(head.headers.useNickname == "Alice \"A\"")
        #expect(head.headers.authenticationInfo?["nextnonce"] == "n2")
        #expect(head.headers["x-custom"] == "kept in order")
        #expect(serialize(run.frames) == text)
        let nick = try #require(parse(wire("""
        MSRP abcd1235 NICKNAME
        To-Path: msrp://gw:1/s;tcp
        From-Path: msrp://c:2/t;tcp
        Use-Nickname: sip:alice@example.com
        -------abcd1235$

        """)).frames.first?.request)
        #expect(nick.method == .nickname)
        #expect(nick.headers.useNickname == "sip:alice@example.com")
        let unknown = try #require(parse(wire("""
        MSRP abcd1236 FROB
        To-Path: msrp://gw:1/s;tcp
        From-Path: msrp://c:2/t;tcp
        -------abcd1236$

        """)).frames.first?.request)
        #expect(unknown.method == .other("FROB"))
    }
}
