import NIOCore
import Testing

@testable import MSRP

/// The example messages of RFC 4975 (§4, §5.1, §7, §11), written with the
/// seven-dash end-lines of the RFC (the spec copy here renders five). The §5.1
/// snippet omits the paths; they are added so it is a legal request.
enum RFCExamples {
    static let all: [(String, String)] = [
        ("§4 SEND", """
        MSRP a786hjs2 SEND
        To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp
        From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp
        Message-ID: 87652491
        Byte-Range: 1-25/25
        Content-Type: text/plain

        Hey Bob, are you there?
        -------a786hjs2$

        """),
        ("§4 200", """
        MSRP a786hjs2 200 OK
        To-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp
        From-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp
        Byte-Range: 1-25/25
        -------a786hjs2$

        """),
        ("§5.1 chunks", """
        MSRP dkei38sd SEND
        To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp
        From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp
        Message-ID: 4564dpWd
        Byte-Range: 1-*/8
        Content-Type: text/plain

        abcd
        -------dkei38sd+
        MSRP dkei38ia SEND
        To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp
        From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp
        Message-ID: 4564dpWd
        Byte-Range: 5-8/8
        Content-Type: text/plain

        EFGH
        -------dkei38ia$

        """),
        ("§11.1 session", """
        MSRP d93kswow SEND
        To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp
        From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp
        Message-ID: 12339sdqwer
        Byte-Range: 1-16/16
        Content-Type: text/plain

        Hi, I'm Alice!
        -------d93kswow$
        MSRP d93kswow 200 OK
        To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp
        From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp
        -------d93kswow$
        MSRP dkei38sd SEND
        To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp
        From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp
        Message-ID: 456s9wlk3
        Byte-Range: 1-21/21
        Content-Type: text/plain

        Hi, Alice! I'm Bob!
        -------dkei38sd$
        MSRP dkei38sd 200 OK
        To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp
        From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp
        -------dkei38sd$

        """),
        ("§11.2 XHTML", """
        MSRP dsdfoe38sd SEND
        To-Path: msrp://alice.example.com:7777/iau39soe2843z;tcp
        From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp
        Message-ID: 456so39s
        Byte-Range: 1-374/374
        Content-Type: application/xhtml+xml

        <?xml version="1.0" encoding="UTF-8"?>
        <!DOCTYPE html
        PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN"
        "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
        <html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
          <head>
            <title>FY2005 Results</title>
          </head>
          <body>
            <p>See the results at <a
        href="http://example.org/">example.org</a>.</p>
          </body>
        </html>
        -------dsdfoe38sd$

        """),
        ("§11.4 CPIM chunks", """
        MSRP d93kswow SEND
        To-Path: msrp://bobpc.example.com:8888/9di4eae923wzd;tcp
        From-Path: msrp://alicepc.example.com:7654/iau39soe2843z;tcp
        Message-ID: 12339sdqwer
        Byte-Range: 1-137/148
        Content-Type: message/cpim

        To: Bob <sip:bob@example.com>
        From: Alice <sip:alice@example.com>
        DateTime: 2006-05-15T15:02:31-03:00
        Content-Type: text/plain

        ABCD
        -------d93kswow+
        MSRP op2nc9a SEND
        To-Path: msrp://bobpc.example.com:8888/9di4eae923wzd;tcp
        From-Path: msrp://alicepc.example.com:7654/iau39soe2843z;tcp
        Message-ID: 12339sdqwer
        Byte-Range: 138-148/148
        Content-Type: message/cpim

        1234567890
        -------op2nc9a$

        """),
        ("§11.5 system message", """
        MSRP d93kswow SEND
        To-Path: msrp://alicepc.example.com:8888/9di4eae923wzd;tcp
        From-Path: msrp://example.com:7777/iau39soe2843z;tcp
        Message-ID: 12339sdqwer
        Byte-Range: 1-38/38
        Failure-Report: no
        Success-Report: no
        Content-Type: text/plain

        This conference will end in 5 minutes
        -------d93kswow$

        """),
        ("§11.6 positive report", """
        MSRP d93kswow SEND
        To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp
        From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp
        Message-ID: 12339sdqwer
        Byte-Range: 1-106/106
        Success-Report: yes
        Failure-Report: no
        Content-Type: text/html

        <html><body>
        <p>Here is that important link...
        <a href="http://www.example.com/foobar">foobar</a>
        </p>
        </body></html>
        -------d93kswow$
        MSRP dkei38sd REPORT
        To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp
        From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp
        Message-ID: 12339sdqwer
        Byte-Range: 1-106/106
        Status: 000 200 OK
        -------dkei38sd$

        """),
    ]
}

@Suite struct RFCExamplesTests {
    @Test(arguments: RFCExamples.all.map(\.0))
    func roundTripsAtEverySplitPoint(name: String) throws {
        let text = try #require(RFCExamples.all.first { $0.0 == name }?.1)
        let bytes = wire(text)
        let whole = parse(bytes)
        #expect(whole.fatal == nil)
        #expect(whole.invalid.isEmpty)
        #expect(whole.leftover == 0)
        #expect(!whole.frames.isEmpty)
        // Serialising what was parsed gives back the exact bytes.
        #expect(serialize(whole.frames) == bytes, "\(name) does not serialise to its input")
        // Cut once at every offset, and fed one byte at a time: the same frames.
        for cut in 1..<bytes.count {
            let run = parse(bytes, cuts: [cut])
            #expect(run.frames == whole.frames, "\(name) differs when cut at \(cut)")
        }
        let byteByByte = parse(bytes, cuts: Array(1..<bytes.count))
        #expect(byteByByte.frames == whole.frames)
        // parse(serialize(parse(x))) == parse(x)
        #expect(parse(serialize(whole.frames)).frames == whole.frames)
    }

    @Test func typedHeadersOfTheExamples() throws {
        let run = parse(wire(RFCExamples.all[7].1))
        let send = try #require(run.frames[0].request)
        #expect(send.method == .send)
        #expect(send.headers.successReport == .yes)
        #expect(send.headers.failureReport == .no)
        #expect(send.headers.byteRange == ByteRange(start: 1, end: 106, total: 106))
        #expect(send.headers.contentType == MediaType(type: "text", subtype: "html"))
        #expect(send.toPath.first?.sessionID == "9di4eae923wzd")
        let report = try #require(run.frames[1].request)
        #expect(report.method == .report)
        #expect(report.headers.status == MSRPStatus(namespace: 0, code: 200, reason: "OK"))
        #expect(run.frames[1].body == nil)

        let chunks = parse(wire(RFCExamples.all[2].1))
        #expect(chunks.frames.map(\.flag) == [.more, .complete])
        #expect(chunks.frames[0].request?.headers.byteRange == ByteRange(start: 1, end: nil, total: 8))
        #expect(chunks.frames[0].body.map { String(buffer: $0) } == "abcd")

        let response = try #require(parse(wire(RFCExamples.all[1].1)).frames.first?.response)
        #expect(response.code == 200)
        #expect(response.comment == "OK")
    }
}
