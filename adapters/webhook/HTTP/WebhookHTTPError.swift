/// Why a webhook request got no answer.
enum WebhookHTTPError: Error, Sendable, CustomStringConvertible {
    /// No connection: refused, unreachable, the connect time-out, or the TLS handshake.
    case connect(String)
    /// No whole answer within the request's time.
    case timedOut
    /// The connection ended before the whole answer; `answered`: part of it came.
    case closed(answered: Bool, String)
    /// The receiver's bytes are not HTTP/1.1.
    case malformed(String)
    /// The client is shutting down.
    case shutdown

    var description: String {
        switch self {
        case .connect(let why): "cannot connect: \(why)"
        case .timedOut: "no answer in time"
        case .closed(let answered, let why): answered ? "the connection closed in the middle of the answer (\(why))" : "the connection closed before an answer (\(why))"
        case .malformed(let why): "not an HTTP answer: \(why)"
        case .shutdown: "the HTTP client is shutting down"
        }
    }
}

/// What a webhook receiver answered (its body is read and dropped).
struct WebhookHTTPResponse: Sendable {
    var status: Int
    var retryAfter: String?
    /// Whether the connection may carry the next request.
    var keepAlive: Bool
}
