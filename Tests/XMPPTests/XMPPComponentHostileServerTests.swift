import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import XMPPClient
import XMPPWire

/// A component connection to a server that turns hostile after the handshake:
/// each case ends the stream with the right stream error (what the server
/// reads last), and the component connects again.
struct XMPPComponentHostileServerTests {
    static let cases: [(String, [UInt8], String?)] = [
        ("billion laughs", Array("<!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]>".utf8),
         XMPPStreamError.restrictedXML),
        ("entity reference", Array("<message><body>&lol9;</body></message>".utf8), XMPPStreamError.restrictedXML),
        ("10 MB stanza", Array("<message><body>".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 10_000_000), XMPPStreamError.policyViolation),
        ("depth 10,000", Array(String(repeating: "<a>", count: 10_000).utf8), XMPPStreamError.policyViolation),
        ("invalid UTF-8", Array("<message><body>".utf8) + [0xFF, 0xFE, 0xC3] + Array("</body></message>".utf8), XMPPStreamError.unsupportedEncoding),
        ("unclosed stream", Array("<message><body>half".utf8), nil),
    ]

    @Test(arguments: 0..<cases.count)
    func hostileServer(_ index: Int) async throws {
        let (name, payload, condition) = Self.cases[index]
        let server = try await HostileXMPPServer(payload: payload, closeAfterPayload: condition == nil)
        defer { server.stop() }
        let component = XMPPComponent(
            configuration: XMPPComponentConfiguration(host: "127.0.0.1", port: server.port, domain: "msrp.test", secret: "s",
                                                      reconnect: .milliseconds(50)...(.milliseconds(100))),
            group: server.group)
        let run = Task { await component.run() }
        defer { run.cancel() }
        // Generous: in the first minute of a loaded full run everything waits.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, server.connections < 2 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(server.connections >= 2, "\(name): connected again after the hostile stream")
        if let condition {
            let first = server.received(0)
            #expect(first.contains("<stream:error><\(condition) xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"),
                    "\(name): \(first.suffix(300))")
        }
        run.cancel()
        _ = await run.value
    }
}

/// Answers the component handshake, then sends `payload` (and closes, when asked).
final class HostileXMPPServer: @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channel: (any Channel)?
    private let log = NIOLockedValueBox<[String]>([])
    let port: Int

    init(payload: [UInt8], closeAfterPayload: Bool) async throws {
        let log = self.log
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                let index = log.withLockedValue { l in
                    l.append("")
                    return l.count - 1
                }
                return ch.pipeline.addHandler(Handler(index: index, log: log, payload: payload, closeAfterPayload: closeAfterPayload))
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.channel = channel
        port = channel.localAddress?.port ?? 0
    }

    var connections: Int { log.withLockedValue { $0.count } }
    func received(_ i: Int) -> String { log.withLockedValue { i < $0.count ? $0[i] : "" } }

    func stop() {
        channel?.close(promise: nil)
        try? group.syncShutdownGracefully()
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let index: Int
        let log: NIOLockedValueBox<[String]>
        let payload: [UInt8]
        let closeAfterPayload: Bool
        var stage = 0

        init(index: Int, log: NIOLockedValueBox<[String]>, payload: [UInt8], closeAfterPayload: Bool) {
            (self.index, self.log, self.payload, self.closeAfterPayload) = (index, log, payload, closeAfterPayload)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let text = String(buffer: unwrapInboundIn(data))
            let all = log.withLockedValue { l in
                l[index] += text
                return l[index]
            }
            if stage == 0, all.contains("<stream:stream") {
                stage = 1
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: """
                    <?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='msrp.test' id='s\(index)'>
                    """)), promise: nil)
            }
            if stage == 1, all.contains("</handshake>") {
                stage = 2
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "<handshake/>")), promise: nil)
                // In pieces, as a network would bring them; the client may close half way.
                var rest = payload[...]
                while !rest.isEmpty {
                    context.write(wrapOutboundOut(ByteBuffer(bytes: rest.prefix(65_536))), promise: nil)
                    rest = rest.dropFirst(65_536)
                }
                let channel = context.channel
                context.flush()
                if closeAfterPayload { channel.close(promise: nil) }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }
}
