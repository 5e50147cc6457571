import Crypto
import DirectConnect
import Logging
import NIOCore
import NIOPosix
import XMPPWire

/// Why a component connection could not be made, or ended.
public struct XMPPConnectionError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One authenticated component stream (XEP-0114): one TCP connection's life.
/// Reconnecting is the owner's job (`XMPPComponent`).
final class XMPPComponentConnection: Sendable {
    let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Connects, opens the stream and completes the handshake; `onStanza` gets
    /// every stanza after it, on the channel's event loop, in stream order, and
    /// says whether to stop reading (its reader is behind: back-pressure).
    static func connect(
        _ configuration: XMPPComponentConfiguration, group: any EventLoopGroup, logger: Logger,
        onStanza: @escaping @Sendable (XMPPElement) -> Bool
    ) async throws -> XMPPComponentConnection {
        let authenticated = group.next().makePromise(of: Void.self)
        let handler = XMPPStreamHandler(configuration: configuration, logger: logger, authenticated: authenticated, onStanza: onStanza)
        let channel: any Channel
        let server = "\(configuration.host):\(configuration.port)"
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(configuration.connectTimeout)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) } }
                .connect(hostOrAddress: configuration.host, port: configuration.port).get()
        } catch {
            authenticated.fail(XMPPConnectionError("cannot connect"))
            throw XMPPConnectionError("cannot connect to \(server): \(error)")
        }
        // A server that accepts and never answers must not hold us: the handshake
        // gets the connect time-out too, and a cancelled task closes the connection.
        let deadline = channel.eventLoop.scheduleTask(in: configuration.connectTimeout) {
            authenticated.fail(XMPPConnectionError("no handshake from \(server) within \(configuration.connectTimeout)"))
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        do {
            try await withTaskCancellationHandler {
                try await authenticated.futureResult.get()
            } onCancel: {
                channel.close(promise: nil)
            }
        } catch {
            channel.close(promise: nil)
            throw error
        }
        return XMPPComponentConnection(channel: channel)
    }

    /// Writes stanzas (already serialized, in one buffer: they go out together,
    /// in order, whoever else writes meanwhile).
    func write(_ bytes: ByteBuffer) {
        channel.writeAndFlush(bytes, promise: nil)
    }

    /// Ends the stream politely, then the connection.
    func close() {
        channel.writeAndFlush(ByteBuffer(string: "</stream:stream>")).whenComplete { [channel] _ in channel.close(promise: nil) }
    }

    var closeFuture: EventLoopFuture<Void> { channel.closeFuture }
}

