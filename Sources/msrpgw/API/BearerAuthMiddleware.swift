import Foundation
import Hummingbird

/// `Authorization: Bearer <token>` on every request it guards, compared in
/// constant time. 401 with `WWW-Authenticate: Bearer` otherwise.
struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer "),
            constantTimeEqual(Array(header.dropFirst(7).utf8), token)
        else {
            var r = try APIError(.unauthorized, "a valid bearer token is required").response(from: request, context: context)
            r.headers[.wwwAuthenticate] = "Bearer realm=\"msrpgw\""
            return r
        }
        return try await next(request, context)
    }

}

/// Whether two secrets are equal, in time that does not depend on where they
/// differ (the API token, WebSocket tokens).
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<a.count { diff |= a[i] ^ b[i] }
    return diff == 0
}
