import Foundation
import Testing

@testable import SDP

/// RFC 4975 §8's offer shape (with setup and wrapped types added).
let offerText = """
    v=0\r
    o=alice 2890844526 2890844527 IN IP4 alice.example.com\r
    s=-\r
    c=IN IP4 alice.example.com\r
    t=0 0\r
    m=message 7394 TCP/MSRP *\r
    a=accept-types:message/cpim text/plain text/html\r
    a=accept-wrapped-types:text/plain image/jpeg message/imdn+xml\r
    a=path:msrp://alice.example.com:7394/2s93i93idj;tcp\r
    a=max-size:131072\r
    a=setup:actpass\r

    """

let gateway = MSRPCapabilities(acceptTypes: ["message/cpim", "text/plain"], acceptWrappedTypes: ["text/plain", "message/imdn+xml"], maxSize: 1 << 20)

@Suite struct SDPParsingTests {
    @Test func parsesAnMSRPOffer() throws {
        let sd = try SDPParser().parse(offerText)
        #expect(sd.origin == "alice 2890844526 2890844527 IN IP4 alice.example.com")
        let (index, m) = try sd.msrpMedia()
        #expect(index == 0)
        #expect(m.path == ["msrp://alice.example.com:7394/2s93i93idj;tcp"])
        #expect(m.acceptTypes == ["message/cpim", "text/plain", "text/html"])
        #expect(m.acceptWrappedTypes == ["text/plain", "image/jpeg", "message/imdn+xml"])
        #expect(m.maxSize == 131072)
        #expect(m.setup == .actpass)
        #expect(!m.secure)
    }

    /// RFC 7977 §8: MSRP over WebSocket offers, answered with the same transport.
    @Test(arguments: [("TCP/WS/MSRP", false), ("TCP/WSS/MSRP", true), ("tcp/wss/msrp", true)])
    func webSocketTransports(_ proto: String, _ secure: Bool) throws {
        let text = offerText.replacingOccurrences(of: "TCP/MSRP", with: proto)
            .replacingOccurrences(of: "msrp://alice.example.com:7394/2s93i93idj;tcp", with: "msrp://dq9a3j.invalid:2855/2s93i93idj;ws")
        let (_, m) = try SDPParser().parse(text).msrpMedia()
        #expect(m.webSocket && m.secure == secure)
        let n = try MSRPOfferAnswer.negotiate(offer: m, capabilities: gateway)
        #expect(n.answer.mediaDescription.proto == proto.uppercased())
    }

    @Test func otherTransportsAreNotMSRP() throws {
        let text = offerText.replacingOccurrences(of: "TCP/MSRP", with: "UDP/MSRP")
        #expect(throws: SDPError.self) { try SDPParser().parse(text).msrpMedia() }
    }

    @Test func roundTrips() throws {
        let sd = try SDPParser().parse(offerText)
        #expect(try SDPParser().parse(sd.text) == sd)
    }

    @Test func answerPutsCPIMFirstAndOnlyWhatBothAccept() throws {
        let (_, offer) = try SDPParser().parse(offerText).msrpMedia()
        let n = try MSRPOfferAnswer.negotiate(offer: offer, capabilities: gateway)
        #expect(n.answer.acceptTypes == ["message/cpim", "text/plain"])
        #expect(n.answer.acceptWrappedTypes == ["text/plain", "message/imdn+xml"])
        #expect(n.answer.setup == .passive)
        #expect(!n.weAreActive)
        #expect(n.peerMaxSize == 131072)
        var answer = n.answer
        answer.path = ["msrp://127.0.0.1:2855/abcd;tcp"]
        answer.port = 2855
        let text = MSRPOfferAnswer.answerDescription(media: answer, host: "127.0.0.1", sessionVersion: 1).text
        #expect(text.contains("a=accept-types:message/cpim text/plain\r\n"))
        #expect(text.contains("m=message 2855 TCP/MSRP *\r\n"))
        #expect(try SDPParser().parse(text).msrpMedia().media == answer)
    }

    @Test func wildcardsCountOnBothSides() throws {
        let any = MSRPMedia(port: 1, path: ["msrp://a:1/x;tcp"], acceptTypes: ["*"])
        #expect(try MSRPOfferAnswer.negotiate(offer: any, capabilities: gateway).answer.acceptTypes == ["message/cpim", "text/plain"])
        let textAny = MSRPMedia(port: 1, path: ["msrp://a:1/x;tcp"], acceptTypes: ["text/*"])
        #expect(try MSRPOfferAnswer.negotiate(offer: textAny, capabilities: gateway).answer.acceptTypes == ["text/plain"])
        let ours = MSRPCapabilities(acceptTypes: ["message/cpim", "text/*"], acceptWrappedTypes: [])
        let html = MSRPMedia(port: 1, path: ["msrp://a:1/x;tcp"], acceptTypes: ["text/html", "image/png"])
        #expect(try MSRPOfferAnswer.negotiate(offer: html, capabilities: ours).answer.acceptTypes == ["text/html"])
    }

