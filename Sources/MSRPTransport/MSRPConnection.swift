import MSRP
import NIOCore

/// One TCP or TLS connection carrying MSRP for any number of sessions.
/// Thread-safe: calls hop onto the channel's event loop.
public final class MSRPConnection: Sendable, Hashable {
    public let channel: any Channel
    let handler: NIOLoopBound<MSRPConnectionHandler>
    /// For connections we opened: the authority they go to, for reuse.
    let key: ConnectionKey?
    /// A browser's connection (MSRP over WebSocket, RFC 7977).
    let overWebSocket: Bool
    /// Who a token checked at the WebSocket handshake says the client is: its
    /// AUTH to the relay role needs no digest (RFC 7977 §5.3.1).
    let authenticatedAs: String?

    init(channel: any Channel, handler: MSRPConnectionHandler, key: ConnectionKey?, overWebSocket: Bool = false, authenticatedAs: String? = nil) {
        self.channel = channel
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        self.key = key
        self.overWebSocket = overWebSocket
        self.authenticatedAs = authenticatedAs
    }

    public var eventLoop: any EventLoop { channel.eventLoop }

    /// Runs `body` with the handler on the event loop.
    func withHandler<T: Sendable>(_ body: @escaping @Sendable (MSRPConnectionHandler) -> T) -> EventLoopFuture<T> {
        if eventLoop.inEventLoop { return eventLoop.makeSucceededFuture(body(handler.value)) }
        return eventLoop.submit { body(self.handler.value) }
    }

    /// Runs `body` with the handler: at once when on its event loop, else soon on
    /// it. No future is made: for work a relay does per forwarded request, whose
    /// outcome comes back some other way (a promise it completes, a response).
    func onHandler(_ body: @escaping @Sendable (MSRPConnectionHandler) -> Void) {
        if eventLoop.inEventLoop {
            body(handler.value)
        } else {
            eventLoop.execute { body(self.handler.value) }
        }
    }

    public func close() {
        channel.close(promise: nil)
    }

    public static func == (a: MSRPConnection, b: MSRPConnection) -> Bool { a === b }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

/// Where an outgoing connection goes; sessions to the same place share it (§5.4).
struct ConnectionKey: Hashable, Sendable {
    var host: String
    var port: Int
    var secure: Bool

    init(_ uri: MSRPURI) {
        host = uri.host.address.lowercased()
        port = uri.effectivePort
        secure = uri.isSecure
    }
}
