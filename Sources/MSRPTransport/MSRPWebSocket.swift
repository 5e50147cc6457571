import Foundation
import Logging
import MSRP
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// MSRP over WebSocket (RFC 7977), server side: browsers connect with the
/// `msrp` sub-protocol; each WebSocket message carries exactly one MSRP chunk
/// (text, or binary when it is not UTF-8) and each chunk we send is one message.
public struct MSRPWebSocketSettings: Sendable {
    /// Origins allowed to connect (`https://chat.example.com`); empty allows any
    /// (for development: a page on any site could then use the gateway).
    public var allowedOrigins: [String]
    /// The largest WebSocket message taken (one chunk and its headers).
    public var maxMessageBytes: Int
    /// A WebSocket ping after this much silence keeps middleboxes from dropping
    /// the connection.
    public var pingInterval: TimeAmount
    /// Checks a token presented at the handshake (RFC 7977 §7) and says whom it
    /// belongs to, or nil to refuse it (401). A connection with a good token may
    /// AUTH to the relay role without a digest; one without a token connects as
    /// before. Nil: tokens are not looked at.
    public var tokenCheck: (@Sendable (String) -> String?)?

    public init(
        allowedOrigins: [String] = [], maxMessageBytes: Int = 1 << 20, pingInterval: TimeAmount = .seconds(30),
        tokenCheck: (@Sendable (String) -> String?)? = nil
    ) {
        self.allowedOrigins = allowedOrigins
        self.maxMessageBytes = maxMessageBytes
        self.pingInterval = pingInterval
        self.tokenCheck = tokenCheck
    }

    /// Why a handshake is refused (HTTP status and reason), or nil to upgrade.
    func refusal(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String)? {
        let protocols = head.headers["Sec-WebSocket-Protocol"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard protocols.contains("msrp") else { return (.badRequest, "WebSocket sub-protocol msrp required (RFC 7977)") }
        if !allowedOrigins.isEmpty {
            guard let origin = head.headers["Origin"].first, allowedOrigins.contains(origin) else {
                return (.forbidden, "origin \(head.headers["Origin"].first ?? "(none)") is not allowed")
            }
        }
        if let check = tokenCheck, let token = Self.token(head), check(token) == nil {
            return (.unauthorized, "the token is not valid here")
        }
        return nil
    }

    /// Whom the handshake's token names (nil without a token or a check).
    func identity(_ head: HTTPRequestHead) -> String? {
        guard let check = tokenCheck, let token = Self.token(head) else { return nil }
        return check(token)
    }

    /// The token of a handshake: `access_token` in the query (what a page can
    /// set), a `msrpgw_token` cookie, or `Authorization: Bearer` (other clients).
    static func token(_ head: HTTPRequestHead) -> String? {
        if let query = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first {
            for pair in query.split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0] == "access_token" { return String(kv[1]).removingPercentEncoding ?? String(kv[1]) }
            }
        }
        for cookies in head.headers["Cookie"] {
            for cookie in cookies.split(separator: ";") {
                let kv = cookie.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0] == "msrpgw_token" { return String(kv[1]) }
            }
        }
        if let auth = head.headers["Authorization"].first, auth.lowercased().hasPrefix("bearer ") {
            return String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }
}

extension MSRPEndpoint {
    /// Starts a WebSocket listener (WSS with `secure`, which needs `tlsServer`);
    /// port 0 picks a free one. Returns the bound port.
    @discardableResult
    public func listenWebSocket(host: String, port: Int, secure: Bool, settings: MSRPWebSocketSettings = MSRPWebSocketSettings()) async throws -> Int {
        let bound = try await bindListener(host: host, port: port, secure: secure, webSocket: true) { [self] channel in
            try self.configureWebSocketPipeline(channel, secure: secure, settings: settings)
        }
        logger.info("MSRP WebSocket listening", metadata: ["address": "\(host):\(bound)", "tls": "\(secure)"])
        return bound
    }

