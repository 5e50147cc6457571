import Admission
import Gateway
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The API's request context: Hummingbird's, with the peer's address (for the
/// per-source rate limit).
struct APIRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// Requests per source address (an IPv4 address or an IPv6 /64): beyond the
/// rate, `429 Too Many Requests` with `Retry-After`, counted in
/// `msrpgw_rate_limited_total{surface="api"}`, logged at most every 10 s. One
/// source pushing work cannot take the API from the others.
struct RateLimitMiddleware<Context: RemoteAddressRequestContext>: RouterMiddleware {
    let limiter: RateLimiter<SourceKey>
    let metrics: GatewayMetrics
    let logger: Logger
    let log = NIOLockedValueBox(LogThrottle())

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let address = context.remoteAddress, let wait = limiter.admit(SourceKey(address)) else {
            return try await next(request, context)
        }
        metrics.rateLimited(surface: "api")
        if log.withLockedValue({ $0.admit().log }) {
            logger.warning("API source over its request rate: 429", metadata: ["source": "\(address.ipAddress ?? "?")", "path": "\(request.uri.path)"])
        }
        var response = try APIError(.tooManyRequests, "too many requests: at most \(Int(limiter.limit.rate)) a second from one address")
            .response(from: request, context: context)
        response.headers[.retryAfter] = String(wait.retryAfterSeconds)
        return response
    }
}
