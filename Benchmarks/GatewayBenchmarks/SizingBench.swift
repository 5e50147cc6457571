// What a host needs per MSRP session and per queued event (issue 20, for the
// README's sizing figures): `msrpgw serve` (release) in its own process, a load
// process that opens SIZING_SESSIONS sessions through the API and keeps them,
// then sends SIZING_MESSAGES ~300-byte messages to a route whose webhook
// refuses connections (so they stay queued). The daemon's resident memory
// (VmRSS) and the queue's files on disk are read at each step.
import AsyncHTTPClient
import Foundation
import MSRP
import MSRPGatewayClient
import MSRPTransport
import NIOCore

/// The daemon's resident set, in KiB.
func residentKiB(_ pid: Int32) -> Int {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
}

/// Bytes of the queue's database files (the database, its WAL and shared memory).
func queueBytes(_ dir: String) -> Int {
    ["queue.sqlite", "queue.sqlite-wal", "queue.sqlite-shm"].reduce(0) { sum, name in
        sum + (((try? FileManager.default.attributesOfItem(atPath: dir + "/" + name))?[.size] as? Int) ?? 0)
    }
}

func benchSizing() async throws {
    let daemon = repository + "/.build/release/msrpgw"
    guard FileManager.default.isExecutableFile(atPath: daemon) else {
        say("sizing: needs `swift build -c release --product msrpgw`")
        return
    }
    let env = ProcessInfo.processInfo.environment
    let sessions = Int(env["SIZING_SESSIONS"] ?? "") ?? 2000
    let messages = Int(env["SIZING_MESSAGES"] ?? "") ?? 50_000
    let dir = try scratch()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let apiPort = try freeTCPPort()
    // Port 9 (discard) refuses: every message waits in the queue, attempts not spent (circuit open).
    // Every session has its own connection here, all from one address.
    setenv("MSRPGW_MSRP_MAX_CONNECTIONS_PER_SOURCE", "100000", 1)
    try daemonConfiguration(dir: dir, apiPort: apiPort, extra: """
        [routes]
        "sip:ops@gw.example" = ["webhook:nowhere"]
        [webhooks.nowhere]
        url = "http://127.0.0.1:9/hook"
        secrets = ["\(secret)"]
        [queue]
        retry_schedule = ["1h"]
        max_attempts = 100
        """).write(toFile: dir + "/msrpgw.toml", atomically: true, encoding: .utf8)
    let gw = try await startDaemon(daemon, dir: dir)
    defer { stop(gw) }
    try await Task.sleep(for: .seconds(2))
    let idle = residentKiB(gw.processIdentifier)

    let (load, loadPipe) = try run(CommandLine.arguments[0], ["sizing-load", "http://127.0.0.1:\(apiPort)", String(sessions), String(messages)])
    defer { stop(load) }
    let out = LineReader(loadPipe)
    guard out.line(startingWith: "OPEN") != nil else { fatalError("the sizing load did not open its sessions") }
    try await Task.sleep(for: .seconds(3))
    let withSessions = residentKiB(gw.processIdentifier)
    let diskBefore = queueBytes(dir)
    guard let sent = out.line(startingWith: "SENT "), let acked = Int(sent.split(separator: " ")[1]) else { fatalError("the sizing load failed") }
    try await Task.sleep(for: .seconds(3))
    let withEvents = residentKiB(gw.processIdentifier)
    let diskAfter = queueBytes(dir)
    say(String(format: "sizing: msrpgw serve (release), idle %d KiB resident; %d MSRP sessions (API + TCP, idle) add %.1f KiB each; %d queued messages (~300 B CPIM, one webhook event each) add %.2f KiB resident and %.2f KiB of queue on disk each",
               idle, sessions, Double(withSessions - idle) / Double(sessions), acked, Double(withEvents - withSessions) / Double(max(acked, 1)),
               Double(diskAfter - diskBefore) / 1024 / Double(max(acked, 1))))
}

/// The load process: `sessions` sessions opened through the API and kept, each
/// on its own connection as separate clients would be; then
/// `messages` messages over the first 64 of them at full speed. Prints "OPEN"
/// and "SENT <acknowledged>", then waits to be stopped.
func sizingLoad(api: String, sessions: Int, messages: Int) async throws {
    let http = HTTPClient(eventLoopGroup: group)
    var clients: [GatewayClient] = []
    for i in 0..<sessions {
        let endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group, logger: quiet)
        let c = GatewayClient(name: "Sizing", address: "sip:size\(i)@example.com", endpoint: endpoint, http: http, api: api, token: nil)
        try await c.open()
        clients.append(c)
    }
    say("OPEN")
    let senders = Array(clients.prefix(64))
    let text = String(repeating: "m", count: 200)
    let acked = try await withThrowingTaskGroup(of: Int.self) { tasks in
        for (i, c) in senders.enumerated() {
            tasks.addTask {
                var n = 0
                for _ in stride(from: i, to: messages, by: senders.count) {
                    if case .accepted = try await c.send(text, to: "sip:ops@gw.example", successReport: false, imdn: []) { n += 1 }
                }
                return n
            }
        }
        return try await tasks.reduce(0, +)
    }
    say("SENT \(acked)")
    try await Task.sleep(for: .seconds(3600))
}
