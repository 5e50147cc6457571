import CoreMetrics
import Events
import Queue

/// The gateway's metrics, through swift-metrics (the daemon exports them for
/// Prometheus at `/metrics`). Names are the Prometheus ones.
public struct GatewayMetrics: Sendable {
    private let accepted = Counter(label: "msrpgw_messages_in_total", dimensions: [("result", "accepted")])
    private let refused = Counter(label: "msrpgw_messages_in_total", dimensions: [("result", "refused")])

    public init() {}

    func messageIn(accepted ok: Bool) { (ok ? accepted : refused).increment() }

    /// Makes every series the alert rules and the dashboard (deploy/) watch
    /// exist at 0 from the start: a rate over a series that appears only with its
    /// first event misses that event, and an absent series looks like no data.
    func declare(adapters: [String]) {
        for adapter in adapters {
            for state in EventState.allCases where state != .leased {
                _ = Counter(label: "msrpgw_deliveries_total", dimensions: [("adapter", adapter), ("outcome", state.rawValue)])
            }
            _ = Counter(label: "msrpgw_dispatch_postponed_total", dimensions: [("adapter", adapter)])
            openCircuits(adapter: adapter, count: 0)
        }
        for (kind, results) in [(EventKind.report, ["success", "failure"]), (.imdn, ["delivered", "failed", "displayed"]), (.system, ["sent"])] {
            for result in results { _ = Counter(label: "msrpgw_reports_sent_total", dimensions: [("kind", kind.rawValue), ("result", result)]) }
            _ = Counter(label: "msrpgw_reports_undeliverable_total", dimensions: [("kind", kind.rawValue)])
        }
        for surface in ["msrp-session", "msrp-connection", "api"] {
            _ = Counter(label: "msrpgw_rate_limited_total", dimensions: [("surface", surface)])
        }
        storage(failing: false)
    }

    /// A request refused for its rate (`msrp-session`, `api`).
    public func rateLimited(surface: String) {
        Counter(label: "msrpgw_rate_limited_total", dimensions: [("surface", surface)]).increment()
    }

    func delivery(adapter: String, state: EventState) {
        Counter(label: "msrpgw_deliveries_total", dimensions: [("adapter", adapter), ("outcome", state.rawValue)]).increment()
    }

    /// Events given back to the queue to wait for their endpoint (busy, or its
    /// circuit open): no attempt spent.
    func postponed(adapter: String, count: Int) {
        Counter(label: "msrpgw_dispatch_postponed_total", dimensions: [("adapter", adapter)]).increment(by: count)
    }

    /// Endpoints whose circuit is open (not answering; only a probe goes).
    func openCircuits(adapter: String, count: Int) {
        Gauge(label: "msrpgw_endpoint_circuits_open", dimensions: [("adapter", adapter)]).record(count)
    }

    /// A REPORT, IMDN or system message written to a session. `result`: for a
    /// REPORT `success` or `failure`, for an IMDN its disposition (`delivered`,
    /// `failed`, `displayed`), for a system message `sent`: what alerts watch.
    func reportSent(kind: EventKind, result: String) {
        Counter(label: "msrpgw_reports_sent_total", dimensions: [("kind", kind.rawValue), ("result", result)]).increment()
    }

    /// Whether messages cannot be stored now (1) or can (0): `/healthz` degraded.
    public func storage(failing: Bool) {
        Gauge(label: "msrpgw_storage_failing").record(failing ? 1 : 0)
    }

    /// A REPORT or IMDN whose session had ended: recorded, never retried.
    func reportUndeliverable(kind: EventKind) {
        Counter(label: "msrpgw_reports_undeliverable_total", dimensions: [("kind", kind.rawValue)]).increment()
    }

    /// Queue depth and age, refreshed from the queue's statistics.
    public func record(_ stats: QueueStats, adapters: [String], sessions: Int, connectionHandlers: Int) {
        let names = Set(adapters).union(stats.counts.keys.map(\.adapter))
        for adapter in names {
            for state in EventState.allCases {
                Gauge(label: "msrpgw_queue_events", dimensions: [("adapter", adapter), ("state", state.rawValue)])
                    .record(stats.count(adapter: adapter, state: state))
            }
        }
        Gauge(label: "msrpgw_queue_oldest_due_seconds").record(stats.oldestDueAge.map { Double($0.components.seconds) } ?? 0)
        Gauge(label: "msrpgw_sessions").record(sessions)
        Gauge(label: "msrpgw_msrp_connection_handlers").record(connectionHandlers)
    }
}
