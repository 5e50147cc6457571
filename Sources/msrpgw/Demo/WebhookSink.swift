import Foundation
import Hummingbird
import HTTPTypes
import NIOConcurrencyHelpers
import WebhookAdapter

/// The demo's webhook receiver: checks each request's Standard Webhooks
/// signature, prints what arrived, and answers by path: `/ok` 204, `/flaky` 500
/// the first time it sees a webhook-id and 200 after, `/broken` 400.
struct WebhookSink: Sendable {
    let secret: String
    private let seen = NIOLockedValueBox<Set<String>>([])

    init(secret: String) { self.secret = secret }

    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.post("/:name") { request, context in
            let name = context.parameters.get("name") ?? "?"
            let body = try await request.body.collect(upTo: 1 << 20)
            let id = request.headers.first { $0.name.canonicalName == "webhook-id" }?.value ?? ""
            let timestamp = Int64(request.headers.first { $0.name.canonicalName == "webhook-timestamp" }?.value ?? "") ?? 0
            let signature = request.headers.first { $0.name.canonicalName == "webhook-signature" }?.value ?? ""
            let expected = try WebhookSigner(secrets: [secret]).signature(id: id, timestamp: timestamp, body: Array(body.readableBytesView))
            let valid = signature.split(separator: " ").contains { Substring(expected) == $0 }
            var summary = ""
            if let json = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any], let data = json["data"] as? [String: Any] {
                let from = (data["from"] as? [String: Any])?["uri"] as? String ?? "?"
                summary = "from \(from): \(data["text"] as? String ?? "(binary)")"
            }
            let first = seen.withLockedValue { $0.insert("\(name)|\(id)").inserted }
            let status: HTTPResponse.Status
            switch name {
            case "flaky": status = first ? .internalServerError : .ok
            case "broken": status = .badRequest
            default: status = .noContent
            }
            Printer.line("[sink] POST /\(name) \(id) signature \(valid ? "valid" : "INVALID") \(summary) -> \(status.code)")
            return Response(status: valid ? status : .unauthorized)
        }
        return router
    }
}
