import Foundation
import MSRPGatewayClient
import NIOConcurrencyHelpers
import Testing
import TestPeers

/// `msrpgw backup` while messages pour in, `msrpgw restore` into a fresh data
/// directory, and a new gateway on it: every message acknowledged before the
/// backup started is delivered from the restored copy.
@Suite(.serialized, .enabled(if: Peers.available("python3") && Peers.pythonModuleAvailable("standardwebhooks"), "needs python3 and pip install standardwebhooks"))
struct BackupRestoreTests {
    @Test func aBackupUnderLoadRestoresEveryAcknowledgedMessage() async throws {
        // The receiver is down while the first gateway runs: everything stays queued.
        let sinkPort = try freePort()
        // (The first lines land in [dispatch]: the circuit of the receiver that is down
        // postpones its events by at most 2 s, so the restored copy has none due far ahead.)
        let route = """
            breaker_max_backoff = "2s"
            [routes]
            "sip:ops@gw.example" = ["webhook:ops"]
            [webhooks.ops]
            url = "http://127.0.0.1:\(sinkPort)/ok"
            secrets = ["\(WebhookSinkProcess.secret)"]
            """
        let queue = "retry_schedule = [\"1s\"]\nmax_attempts = 1000\njitter = false"
        // Bodies above 1 KiB go to files: half the messages have one.
        let environment = ["MSRPGW_GATEWAY_INLINE_BODY_LIMIT": "1024"]
        let first = try await GatewayProcess(extra: route, queue: queue, environment: environment)
        defer { first.stop() }
        let clients = try TestClients()
        // Four senders (a slow disk's fsyncs hold one sender back, not the load).
        var senders: [GatewayClient] = []
        for i in 0..<4 {
            let client = clients.client(first, address: "sip:sender\(i)@example.com")
            try await client.open()
            senders.append(client)
        }
        let acknowledged = NIOLockedValueBox<Set<Int>>([])
        let total = 400
        let clientsSending = senders
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for (k, client) in clientsSending.enumerated() {
                    group.addTask {
                        for i in stride(from: k, to: total, by: clientsSending.count) {
                            let text = i % 2 == 0 ? "short \(i)" : "long \(i) " + String(repeating: "x", count: 4000)
                            guard (try? await client.send(text, to: "sip:ops@gw.example", messageID: "backup-\(i)", successReport: false, imdn: [])) == .accepted
                            else { return }
                            acknowledged.withLockedValue { _ = $0.insert(i) }
                        }
                    }
                }
            }
        }
        #expect(await until(.seconds(60)) { acknowledged.withLockedValue { $0.count } >= 100 })
        let before = acknowledged.withLockedValue { $0 }
        let destination = Scratch.path("backup")
        let backup = try ChildProcess(Executables.msrpgw, ["backup", "--config", first.configPath, destination], name: "msrpgw backup")
        #expect(try await backup.wait(timeout: .seconds(60)) == 0, "\(backup.stderr)")
        let during = acknowledged.withLockedValue { $0.count }
        _ = await load.value
        await first.stop()
        #expect(during > before.count, "the backup ran while messages were acknowledged (\(before.count) → \(during))")
        let summary = try JSONDecoder().decode(Summary.self, from: Data(contentsOf: URL(fileURLWithPath: destination + "/backup.json")))
        #expect(summary.pending >= before.count && summary.bodies >= before.filter { $0 % 2 == 1 }.count, "\(summary)")

        // Restore into a fresh data directory; a second restore over it is refused.
        let fresh = try Scratch.directory("restored")
        let restoreConfig = fresh + "/restore.toml"
        try "[gateway]\ndata_dir = \"\(fresh)/data\"\n".write(toFile: restoreConfig, atomically: true, encoding: .utf8)
        let restore = try ChildProcess(Executables.msrpgw, ["restore", "--config", restoreConfig, destination], name: "msrpgw restore")
        #expect(try await restore.wait(timeout: .seconds(60)) == 0, "\(restore.stderr)")
        let again = try ChildProcess(Executables.msrpgw, ["restore", "--config", restoreConfig, destination], name: "msrpgw restore again")
        #expect(try await again.wait(timeout: .seconds(60)) == 1)
        #expect(again.stderr.contains("exists; stop the gateway"), "\(again.stderr)")

        let sink = try await WebhookSinkProcess(port: sinkPort)
        defer { sink.stop() }
        let second = try await GatewayProcess(extra: route, queue: queue, directory: fresh, environment: environment)
        defer { second.stop() }
        func delivered() -> [Int: Int] {
            var seen: [Int: Int] = [:]
            for r in sink.records("/ok") where r.valid {
                guard let text = r.payload?.data.text, let n = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { continue }
                seen[n, default: 0] += 1
                if n % 2 == 1 { #expect(text.hasSuffix(String(repeating: "x", count: 4000)), "body of \(n) whole") }
            }
            return seen
        }
        // The sink's records read once per look (read per message, the look parsed
        // the whole file hundreds of times: seconds of the test pool's CPU).
        #expect(await until(.seconds(60)) { let seen = delivered(); return before.allSatisfy { seen[$0] != nil } },
                "missing: \(before.filter { delivered()[$0] == nil }.sorted().prefix(20)); the restored gateway: \(second.process.stderr.suffix(3000))")
        #expect(delivered().values.allSatisfy { $0 == 1 }, "each once")
        await clients.shutdown()
    }

    struct Summary: Decodable {
        var events: Int
        var pending: Int
        var bodies: Int
    }
}