    private func configureWebSocketPipeline(_ channel: any Channel, secure: Bool, settings: MSRPWebSocketSettings) throws {
        if secure, let serverTLS { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverTLS)) }
        let logger = self.logger
        let upgraded = NIOLockedValueBox(false)
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: settings.maxMessageBytes, automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                guard settings.refusal(head) == nil else { return channel.eventLoop.makeSucceededFuture(nil) }
                var headers = HTTPHeaders([("Sec-WebSocket-Protocol", "msrp")])
                // RFC 7977 §8.1: CORS on the 101 for a page from another origin.
                if let origin = head.headers["Origin"].first { headers.add(name: "Access-Control-Allow-Origin", value: origin) }
                return channel.eventLoop.makeSucceededFuture(headers)
            },
            upgradePipelineHandler: { [self] channel, head in
                upgraded.withLockedValue { $0 = true }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(MSRPWebSocketFraming(settings: settings, logger: logger))
                    try self.configurePipeline(
                        channel, secure: false, key: nil, serverHostname: nil, overWebSocket: true, authenticatedAs: settings.identity(head))
                }
            })
        // Until the handshake completes no MSRP handler watches the connection:
        // it gets the bind time-out to upgrade, as an MSRP connection gets it to
        // bind a session (a connection that says nothing was held for ever).
        let handshakeTime = configuration.bindTimeout
        let deadline = channel.eventLoop.scheduleTask(in: handshakeTime) { [logger] in
            guard !upgraded.withLockedValue({ $0 }) else { return }
            logger.info("closing a WebSocket connection: no handshake in time", metadata: ["after": "\(handshakeTime)"])
            channel.close(promise: nil)
        }
        channel.closeFuture.whenComplete { _ in deadline.cancel() }
        let refusal = WebSocketRefusalHandler(settings: settings, logger: logger)
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
                context.pipeline.removeHandler(refusal, promise: nil)
            }))
        try channel.pipeline.syncOperations.addHandler(refusal)
    }
}