    @Test func setupRules() throws {
        func answer(_ setup: MSRPMedia.Setup?) throws -> MSRPNegotiation {
            try MSRPOfferAnswer.negotiate(offer: MSRPMedia(port: 1, path: ["msrp://a:1/x;tcp"], acceptTypes: ["text/plain"], setup: setup), capabilities: gateway)
        }
        #expect(try answer(nil).weAreActive == false)  // the offerer connects by default
        #expect(try answer(.active).weAreActive == false)
        #expect(try answer(.actpass).weAreActive == false)
        #expect(try answer(.passive).weAreActive == true)
        #expect(try answer(.passive).answer.setup == .active)
    }

    @Test func chatroomAndDirectionAttributes() throws {
        let text = offerText.replacingOccurrences(of: "a=setup:actpass\r\n", with: "a=chatroom:nickname private-messages\r\na=sendonly\r\n")
        let (_, m) = try SDPParser().parse(text).msrpMedia()
        #expect(m.chatroom == ["nickname", "private-messages"])
        #expect(m.direction == .sendonly)
        #expect(try MSRPOfferAnswer.negotiate(offer: m, capabilities: gateway).answer.direction == .recvonly)
    }
}

@Suite struct SDPBadInputTests {
    static let cases: [(String, String)] = [
        ("empty", ""),
        ("no v=0 first", "o=a 1 1 IN IP4 h\r\ns=-\r\n"),
        ("v=1", "v=1\r\no=a 1 1 IN IP4 h\r\ns=-\r\n"),
        ("no o=", "v=0\r\ns=-\r\nm=message 1 TCP/MSRP *\r\n"),
        ("short o=", "v=0\r\no=a 1 IN IP4 h\r\ns=-\r\n"),
        ("line without =", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\ngarbage\r\n"),
        ("upper-case type", "v=0\r\nO=a 1 1 IN IP4 h\r\ns=-\r\n"),
        ("bad port", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=message 99999 TCP/MSRP *\r\n"),
        ("m= too short", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=message\r\n"),
        ("NUL", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\u{0}\r\n"),
        ("huge", "v=0\r\n" + String(repeating: "a=x\r\n", count: 5000)),
        ("empty attribute name", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\na=:x\r\n"),
        // Found by Fuzz/run.sh sdp: a port of just "/" crashed the parser.
        ("port is a bare slash", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=message / TCP/MSRP *\r\n"),
        ("port with a count", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=message /2 TCP/MSRP *\r\n"),
    ]

    @Test(arguments: cases.indices)
    func refusedByTheParser(_ i: Int) {
        let (name, text) = Self.cases[i]
        #expect(throws: SDPError.self, "\(name)") { _ = try SDPParser().parse(text) }
    }

    static let mediaCases: [(String, String)] = [
        ("no m=message", "m=audio 49170 RTP/AVP 0\r\n"),
        ("disabled m=message", "m=message 0 TCP/MSRP *\r\na=path:msrp://a:1/x;tcp\r\na=accept-types:text/plain\r\n"),
        ("wrong proto", "m=message 1 TCP/RTP *\r\na=path:msrp://a:1/x;tcp\r\na=accept-types:text/plain\r\n"),
        ("no path", "m=message 1 TCP/MSRP *\r\na=accept-types:text/plain\r\n"),
        ("no accept-types", "m=message 1 TCP/MSRP *\r\na=path:msrp://a:1/x;tcp\r\n"),
        ("bad setup", "m=message 1 TCP/MSRP *\r\na=path:msrp://a:1/x;tcp\r\na=accept-types:text/plain\r\na=setup:sideways\r\n"),
        ("bad max-size", "m=message 1 TCP/MSRP *\r\na=path:msrp://a:1/x;tcp\r\na=accept-types:text/plain\r\na=max-size:-3\r\n"),
    ]

    @Test(arguments: mediaCases.indices)
    func refusedAsMSRPMedia(_ i: Int) throws {
        let (name, media) = Self.mediaCases[i]
        let sd = try SDPParser().parse("v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n" + media)
        #expect(throws: SDPError.self, "\(name)") { _ = try sd.msrpMedia() }
    }

    @Test func nothingAcceptableIsRefused() {
        let offer = MSRPMedia(port: 1, path: ["msrp://a:1/x;tcp"], acceptTypes: ["image/png"])
        #expect(throws: SDPError.self) { _ = try MSRPOfferAnswer.negotiate(offer: offer, capabilities: gateway) }
        let inactive = MSRPMedia(port: 1, path: ["msrp://a:1/x;tcp"], acceptTypes: ["text/plain"], direction: .inactive)
        #expect(throws: SDPError.self) { _ = try MSRPOfferAnswer.negotiate(offer: inactive, capabilities: gateway) }
    }

    @Test func randomDamageNeverCrashes() {
        var rng = SystemRandomNumberGenerator()
        let valid = Array(offerText.utf8)
        for _ in 0..<3000 {
            var input = valid
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let at = Int.random(in: 0..<input.count, using: &rng)
                if Bool.random(using: &rng) { input[at] = UInt8.random(in: 0...127, using: &rng) } else {
                    input.removeSubrange(at..<min(input.count, at + Int.random(in: 1...30, using: &rng)))
                }
            }
            if let sd = try? SDPParser().parse(String(decoding: input, as: UTF8.self)), let (_, m) = try? sd.msrpMedia() {
                _ = try? MSRPOfferAnswer.negotiate(offer: m, capabilities: gateway)
            }
        }
    }
}
