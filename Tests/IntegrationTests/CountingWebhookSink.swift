import AsyncHTTPClient
import Foundation
import NIOCore
import TestPeers

/// `msrpgw-webhook-sink` (Tests/Tools/WebhookSink) in its own process: a fast
/// receiver that answers every POST 204 and counts them by path.
final class CountingWebhookSink: @unchecked Sendable {
    let port: Int
    let process: ChildProcess

    /// On `port` (one the test reserved), or on one the system picks.
    init(port: Int = 0) async throws {
        process = try ChildProcess(Executables.webhookSink, [String(port)], name: "webhook sink")
        try await process.waitFor("READY")
        guard let line = process.stdout.split(separator: "\n").first(where: { $0.hasPrefix("READY ") }), let port = Int(line.dropFirst(6)) else {
            throw ChildProcess.ChildFailed(description: "the webhook sink printed no port: \(process.stdout)")
        }
        self.port = port
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Requests received per path.
    func counts(_ http: HTTPClient) async throws -> [String: Int] {
        let response = try await http.execute(HTTPClientRequest(url: url("/counts")), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 20)
        return try JSONDecoder().decode([String: Int].self, from: Data(body.readableBytesView))
    }

    /// For a defer: see `ChildProcess.stop()`.
    func stop() { process.stop() }
    func stop() async { await process.stop() }
}
