import ConnectionPool
import DirectConnect
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One keep-alive HTTP/1.1 connection to a webhook origin (TLS when it is
/// https), carrying one request at a time.
struct WebhookHTTPConnection: PooledConnection {
    let channel: any Channel

    /// Connects within `connectTimeout` (TCP; the TLS handshake happens with the
    /// first request, within that request's time).
    static func open(
        _ origin: WebhookOrigin, group: any EventLoopGroup, tls: NIOSSLContext?, connectTimeout: Duration
    ) async throws(WebhookHTTPError) -> WebhookHTTPConnection {
        let serverName = origin.serverName
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.nanoseconds(connectTimeout.nanoseconds))
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        let sync = ch.pipeline.syncOperations
                        if let tls { try sync.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverName)) }
                        try sync.addHTTPClientHandlers()
                        try sync.addHandler(WebhookHTTPHandler())
                    }
                }
                .connect(hostOrAddress: origin.host, port: origin.port).get()
        } catch {
            throw .connect("\(origin): \(error)")
        }
        return WebhookHTTPConnection(channel: channel)
    }

    var isActive: Bool { channel.isActive }

    /// Sends one request and waits for its whole answer until `deadline`.
    func send(_ head: HTTPRequestHead, body: ByteBuffer, deadline: NIODeadline) async throws(WebhookHTTPError) -> WebhookHTTPResponse {
        let promise = channel.eventLoop.makePromise(of: WebhookHTTPResponse.self)
        // A write that never reaches the handler (the channel closed meanwhile)
        // must still answer the promise; a second answer is ignored.
        channel.writeAndFlush(WebhookHTTPExchange(head: head, body: body, deadline: deadline, promise: promise)).whenFailure { error in
            promise.fail(WebhookHTTPError.closed(answered: false, "\(error)"))
        }
        // A delivery cancelled (a hard shutdown) closes its connection, which
        // answers the promise at once.
        do {
            return try await withTaskCancellationHandler {
                try await promise.futureResult.get()
            } onCancel: { [channel] in
                channel.close(promise: nil)
            }
        } catch let error as WebhookHTTPError {
            throw error
        } catch {
            throw .closed(answered: false, "\(error)")
        }
    }

    func close() { channel.close(promise: nil) }
}
