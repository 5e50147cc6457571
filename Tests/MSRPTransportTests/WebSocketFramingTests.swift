import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOWebSocket
import Testing

@testable import MSRPTransport

/// RFC 7977 §5.1: a WebSocket message is exactly one MSRP chunk. The checks on
/// what a browser sends, and on what we gather before sending a message.
struct WebSocketFramingTests {
    static let one = "MSRP a1b2 SEND\r\nTo-Path: msrp://x/s;tcp\r\nFrom-Path: msrp://y.invalid/t;ws\r\nMessage-ID: m1\r\nByte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------a1b2$\r\n"

    static let cases: [(String, Bool)] = {
        let one = Self.one
        let two = one + one.replacingOccurrences(of: "a1b2", with: "c3d4")
        let badFlag = one.replacingOccurrences(of: "-------a1b2$", with: "-------a1b2!")
        let foreignEndLine = one.replacingOccurrences(of: "hello", with: "a line\r\n-------zz99$ that is not ours")
        let response = "MSRP a1b2 200 OK\r\nTo-Path: msrp://y.invalid/t;ws\r\nFrom-Path: msrp://x/s;tcp\r\n-------a1b2$\r\n"
        return [
            (one, true), (response, true), (foreignEndLine, true),
            (two, false),  // two chunks
            (one + one, false),  // the same chunk twice
            (String(one.prefix(40)), false), (String(one.dropFirst(40)), false),  // halves
            (badFlag, false), ("GET / HTTP/1.1\r\n\r\n", false), ("", false), ("MSRP  SEND\r\n-------$\r\n", false),
        ]
    }()

    @Test(arguments: cases)
    func oneChunkPerMessage(_ text: String, _ accepted: Bool) {
        #expect(MSRPWebSocketFraming.isOneChunk(ByteBuffer(string: text).readableBytesView) == accepted)
    }

    /// The handshake's token (RFC 7977 §7): from the query, a cookie or Bearer;
    /// a wrong one is refused with 401, none at all is not.
    @Test func handshakeTokens() {
        let settings = MSRPWebSocketSettings(tokenCheck: { $0 == "good token" ? "carol" : nil })
        func head(_ uri: String, _ headers: [(String, String)] = []) -> HTTPRequestHead {
            HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders([("Sec-WebSocket-Protocol", "msrp")] + headers))
        }
        #expect(settings.identity(head("/?x=1&access_token=good%20token")) == "carol")
        #expect(settings.identity(head("/", [("Cookie", "a=b; msrpgw_token=good token")])) == "carol")
        #expect(settings.identity(head("/", [("Authorization", "Bearer good token")])) == "carol")
        #expect(settings.refusal(head("/?access_token=bad"))?.0 == .unauthorized)
        #expect(settings.refusal(head("/")) == nil && settings.identity(head("/")) == nil, "no token: connects, AUTH is challenged")
        #expect(MSRPWebSocketSettings().identity(head("/?access_token=good%20token")) == nil, "no check: tokens are not looked at")
    }

    @Test func gatheredUntilTheEndLine() {
        let head = String(Self.one.prefix(60))
        #expect(!MSRPWebSocketFraming.endsWithEndLine(ByteBuffer(string: head).readableBytesView))
        #expect(MSRPWebSocketFraming.endsWithEndLine(ByteBuffer(string: Self.one).readableBytesView))
        let continued = Self.one.replacingOccurrences(of: "-------a1b2$", with: "-------a1b2+")
        #expect(MSRPWebSocketFraming.endsWithEndLine(ByteBuffer(string: continued).readableBytesView))
    }

    /// On a channel: a ping is answered with a pong carrying its data; a message
    /// that is one chunk goes up as bytes; two chunks close with 1002; what the
    /// MSRP side writes in pieces leaves as one message once the chunk is whole.
    @Test func onAChannel() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            MSRPWebSocketFraming(settings: MSRPWebSocketSettings(pingInterval: .seconds(3600)), logger: Logger(label: "test")))
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer(string: "are you there")))
        let pong = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(pong.opcode == .pong && String(buffer: pong.unmaskedData) == "are you there")

        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: Self.one)))
        #expect(try channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == Self.one)

        let half = Self.one.utf8.count / 2
        try channel.writeOutbound(ByteBuffer(string: String(Self.one.prefix(half))))
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil, "half a chunk waits")
        try channel.writeOutbound(ByteBuffer(string: String(Self.one.dropFirst(half))))
        let out = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(out.opcode == .text && String(buffer: out.unmaskedData) == Self.one)

        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: Self.one + Self.one)))
        let close = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        var code = close.unmaskedData
        #expect(close.opcode == .connectionClose && code.readWebSocketErrorCode() == .protocolError)
    }
}
