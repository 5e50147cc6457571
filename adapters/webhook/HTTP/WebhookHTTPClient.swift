import ConnectionPool
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL

/// The webhook adapter's HTTP/1.1 client: keep-alive connections pooled per
/// origin, one request per connection at a time, a deadline per request.
///
/// Why not AsyncHTTPClient (used before): a webhook is one small POST whose
/// answer's body is dropped, and AsyncHTTPClient's general machinery (request
/// state machines, tracing spans, a streamed response body read through an
/// async sequence) was the largest part of the daemon's CPU per message end to
/// end (issue 15). Here a request is one write of three parts and one promise.
/// What it does not do, on purpose: redirects (a webhook's 3xx is an answer),
/// proxies, compression, HTTP/2.
public final class WebhookHTTPClient: Sendable {
    private let group: any EventLoopGroup
    private let connectTimeout: Duration
    private let connectionsPerOrigin: Int
    private let maxIdle: Duration
    private let pools = NIOLockedValueBox<[WebhookOrigin: ConnectionPool<WebhookHTTPConnection, WebhookHTTPError>]>([:])
    private let closed = NIOLockedValueBox(false)

    /// - Parameters:
    ///   - connectTimeout: how long a TCP connection may take (its TLS handshake
    ///     comes with the first request, within that request's time).
    ///   - connectionsPerOrigin: the most connections open to one origin.
    ///   - maxIdle: an idle connection older than this is closed, not reused.
    public init(group: any EventLoopGroup, connectTimeout: Duration = .seconds(2), connectionsPerOrigin: Int = 64, maxIdle: Duration = .seconds(60)) {
        self.group = group
        self.connectTimeout = connectTimeout
        self.connectionsPerOrigin = connectionsPerOrigin
        self.maxIdle = maxIdle
    }

    /// POSTs `body` to `target` and returns the answer's status, within `timeout`
    /// in all (connect, send, answer). A reused connection that the receiver had
    /// closed meanwhile is tried again once on a fresh one. A request that finds
    /// every connection busy waits for one without a clock of its own: a busy
    /// connection frees within its own request's time, so the whole wait stays
    /// within twice `timeout`, and one that got its connection too late fails
    /// as timed out without sending.
    func post(
        _ target: WebhookTarget, tls: NIOSSLContext?, headers: HTTPHeaders, body: [UInt8], timeout: Duration
    ) async throws(WebhookHTTPError) -> WebhookHTTPResponse {
        let pool = try pool(for: target.origin)
        let deadline = NIODeadline.now() + .nanoseconds(timeout.nanoseconds)
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target.requestTarget, headers: headers)
        head.headers.replaceOrAdd(name: "host", value: target.hostHeader)
        head.headers.replaceOrAdd(name: "content-length", value: String(body.count))
        let buffer = ByteBuffer(bytes: body)
        var tries = 0
        while true {
            tries += 1
            let remaining = deadline - NIODeadline.now()
            guard remaining > .zero else { throw .timedOut }
            let (connection, reused) = try await pool.acquire { [group, connectTimeout] () throws(WebhookHTTPError) -> WebhookHTTPConnection in
                try await WebhookHTTPConnection.open(target.origin, group: group, tls: tls, connectTimeout: min(connectTimeout, .nanoseconds(remaining.nanoseconds)))
            }
            // All connections busy, it may have waited for one past its time.
            guard NIODeadline.now() < deadline else {
                pool.release(connection)
                throw .timedOut
            }
            do {
                let response = try await connection.send(head, body: buffer, deadline: deadline)
                pool.release(connection, reusable: response.keepAlive)
                return response
            } catch {
                pool.release(connection, reusable: false)
                // Nothing of an answer came on a connection that had served before:
                // the receiver most likely closed it while idle. Once, on a fresh one.
                if case .closed(answered: false, _) = error, reused, tries == 1 { continue }
                throw error
            }
        }
    }

    private func pool(for origin: WebhookOrigin) throws(WebhookHTTPError) -> ConnectionPool<WebhookHTTPConnection, WebhookHTTPError> {
        if closed.withLockedValue({ $0 }) { throw .shutdown }
        return pools.withLockedValue { pools in
            if let p = pools[origin] { return p }
            let p = ConnectionPool<WebhookHTTPConnection, WebhookHTTPError>(maxConnections: connectionsPerOrigin, maxIdle: maxIdle, closedError: .shutdown)
            pools[origin] = p
            return p
        }
    }

    /// Closes every idle connection; requests still in flight end by themselves
    /// (their connections close when given back).
    public func shutdown() async {
        closed.withLockedValue { $0 = true }
        for p in pools.withLockedValue({ Array($0.values) }) { await p.shutdown() }
    }
}
