import Events
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL

/// Delivers events as signed HTTP POSTs (Standard Webhooks) to configured
/// endpoints. Targets are the endpoints' URLs; only configured ones are
/// accepted. Connections are pooled per origin (`WebhookHTTPClient`); TLS
/// certificates are always verified, against the system's CAs or an
/// endpoint's own `caFile`.
public final class WebhookAdapter: Adapter {
    public let name = "webhook"
    public let schemes = ["https", "http"]
    public let concurrency: Int
    /// Half the slots (twice the connections the daemon's HTTP client opens to
    /// one receiver, a quarter): a delivery that finds every connection busy
    /// waits at the connection and goes the moment one is free, instead of
    /// waiting in the queue for the next lease (at full speed deliveries kept
    /// pace with what was acknowledged only with this depth: issue 15).
    public var endpointConcurrency: Int { max(1, concurrency / 2) }
    /// The endpoints in force, replaced by a configuration reload.
    private let state: NIOLockedValueBox<Endpoints>
    private let client: WebhookHTTPClient
    private let logger: Logger
    /// Endpoints that answered 410: nothing more goes to them until restart.
    private let disabled = NIOLockedValueBox<Set<String>>([])
    private let now: @Sendable () -> Date

    /// - Parameter client: its owner shuts it down.
    public init(
        endpoints: [WebhookEndpoint], client: WebhookHTTPClient, concurrency: Int = 256, logger: Logger = Logger(label: "msrpgw.webhook"),
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws(WebhookConfigurationError) {
        state = NIOLockedValueBox(Endpoints(configured: try Self.entries(endpoints)))
        self.client = client
        self.concurrency = concurrency
        self.logger = logger
        self.now = now
    }

    /// Endpoints by URL: the configured ones take new routes; the `retired` ones,
    /// taken out by a reload, still deliver what was queued for them (a reload
    /// loses nothing acknowledged).
    struct Endpoints: Sendable {
        var configured: [String: Entry]
        var retired: [String: Entry] = [:]

        func entry(_ url: String) -> Entry? { configured[url] ?? retired[url] }
    }

    struct Entry: Sendable {
        var endpoint: WebhookEndpoint
        var signer: WebhookSigner
        /// Where requests go, parsed once.
        var target: WebhookTarget
        /// For https: the system's CAs, or the endpoint's own CA file.
        var tls: NIOSSLContext?
        /// The headers every request to it carries (the per-request ones are added).
        var headers: HTTPHeaders
    }

    private static func entries(_ endpoints: [WebhookEndpoint]) throws(WebhookConfigurationError) -> [String: Entry] {
        var table: [String: Entry] = [:]
        for e in endpoints {
            try e.validate()
            let signer: WebhookSigner
            do { signer = try WebhookSigner(secrets: e.secrets) } catch { throw WebhookConfigurationError("webhook \(e.name): \(error)") }
            guard let target = WebhookTarget(url: e.url, caFile: e.caFile) else {
                throw WebhookConfigurationError("webhook \(e.name): \(e.url.debugDescription) is not an http(s) URL")
            }
            var tls: NIOSSLContext?
            if target.origin.tls {
                var c = TLSConfiguration.makeClientConfiguration()
                if let ca = e.caFile { c.trustRoots = .file(ca) }
                do { tls = try NIOSSLContext(configuration: c) } catch {
                    throw WebhookConfigurationError("webhook \(e.name): TLS: \(error)")
                }
            }
            var headers = HTTPHeaders([("content-type", "application/json"), ("user-agent", "msrpgw")])
            for (k, v) in e.headers.sorted(by: { $0.key < $1.key }) { headers.add(name: k, value: v) }
            table[e.url] = Entry(endpoint: e, signer: signer, target: target, tls: tls, headers: headers)
        }
        return table
    }

    /// Puts a reloaded configuration's endpoints (URLs, secrets, time-outs) in
    /// force; one taken out keeps delivering what is queued for it. Returns what
    /// puts the previous ones back (a reload refused by a later step).
    public func replaceEndpoints(with endpoints: [WebhookEndpoint]) throws(WebhookConfigurationError) -> @Sendable () -> Void {
        let configured = try Self.entries(endpoints)
        let previous = state.withLockedValue { current in
            defer {
                var retired = current.retired.merging(current.configured) { _, newer in newer }
                for url in configured.keys { retired[url] = nil }
                current = Endpoints(configured: configured, retired: retired)
            }
            return current
        }
        return { [state] in state.withLockedValue { $0 = previous } }
    }

    public func validate(target: String) throws(RouteError) {
        guard state.withLockedValue({ $0.configured[target] }) != nil else {
            throw RouteError("\(target) is not a configured webhook endpoint (add it under [webhooks.NAME])")
        }
    }

    public func deliver(_ event: QueuedEvent) async -> DeliveryOutcome {
        guard let entry = state.withLockedValue({ $0.entry(event.target) }) else {
            return .permanentFailure(code: 403, reason: "\(event.target) is no longer a configured webhook endpoint")
        }
        let (endpoint, signer) = (entry.endpoint, entry.signer)
        if disabled.withLockedValue({ $0.contains(endpoint.url) }) {
            return .deadLetter(code: 403, reason: "webhook \(endpoint.name) is disabled (it answered 410)")
        }
        let body: [UInt8]
        switch event.body {
        case .inline(let b): body = b
        case .file(let path, _):
            guard let data = FileManager.default.contents(atPath: path) else {
                return .permanentFailure(code: 500, reason: "body file \(path) is missing")
            }
            body = [UInt8](data)
        }
        let payload = WebhookPayload(event: event, body: body, now: now()).encoded()
        // The id is stable across retries: it is the receiver's idempotency key.
        let id = "msg_\(event.id)"
        let timestamp = Int64(now().timeIntervalSince1970)
        var headers = entry.headers
        headers.add(name: "webhook-id", value: id)
        headers.add(name: "webhook-timestamp", value: String(timestamp))
        headers.add(name: "webhook-signature", value: signer.signature(id: id, timestamp: timestamp, body: payload))
        do {
            let response = try await client.post(entry.target, tls: entry.tls, headers: headers, body: payload, timeout: endpoint.timeout)
            let outcome = WebhookResponsePolicy.outcome(status: response.status, retryAfter: response.retryAfter, now: now())
            if case .deadLetter = outcome {
                disabled.withLockedValue { _ = $0.insert(endpoint.url) }
                logger.error("webhook endpoint answered 410 Gone: disabled until restart", metadata: ["webhook": "\(endpoint.name)"])
            }
            return outcome
        } catch {
            return .retry(after: nil, reason: "webhook \(endpoint.name) unreachable: \(error)")
        }
    }
}