/// The pipeline end: opens the stream, does the handshake, parses what the
/// server sends, answers a malformed stream with its stream error, pings the
/// server when it goes quiet and drops it when it does not answer.
final class XMPPStreamHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let configuration: XMPPComponentConfiguration
    private let logger: Logger
    private let authenticated: EventLoopPromise<Void>
    private let onStanza: @Sendable (XMPPElement) -> Bool
    private var paused = false
    private var parser: XMPPStreamParser
    private var isAuthenticated = false
    private var context: ChannelHandlerContext?
    private var lastHeard = NIODeadline.now()
    private var pingSent: NIODeadline?
    private var keepalive: RepeatedTask?
    private var pings = 0

    init(configuration: XMPPComponentConfiguration, logger: Logger, authenticated: EventLoopPromise<Void>,
         onStanza: @escaping @Sendable (XMPPElement) -> Bool) {
        self.configuration = configuration
        self.logger = logger
        self.authenticated = authenticated
        self.onStanza = onStanza
        self.parser = XMPPStreamParser(limits: configuration.limits)
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        let header = "<?xml version='1.0'?><stream:stream xmlns='\(XMPPNamespace.component)' xmlns:stream='\(XMPPNamespace.streams)' to='"
        var out = ByteBuffer(string: header)
        var to: [UInt8] = []
        XMLEscaping.appendEscaped(configuration.domain, attribute: true, to: &to)
        out.writeBytes(to)
        out.writeString("'>")
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        let check = TimeAmount.seconds(1)
        keepalive = context.eventLoop.scheduleRepeatedTask(initialDelay: check, delay: check) { [weak self] _ in self?.checkAlive() }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        lastHeard = .now()
        pingSent = nil
        let events: [XMPPStreamParser.Event]
        do {
            events = try parser.feed(bytes.readableBytesView)
        } catch {
            fail(error, context: context)
            return
        }
        for event in events {
            switch event {
            case .streamStart(let header):
                guard !isAuthenticated else { continue }
                guard let id = header["id"], !id.isEmpty else {
                    fail(XMPPStreamError(XMPPStreamError.badFormat, "the server's stream header has no id"), context: context)
                    return
                }
                let digest = Insecure.SHA1.hash(data: Array((id + configuration.secret).utf8)).map { String($0, radix: 16).leftPadded(2) }.joined()
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "<handshake>\(digest)</handshake>")), promise: nil)
            case .stanza(let stanza):
                if stanza.namespace == XMPPNamespace.streams && stanza.name == "error" {
                    let error = XMPPStreamError(received: stanza)
                    logger.warning("XMPP server ended the stream", metadata: ["server": "\(server)", "condition": "\(error.condition)", "detail": "\(error.detail)"])
                    authenticated.fail(XMPPConnectionError(error.condition == XMPPStreamError.notAuthorized
                        ? "the server refused the component secret for \(configuration.domain) (not-authorized)" : "\(error)"))
                    context.close(promise: nil)
                    return
                }
                if !isAuthenticated {
                    guard stanza.name == "handshake" else { continue }
                    isAuthenticated = true
                    authenticated.succeed(())
                    continue
                }
                if onStanza(stanza) {
                    // Read no more until the reader has caught up (the owner turns autoRead back on).
                    context.channel.setOption(.autoRead, value: false).whenFailure { _ in }
                    if !paused {
                        paused = true
                        logger.notice("XMPP reads paused: the bridge is behind the server", metadata: ["server": "\(server)"])
                    }
                } else {
                    paused = false
                }
            case .streamEnd:
                logger.info("XMPP server closed the stream", metadata: ["server": "\(server)"])
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "</stream:stream>"))).whenComplete { _ in channel.close(promise: nil) }
                return
            }
        }
    }

    private var server: String { "\(configuration.host):\(configuration.port)" }

    /// What the server sent broke the stream: tell it why, then close (RFC 6120 §4.9.1.1).
    private func fail(_ error: XMPPStreamError, context: ChannelHandlerContext) {
        logger.warning("XMPP stream from the server refused", metadata: ["server": "\(server)", "condition": "\(error.condition)", "detail": "\(error.detail)"])
        authenticated.fail(XMPPConnectionError("\(error)"))
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: error.serialized + "</stream:stream>"))).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        keepalive?.cancel()
        authenticated.fail(XMPPConnectionError("the server closed the connection before the handshake ended"))
        context.fireChannelInactive()
    }

    /// Dropped when the channel goes: the context holds this handler, so
    /// keeping it would be a cycle that outlives the connection.
    func handlerRemoved(context: ChannelHandlerContext) {
        keepalive?.cancel()
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.warning("XMPP connection error", metadata: ["server": "\(server)", "error": "\(error)"])
        authenticated.fail(XMPPConnectionError("\(error)"))
        context.close(promise: nil)
    }

    private func checkAlive() {
        guard let context, isAuthenticated else { return }
        let now = NIODeadline.now()
        // Reads paused by us (the bridge is behind) are not the server's silence:
        // what it sent, a ping's answer too, waits in the socket, and closing
        // would lose it. The clock starts again when reading does.
        if context.channel.syncOptions.flatMap({ try? $0.getOption(.autoRead) }) == false {
            lastHeard = now
            pingSent = nil
            return
        }
        if let sent = pingSent {
            if now - sent > configuration.pingTimeout {
                logger.warning("XMPP server did not answer our ping: reconnecting", metadata: ["server": "\(server)", "after": "\(configuration.pingTimeout)"])
                context.close(promise: nil)
            }
        } else if now - lastHeard > configuration.pingInterval {
            pingSent = now
            pings += 1
            let ping = XMPPElement("iq", namespace: XMPPNamespace.component, [
                "type": "get", "id": "keepalive-\(pings)", "from": configuration.domain, "to": configuration.serverDomain,
            ], children: [XMPPElement("ping", namespace: XMPPNamespace.ping)])
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: ping.serialized(inheritedNamespace: XMPPNamespace.component))), promise: nil)
        }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
