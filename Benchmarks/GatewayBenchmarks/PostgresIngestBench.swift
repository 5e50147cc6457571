// Ingest through `msrpgw serve` on PostgreSQL (issue 19): 64 MSRP sessions, one
// message in flight each, SEND -> durable -> 200, for 10 s at full speed, with
// deliveries to the NIO webhook sink going on as users run it. One node on
// SQLite (the reference of the same run), one node on PostgreSQL, two nodes on
// the same PostgreSQL (the sessions split between them), each daemon in its own
// process, the load in others, PostgreSQL (a throwaway server, its defaults:
// fsync and synchronous_commit on) in its own.
import Foundation
import TestPeers

func benchPostgresIngest() async throws {
    let build = repository + "/.build/release/"
    for tool in [build + "msrpgw", build + "msrpgw-webhook-sink"] where !FileManager.default.isExecutableFile(atPath: tool) {
        say("pg-ingest: needs `swift build -c release --product msrpgw` and `--product msrpgw-webhook-sink` (\(tool))")
        return
    }
    let server = try await PostgresServer.start()
    defer { Task { try? await server.stop() } }
    let (sink, sinkOut) = try run(build + "msrpgw-webhook-sink", ["0", "1"])
    defer { stop(sink) }
    guard let ready = LineReader(sinkOut).line(startingWith: "READY "), let sinkPort = Int(ready.dropFirst(6)) else { fatalError("the sink did not start") }
    let route = """
        [routes]
        "sip:ops@gw.example" = ["webhook:sink"]
        [webhooks.sink]
        url = "http://127.0.0.1:\(sinkPort)/hook"
        secrets = ["\(secret)"]
        """

    var lines: [String] = []
    for (label, nodes) in [("SQLite, 1 node", 1), ("PostgreSQL, 1 node", 1), ("PostgreSQL, 2 nodes", 2)] {
        let database = try await server.createDatabase("ingest")
        let queue = label.hasPrefix("SQLite") ? "" : """
            [queue]
            backend = "postgresql"
            url = "\(server.url(database: database))"
            """
        var daemons: [(Process, Int, String)] = []
        for node in 1...nodes {
            let dir = try scratch()
            let apiPort = try freeTCPPort()
            try daemonConfiguration(dir: dir, apiPort: apiPort, extra: route + "\n" + queue)
                .replacingOccurrences(of: "[gateway]\n", with: "[gateway]\nnode = \(node)\n")
                .write(toFile: dir + "/msrpgw.toml", atomically: true, encoding: .utf8)
            daemons.append((try await startDaemon(build + "msrpgw", dir: dir), apiPort, dir))
        }
        // One load process per node, the 64 sessions split between them.
        let loads = try daemons.map { _, apiPort, _ in
            try run(CommandLine.arguments[0], ["e2e-load", "http://127.0.0.1:\(apiPort)", "0", "10", String(64 / nodes)])
        }
        let readers = loads.map { LineReader($0.1) }
        for reader in readers { guard reader.line(startingWith: "OPEN") != nil else { fatalError("the load did not start") } }
        var acked = 0, p50 = 0.0, p99 = 0.0
        for reader in readers {
            guard let result = reader.line(startingWith: "ACKED ") else { fatalError("the load failed") }
            let parts = result.split(separator: " ")
            acked += Int(parts[1]) ?? 0
            p50 = max(p50, Double(parts[2]) ?? 0)
            p99 = max(p99, Double(parts[3]) ?? 0)
        }
        for (load, _) in loads { load.waitUntilExit() }
        for (daemon, _, dir) in daemons {
            stop(daemon)
            try? FileManager.default.removeItem(atPath: dir)
        }
        lines.append(String(format: "  %@: %.0f msg/s acknowledged, SEND->200 p50 %.2f ms, p99 %.2f ms", label, Double(acked) / 10, p50, p99))
    }
    say("pg-ingest: msrpgw serve (release), 64 MSRP sessions, 1 in flight each, CPIM ~300 B, deliveries to a webhook sink meanwhile, 10 s at full speed  [target PostgreSQL 1 node >= 10000 msg/s]")
    for line in lines { say(line) }
}
