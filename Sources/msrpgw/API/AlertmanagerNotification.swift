import Crypto
import Foundation

/// Alertmanager's webhook body (`version: "4"`), and the system message it becomes.
struct AlertmanagerNotification: Decodable {
    struct Alert: Decodable {
        var status: String
        var labels: [String: String]
        var annotations: [String: String]?
        var startsAt: String?
        var fingerprint: String?
    }

    var version: String
    var groupKey: String
    var status: String
    var receiver: String?
    var commonLabels: [String: String]?
    var externalURL: String?
    var alerts: [Alert]

    func validate() throws {
        guard version == "4" else { throw APIError(.badRequest, "unsupported Alertmanager payload version \(version.debugDescription) (expected \"4\")") }
        guard !alerts.isEmpty else { throw APIError(.badRequest, "no alerts") }
        guard ["firing", "resolved"].contains(status) else { throw APIError(.badRequest, "status must be firing or resolved") }
    }

    /// `[FIRING:2] HighLatency (severity=page)` then a line per alert with its
    /// summary (or description), ready for a chat window.
    var text: String {
        let name = commonLabels?["alertname"] ?? alerts[0].labels["alertname"] ?? "alert"
        var head = "[\(status.uppercased()):\(alerts.count)] \(name)"
        let extra = (commonLabels ?? [:]).filter { $0.key != "alertname" }.sorted { $0.key < $1.key }
        if !extra.isEmpty { head += " (" + extra.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + ")" }
        var lines = [head]
        for a in alerts {
            let summary = a.annotations?["summary"] ?? a.annotations?["description"] ?? a.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            lines.append("- \(a.status == status ? "" : "[\(a.status)] ")\(summary)")
        }
        return lines.joined(separator: "\n")
    }

    /// The same notification sent again (Alertmanager retries on 5xx and time-outs)
    /// is the same event: a digest of what identifies it.
    var idempotencyKey: String {
        var parts = [groupKey, status]
        for a in alerts { parts.append("\(a.fingerprint ?? a.labels.sorted { $0.key < $1.key }.description)@\(a.startsAt ?? "")/\(a.status)") }
        let digest = SHA256.hash(data: Data(parts.joined(separator: "\n").utf8))
        return "alertmanager-" + digest.map { String(format: "%02x", $0) }.joined()
    }
}