/// Answers an HTTP request that did not become a WebSocket: 400 without the
/// `msrp` sub-protocol, 403 from an origin not allowed, then closes.
final class WebSocketRefusalHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let settings: MSRPWebSocketSettings
    let logger: Logger

    init(settings: MSRPWebSocketSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let (status, reason) = settings.refusal(head) ?? (.badRequest, "a WebSocket upgrade is expected here")
        logger.info("WebSocket handshake refused", metadata: ["status": "\(status.code)", "reason": "\(reason)"])
        var body = context.channel.allocator.buffer(capacity: reason.utf8.count + 1)
        body.writeString(reason + "\n")
        let headers = HTTPHeaders([("Content-Type", "text/plain"), ("Content-Length", "\(body.readableBytes)"), ("Connection", "close")])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// Between WebSocket frames and the MSRP connection handler's bytes: a message
/// (fragments joined) must be exactly one MSRP chunk, else the connection ends
/// with close code 1002; what the MSRP handler writes is gathered until a whole
/// chunk (its end-line) and sent as one message. Pings are answered, and sent
/// after `pingInterval` of silence.
final class MSRPWebSocketFraming: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    private let settings: MSRPWebSocketSettings
    private let logger: Logger
    private var incoming: ByteBuffer?
    private var outgoing: ByteBuffer?
    private var lastHeard = NIODeadline.now()
    private var keepalive: RepeatedTask?

    init(settings: MSRPWebSocketSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let interval = settings.pingInterval
        // Loop-bound and weak: the repeated task must not keep the handler alive.
        let bound = NIOLoopBound((handler: WeakBox(self), context: context), eventLoop: context.eventLoop)
        keepalive = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            guard let self = bound.value.handler.value, NIODeadline.now() - self.lastHeard >= interval else { return }
            bound.value.context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer())), promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        keepalive?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastHeard = .now()
        switch frame.opcode {
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .pong:
            break
        case .connectionClose:
            close(context, code: .normalClosure, why: nil)
        case .text, .binary, .continuation:
            if frame.opcode == .continuation, incoming == nil { return close(context, code: .protocolError, why: "a continuation frame with no message begun") }
            if frame.opcode != .continuation, incoming != nil { return close(context, code: .protocolError, why: "a new message before the last one ended") }
            var data = frame.unmaskedData
            if incoming == nil { incoming = context.channel.allocator.buffer(capacity: data.readableBytes) }
            incoming?.writeBuffer(&data)
            guard (incoming?.readableBytes ?? 0) <= settings.maxMessageBytes else {
                return close(context, code: .messageTooLarge, why: "a WebSocket message over \(settings.maxMessageBytes) bytes")
            }
            guard frame.fin, let message = incoming else { return }
            incoming = nil
            guard Self.isOneChunk(message.readableBytesView) else {
                return close(context, code: .protocolError, why: "a WebSocket message that is not exactly one MSRP chunk (RFC 7977 §5.1)")
            }
            context.fireChannelRead(wrapInboundOut(message))
        default:
            close(context, code: .protocolError, why: "an unknown WebSocket opcode")
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var bytes = unwrapOutboundIn(data)
        if outgoing == nil { outgoing = context.channel.allocator.buffer(capacity: bytes.readableBytes) }
        outgoing?.writeBuffer(&bytes)
        guard let pending = outgoing, Self.endsWithEndLine(pending.readableBytesView) else {
            promise?.succeed()  // part of a chunk: it goes out with the rest
            return
        }
        outgoing = nil
        let text = String(validating: pending.readableBytesView, as: UTF8.self) != nil
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: text ? .text : .binary, data: pending)), promise: promise)
    }

    private func close(_ context: ChannelHandlerContext, code: WebSocketErrorCode, why: String?) {
        if let why { logger.info("WebSocket closed", metadata: ["reason": "\(why)"]) }
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// The transaction id of a frame: the second word of `MSRP <id> ...`.
    static func transactionID(_ b: ByteBufferView) -> ByteBufferView? {
        let prefix = "MSRP ".utf8
        guard b.count > prefix.count, b.prefix(prefix.count).elementsEqual(prefix) else { return nil }
        let rest = b.dropFirst(prefix.count).prefix(75)
        guard let space = rest.firstIndex(of: 0x20), space > rest.startIndex else { return nil }
        return b[rest.startIndex..<space]
    }

    /// Whether `b` ends with the end-line of the frame it starts (`-------<id>$`, `+` or `#`, CRLF).
    static func endsWithEndLine(_ b: ByteBufferView) -> Bool {
        guard let id = transactionID(b) else { return false }
        let tailCount = 7 + id.count + 3
        guard b.count >= tailCount else { return false }
        let end = b.suffix(tailCount)
        let dashes = end.prefix(7), idPart = end.dropFirst(7).prefix(id.count)
        let flag = end[end.startIndex + 7 + id.count]
        return dashes.allSatisfy { $0 == 0x2D } && idPart.elementsEqual(id) && [0x24, 0x2B, 0x23].contains(flag)
            && end.suffix(2).elementsEqual([0x0D, 0x0A])
    }

    /// Whether `b` is one MSRP frame: it ends with its own end-line, which does
    /// not occur before (a second chunk after it would put it earlier). Searched in
    /// place: this runs on every message a browser sends.
    static func isOneChunk(_ b: ByteBufferView) -> Bool {
        guard endsWithEndLine(b), let id = transactionID(b) else { return false }
        let marker = Array("\r\n-------".utf8) + Array(id)
        var found = 0
        var i = b.startIndex
        while let cr = b[i...].firstIndex(of: 0x0D), b.endIndex - cr >= marker.count {
            if b[cr..<(cr + marker.count)].elementsEqual(marker) {
                found += 1
                i = cr + marker.count
            } else {
                i = cr + 1
            }
        }
        return found == 1
    }
}

/// A weak reference, for closures that must not keep a handler alive.
struct WeakBox<Value: AnyObject> {
    weak var value: Value?
    init(_ value: Value) { self.value = value }
}
