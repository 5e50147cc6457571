import Admission
import Events
import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import Logging
import Prometheus
import Queue
import SDP

/// The HTTP API (README, "HTTP API"): sessions from SDP offers, messages in,
/// Alertmanager alerts, event inspection and replay, health and metrics.
/// `/v1/*` needs the bearer token when one is configured.
struct GatewayAPI: Sendable {
    let gateway: Gateway
    let token: String?
    let alertSubscribers: [String]
    let registry: PrometheusCollectorRegistry
    let logger: Logger
    /// The MSRP WebSocket listeners' ports, for the web client.
    var webSocketPorts: (ws: Int?, wss: Int?) = (nil, nil)
    /// The relay role is on: the web client AUTHs with its token (RFC 7977 §5.3).
    var webClientAuths = false

    /// Requests per source address, if limited.
    var requestRate: RateLimit?

    func router() -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        if let rate = requestRate {
            router.add(middleware: RateLimitMiddleware(limiter: RateLimiter(rate), metrics: gateway.metrics, logger: logger))
        }
        router.get("/healthz") { _, _ in try await health() }
        router.get("/metrics") { _, _ in await metrics() }
        // The web client page: public (it holds no secret; the token is typed in).
        let page = WebClientPage.html(wsPort: webSocketPorts.ws, wssPort: webSocketPorts.wss, relay: webClientAuths)
        router.get("/client") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: page)))
        }
        let v1 = router.group("/v1")
        if let token { v1.add(middleware: BearerAuthMiddleware(token: Array(token.utf8))) }
        v1.post("/sessions") { request, _ in try await createSession(request) }
        v1.get("/sessions") { _, _ in try jsonResponse(try await listSessions()) }
        v1.get("/sessions/:id") { _, context in
            let id = try context.parameters.require("id")
            let node = gateway.sharedQueue?.node
            if let s = gateway.session(id) { return try jsonResponse(SessionView(s, node: node)) }
            guard let s = try await clusterSession(id) else { throw APIError(.notFound, "no session \(id)") }
            return try jsonResponse(SessionView(s))
        }
        v1.delete("/sessions/:id") { _, context in
            let id = try context.parameters.require("id")
            if gateway.closeSession(id) { return Response(status: .noContent) }
            guard let s = try await clusterSession(id) else { throw APIError(.notFound, "no session \(id)") }
            // Its connection is on that node: only that node can close it.
            let addresses = (try? await gateway.sharedQueue?.clusterNodes())?.first { $0.id == s.node }?.addresses ?? []
            throw APIError(.conflict, "session \(id) is held by node \(s.node): close it there\(addresses.isEmpty ? "" : " (\(addresses.joined(separator: ", ")))")")
        }
        v1.post("/messages") { request, _ in try await postMessage(request) }
        v1.post("/alertmanager") { request, _ in try await postAlert(request) }
        v1.get("/events") { request, _ in try await listEvents(request) }
        v1.get("/events/:id") { _, context in
            let id = try eventID(context)
            guard let e = try await gateway.queue.event(id) else { throw APIError(.notFound, "no event \(id)") }
            return try jsonResponse(EventView(e))
        }
        v1.post("/events/:id/replay") { _, context in
            let id = try eventID(context)
            guard let e = try await gateway.queue.event(id) else { throw APIError(.notFound, "no event \(id)") }
            guard try await gateway.queue.replay(id) else {
                throw APIError(.conflict, "event \(id) is \(e.state.rawValue): only failed or dead events are replayed")
            }
            logger.notice("event replayed", metadata: ["event": "\(id)"])
            return try jsonResponse(["replayed": id.description])
        }
        return router
    }

    private func eventID(_ context: APIRequestContext) throws -> EventID {
        let text = try context.parameters.require("id")
        guard let id = EventID(text) else { throw APIError(.badRequest, "\(text.debugDescription) is not an event id") }
        return id
    }

    // MARK: - Sessions

    /// This node's sessions and, where nodes share the queue, every other
    /// node's from the cluster's directory; oldest first.
    private func listSessions() async throws -> [SessionView] {
        let node = gateway.sharedQueue?.node
        var views = gateway.liveSessions.map { SessionView($0, node: node) }
        if let shared = gateway.sharedQueue {
            let others = try await directory { () async throws(QueueError) in try await shared.clusterSessions() }.filter { $0.node != shared.node }
            views += others.map(SessionView.init)
        }
        return views.sorted { ($0.created_at, $0.id) < ($1.created_at, $1.id) }
    }

    /// Another node's session, from the cluster's directory. An id no node
    /// could have made (not a token) is no session: the directory is not asked.
    private func clusterSession(_ id: String) async throws -> ClusterSession? {
        guard let shared = gateway.sharedQueue, (try? APIInput.token(id, field: "session")) != nil else { return nil }
        return try await directory { () async throws(QueueError) in try await shared.clusterSession(id) }.flatMap { $0.node == shared.node ? nil : $0 }
    }

    /// A read of the cluster's directory: 503 while the database does not answer.
    private func directory<T>(_ read: () async throws(QueueError) -> T) async throws -> T {
        do { return try await read() } catch {
            logger.warning("cannot read the cluster's sessions", metadata: ["error": "\(error)"])
            throw APIError(.serviceUnavailable, "the cluster's directory cannot be read: \(error.kind.rawValue)")
        }
    }

    private func createSession(_ request: Request) async throws -> Response {
        guard let ct = request.headers[.contentType], ct.lowercased().hasPrefix("application/sdp") else {
            throw APIError(.unsupportedMediaType, "expected Content-Type: application/sdp with an SDP offer")
        }
        let body = try await readBody(request, limit: 16 * 1024)
        guard let text = String(validating: body.readableBytesView, as: UTF8.self) else { throw APIError(.badRequest, "SDP is not UTF-8") }
        let offer: SessionDescription
        do { offer = try SDPParser().parse(text) } catch { throw APIError(.badRequest, error.description) }
        let query = request.uri.queryParameters
        let peer = try query["peer"].map { v throws(APIError) in try APIInput.uri(String(v), field: "peer") }
        let route = try query["route"].map { v throws(APIError) in try APIInput.uri(String(v), field: "route") }
        do {
            let (session, answer) = try await gateway.createSession(offer: offer, peer: peer, route: route)
            var headers: HTTPFields = [.contentType: "application/sdp", .location: "/v1/sessions/\(session.id)"]
            if let name = HTTPField.Name("Msrpgw-Session-Id") { headers[name] = session.id }
            return Response(status: .created, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: answer.text)))
        } catch {
            throw APIError(HTTPResponse.Status(code: error.status), error.description)
        }
    }

    // MARK: - Messages and alerts

    private func postMessage(_ request: Request) async throws -> Response {
        let m = try await decodeJSON(MessageRequest.self, from: request)
        let destination: OutboundMessage.Destination
        switch (m.session, m.to) {
        case (let s?, nil): destination = .session(try APIInput.token(s, field: "session"))
        case (nil, let t?): destination = .address(try APIInput.uri(t, field: "to"))
        default: throw APIError(.badRequest, "give exactly one of session and to")
        }
        guard !m.text.isEmpty else { throw APIError(.badRequest, "text is empty") }
        let contentType = try APIInput.mediaType(m.content_type ?? "text/plain", field: "content_type")
        let message = OutboundMessage(
            to: destination, text: m.text, contentType: contentType, system: m.system ?? false,
            from: try m.from.map { v throws(APIError) in try APIInput.uri(v, field: "from") },
            subject: try m.subject.map { v throws(APIError) in try APIInput.headerText(v, field: "subject") },
            idempotencyKey: try request.headers.first { $0.name.canonicalName == "idempotency-key" }
                .map { f throws(APIError) in try APIInput.token(f.value, field: "Idempotency-Key") })
        return try await enqueue(message)
    }

    private func postAlert(_ request: Request) async throws -> Response {
        let n = try await decodeJSON(AlertmanagerNotification.self, from: request)
        try n.validate()
        guard !alertSubscribers.isEmpty else { throw APIError(.serviceUnavailable, "no [alertmanager] subscribers are configured") }
        var ids: [String] = []
        for subscriber in alertSubscribers {
            let message = OutboundMessage(
                to: .address(subscriber), text: n.text, system: true, subject: "Alertmanager \(n.status)", idempotencyKey: n.idempotencyKey)
            ids += try await enqueueIDs(message)
        }
        logger.info("alert notification queued", metadata: ["group": "\(n.groupKey)", "status": "\(n.status)", "events": "\(ids.count)"])
        return try jsonResponse(EnqueuedResponse(ids: ids))
    }

    private func enqueue(_ message: OutboundMessage) async throws -> Response {
        try jsonResponse(EnqueuedResponse(ids: try await enqueueIDs(message)), status: .accepted)
    }

    /// A 2xx from here means the events are durable.
    private func enqueueIDs(_ message: OutboundMessage) async throws -> [String] {
        do {
            return try await gateway.submit(message).map(\.description)
        } catch let e as SessionSetupError {
            throw APIError(HTTPResponse.Status(code: e.status), e.description)
        } catch let e as RouteError {
            throw APIError(.forbidden, e.reason)
        } catch let e as QueueError {
            logger.error("cannot enqueue", metadata: ["error": "\(e)"])
            throw APIError(.serviceUnavailable, "the queue cannot store the message: \(e.kind.rawValue)")
        }
    }

    // MARK: - Events

    private func listEvents(_ request: Request) async throws -> Response {
        let q = request.uri.queryParameters
        var filter = EventFilter()
        if let s = q["state"] {
            guard let state = EventState(rawValue: String(s)) else { throw APIError(.badRequest, "state must be one of \(EventState.allCases.map(\.rawValue).joined(separator: ", "))") }
            filter.state = state
        }
        if let k = q["kind"] {
            guard let kind = EventKind(rawValue: String(k)) else { throw APIError(.badRequest, "kind must be one of \(EventKind.allCases.map(\.rawValue).joined(separator: ", "))") }
            filter.kind = kind
        }
        filter.adapter = q["adapter"].map(String.init)
        filter.sessionID = q["session"].map(String.init)
        if let b = q["before"] {
            guard let id = EventID(String(b)) else { throw APIError(.badRequest, "before must be an event id") }
            filter.before = id
        }
        if let l = q["limit"] {
            guard let n = Int(l), (1...1000).contains(n) else { throw APIError(.badRequest, "limit must be 1...1000") }
            filter.limit = n
        }
        return try jsonResponse(try await gateway.queue.events(filter).map(EventView.init))
    }

    // MARK: - Health and metrics

    /// 200 `ok`, or 503: `degraded` while messages cannot be stored (the queue
    /// or the body files cannot be written; reads, and so statistics, may still
    /// work on a full disk), `queue unavailable` when it cannot even be read.
    private func health() async throws -> Response {
        if let failure = gateway.storageFailure {
            return try jsonResponse(["status": "degraded", "reason": failure.reason, "since": RFC3339.string(from: failure.since)],
                                    status: .serviceUnavailable)
        }
        do {
            let stats = try await gateway.queue.stats()
            return try jsonResponse(HealthView(
                status: "ok", sessions: gateway.liveSessions.count, queued: stats.count(state: .queued) + stats.count(state: .leased),
                dead: stats.count(state: .dead), oldest_due_seconds: stats.oldestDueAge.map { Double($0.components.seconds) }))
        } catch {
            return try jsonResponse(["status": "queue unavailable: \(error)"], status: .serviceUnavailable)
        }
    }

    private func metrics() async -> Response {
        try? await gateway.recordGauges()
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
    }
}
