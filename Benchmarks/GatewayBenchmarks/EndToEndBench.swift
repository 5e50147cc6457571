// The daemon as users run it (issue 15): `msrpgw serve` (release) in its own
// process, a webhook receiver in a second (msrpgw-webhook-sink: NIO, answers 204,
// counts), MSRP load from a third (this binary, `e2e-load`): 64 sessions opened
// through the API, one ~300-byte CPIM message in flight each. At 500 msg/s,
// 2,000 msg/s and full speed it reports what was acknowledged and delivered per
// second, how fast the backlog grew, and the daemon's CPU time and context
// switches per message (from /proc), beside references of the same run: the
// in-process ingest rate (storing only), the same work as the daemon's done in
// one process, and the queue alone at an even 500 msg/s. Paced load arrives
// evenly over the sessions (E2E_STAGGER=0: all on one schedule, in bursts of 64).
import AsyncHTTPClient
import CPIM
import Events
import Foundation
import Gateway
import MSRP
import MSRPGatewayClient
import MSRPTransport
import NIOCore
import NIOPosix
import Queue

/// The daemon's CPU time (user + system, all threads) and context switches.
struct ProcessUsage {
    var cpuSeconds: Double
    var contextSwitches: Int

    static func of(_ pid: Int32) -> ProcessUsage {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var cpu = 0.0
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") {
            // Fields after "(comm)": state is field 3; utime and stime are 14 and 15.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) { cpu = (u + s) / ticks }
        }
        var switches = 0
        for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8) else { continue }
            // voluntary_ctxt_switches and nonvoluntary_ctxt_switches
            for line in status.split(separator: "\n") where line.contains("ctxt_switches:") {
                switches += Int(line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
            }
        }
        return ProcessUsage(cpuSeconds: cpu, contextSwitches: switches)
    }
}

/// Reads the sink's count of requests to `/hook`.
func sinkCount(_ http: HTTPClient, port: Int) async throws -> Int {
    let response = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/counts"), timeout: .seconds(5))
    let body = try await response.body.collect(upTo: 1 << 20)
    let counts = try JSONDecoder().decode([String: Int].self, from: Data(body.readableBytesView))
    return counts["/hook"] ?? 0
}

/// Waits until the sink has counted `count` requests to `/hook`, for at most
/// a minute (a backlog draining before the next measurement).
func waitForSink(_ http: HTTPClient, port: Int, toCount count: Int) async throws {
    let start = ContinuousClock.now
    while try await sinkCount(http, port: port) < count, ContinuousClock.now - start < .seconds(60) {
        try await Task.sleep(for: .milliseconds(50))
    }
}

/// A counter's value from the daemon's /metrics (0 when absent).
func metric(_ http: HTTPClient, api: Int, _ name: String) async throws -> Double {
    let response = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(api)/metrics"), timeout: .seconds(5))
    let text = String(buffer: try await response.body.collect(upTo: 1 << 22))
    return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
}

/// A child's output read line by line: what one read brings past a line is
/// kept for the next.
final class LineReader {
    private let handle: FileHandle
    private var buffer = Data()

    init(_ pipe: Pipe) { handle = pipe.fileHandleForReading }

    /// The next line starting with `prefix` (earlier lines skipped); nil at the end.
    func line(startingWith prefix: String) -> String? {
        while true {
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                if line.hasPrefix(prefix) { return line }
            }
            let chunk = handle.availableData
            if chunk.isEmpty { return nil }
            buffer.append(chunk)
        }
    }
}

/// `daemon serve` on `dir`/msrpgw.toml, once it has written its ports file
/// (within 30 s, or the benchmark stops: its configuration is left in `dir`).
func startDaemon(_ daemon: String, dir: String) async throws -> Process {
    let (gw, _) = try run(daemon, ["serve", "--config", dir + "/msrpgw.toml", "--ports-file", dir + "/ports.json"], capture: false)
    let started = ContinuousClock.now
    while !FileManager.default.fileExists(atPath: dir + "/ports.json") {
        guard gw.isRunning, ContinuousClock.now - started < .seconds(30) else { fatalError("msrpgw serve did not start (run it with \(dir)/msrpgw.toml)") }
        try await Task.sleep(for: .milliseconds(50))
    }
    return gw
}

/// The reference for CPU per message at a low, even rate: the queue alone, in
/// this process, paced at `rate` by a timer: each message stored already
/// leased (synchronous=FULL, as the daemon's ingress) and its outcome recorded
/// (as the daemon's delivery), one by one. What the daemon adds beside it is
/// MSRP, the dispatcher and the webhook; what this costs is mostly the machine
/// (a synced commit, the writer's thread wake-ups: Benchmarks/Floors).
func queueAtEvenPace(rate: Int, count: Int) async throws -> Double {
    let dir = try scratch()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let queue = try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: dir + "/q.sqlite", followUps: Reporter(), synchronous: .full))
    let claim = LeaseClaim(owner: "node-1/bench/webhook", duration: .seconds(60))
    let body = Array(repeating: UInt8(ascii: "a"), count: 300)
    let interval = Duration.nanoseconds(1_000_000_000 / Int64(rate))
    let cpu0 = processCPUSeconds()
    let t0 = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { g in
        for i in 0..<count {
            try await Task.sleep(until: t0 + interval * i)
            let event = NewEvent(adapter: "webhook", target: "webhook:sink", origin: EventOrigin(sessionID: "s\(i % 64)", messageID: "m\(i)"),
                                 body: .inline(body))
            guard let leased = try await queue.enqueueNotingRepeats([event], claims: [claim]).first?.leased else {
                fatalError("the queue did not store the event leased")
            }
            g.addTask { _ = try await queue.complete(leased: leased, owner: claim.owner, outcome: .delivered(proof: "HTTP 204")) }
        }
        try await g.waitForAll()
    }
    return (processCPUSeconds() - cpu0) / Double(count) * 1000
}

/// The daemon's work at full speed, done in this process: the gateway with its
/// dispatcher delivering to the same sink as the daemon (at the daemon's default
/// webhook slots), 64 sessions sending for 4 s as fast as the 200s come back.
/// Returns what was sustained: acknowledged and delivered per second, whichever
/// is less. Beside the daemon's figure it shows what running as its own process,
/// with the load in another, costs; the in-process ingest does only half the
/// work (it stores and delivers nothing).
func ingestAndDeliverRound(sinkPort: Int, http: HTTPClient) async throws -> Double {
    let rig = try await Rig.make(sinkPort: sinkPort, webhookConcurrency: 256)
    let run = Task { await rig.gateway.run() }
    var sessions: [LoadSession] = []
    for _ in 0..<64 { sessions.append(try await LoadSession.open(rig.gateway, endpoint: rig.clients)) }
    let delivered0 = try await sinkCount(http, port: sinkPort)
    let (latencies, elapsed) = try await sendAsFastAsAcknowledged(sessions, for: .seconds(4), tag: "d")
    let acked = latencies.count
    let delivered = try await sinkCount(http, port: sinkPort) - delivered0
    // Drained before the rig closes, so that the daemon's rates start with an idle sink.
    try await waitForSink(http, port: sinkPort, toCount: delivered0 + acked)
    rig.gateway.stop()
    await run.value
    await rig.close()
    return Double(min(acked, delivered)) / elapsed
}

func benchEndToEnd() async throws {
    let build = repository + "/.build/release/"
    // E2E_MSRPGW: another daemon binary (an older build, for a before/after pair).
    let daemon = ProcessInfo.processInfo.environment["E2E_MSRPGW"] ?? build + "msrpgw"
    for tool in [daemon, build + "msrpgw-webhook-sink"] where !FileManager.default.isExecutableFile(atPath: tool) {
        say("e2e: needs `swift build -c release --product msrpgw` and `--product msrpgw-webhook-sink` (\(tool))")
        return
    }
    // The references of the same run: the in-process ingest rate (one 4 s
    // round), and the queue alone at an even 500 msg/s (5 s).
    let inProcess = try await ingestRound().rate
    let queueAlone = try await queueAtEvenPace(rate: 500, count: 2_500)

    let (sink, sinkOut) = try run(build + "msrpgw-webhook-sink", ["0", "1"])
    defer { stop(sink) }
    guard let ready = LineReader(sinkOut).line(startingWith: "READY "), let sinkPort = Int(ready.dropFirst(6)) else { fatalError("the sink did not start") }
    let dir = try scratch()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let apiPort = try freeTCPPort()
    try daemonConfiguration(dir: dir, apiPort: apiPort, extra: """
        [routes]
        "sip:ops@gw.example" = ["webhook:sink"]
        [webhooks.sink]
        url = "http://127.0.0.1:\(sinkPort)/hook"
        secrets = ["\(secret)"]
        \(ProcessInfo.processInfo.environment["E2E_CONFIG"] ?? "")
        """).write(toFile: dir + "/msrpgw.toml", atomically: true, encoding: .utf8)
    let http = HTTPClient(eventLoopGroup: group)
    let sameWork = try await ingestAndDeliverRound(sinkPort: sinkPort, http: http)
    let gw = try await startDaemon(daemon, dir: dir)
    defer { stop(gw) }

    var lines: [String] = []
    var fullRate = 0.0
    // E2E_CONFIG: more configuration for the daemon (TOML tables after its routes
    // and webhook), e.g. "[dispatch]\nendpoint_concurrency = 128" to try a setting.
    // E2E_RATES: the offered rates to run (msg/s, 0 = full speed), e.g. "0" for a profile.
    let rates = ProcessInfo.processInfo.environment["E2E_RATES"].map { $0.split(separator: ",").compactMap { Int($0) } } ?? [500, 2000, 0]
    for rate in rates {
        let duration = 10
        let before = try await sinkCount(http, port: sinkPort)
        let (load, loadPipe) = try run(CommandLine.arguments[0], ["e2e-load", "http://127.0.0.1:\(apiPort)", String(rate), String(duration)])
        let loadOut = LineReader(loadPipe)
        // The load process says when its sessions are open; measure from then.
        guard loadOut.line(startingWith: "OPEN") != nil else { fatalError("the load did not start") }
        let usage0 = ProcessUsage.of(gw.processIdentifier)
        let delivered0 = try await sinkCount(http, port: sinkPort)
        let postponed0 = try await metric(http, api: apiPort, "msrpgw_dispatch_postponed_total{adapter=\"webhook\"}")
        let t0 = ContinuousClock.now
        guard let result = loadOut.line(startingWith: "ACKED "), let acked = Int(result.split(separator: " ")[1]) else { fatalError("the load failed") }
        let elapsed = seconds(ContinuousClock.now - t0)
        let usage1 = ProcessUsage.of(gw.processIdentifier)
        let delivered1 = try await sinkCount(http, port: sinkPort)
        let postponed = try await metric(http, api: apiPort, "msrpgw_dispatch_postponed_total{adapter=\"webhook\"}") - postponed0
        load.waitUntilExit()
        let ackedRate = Double(acked) / elapsed
        let deliveredRate = Double(delivered1 - delivered0) / elapsed
        let backlogGrowth = (Double(acked) - Double(delivered1 - delivered0)) / elapsed
        let cpu = (usage1.cpuSeconds - usage0.cpuSeconds) / Double(max(acked, 1)) * 1000
        let switches = Double(usage1.contextSwitches - usage0.contextSwitches) / Double(max(acked, 1))
        // Let the backlog drain before the next rate.
        try await waitForSink(http, port: sinkPort, toCount: before + acked)
        if rate == 0 { fullRate = min(ackedRate, deliveredRate) }
        lines.append(String(format: "  %@: acknowledged %.0f msg/s, delivered %.0f webhooks/s, backlog %+.0f/s, daemon CPU %.3f ms/msg, %.1f context switches/msg, %.2f postponements/msg",
                            rate == 0 ? "full speed" : "\(rate) msg/s offered", ackedRate, deliveredRate, backlogGrowth, cpu, switches,
                            postponed / Double(max(acked, 1))))
    }
    try await http.shutdown()
    say(String(format: "e2e: \(daemon == build + "msrpgw" ? "msrpgw serve (release)" : daemon + " serve") + webhook sink + MSRP load (64 sessions, 1 in flight each, CPIM ~300 B), each its own process, 10 s per rate; in-process ingest of the same run %.0f msg/s; sustained end to end at full speed %.0f msg/s = %.2f of in-process  [target >= 0.8 and >= 8000 msg/s; CPU at 500/s <= 0.2 ms/msg]",
               inProcess, fullRate, fullRate / inProcess))
    if fullRate > 0 {
        say(String(format: "  reference: the same work in this process (ingest and delivery to the same sink, 64 sessions, 4 s): %.0f msg/s; the daemon end to end = %.2f of it",
                   sameWork, fullRate / sameWork))
    }
    for line in lines { say(line) }
    say(String(format: "  reference: the queue alone at an even 500 msg/s (store leased at FULL, then the outcome, per message; in this process): %.3f ms CPU/msg", queueAlone))
}

/// The load process: 64 sessions (or `sessions`) through the API, one message in flight each,
/// `rate` msg/s in all (0: as fast as the 200s come back) for `duration` s.
/// Prints "OPEN" when its sessions are up and "ACKED <n> <p50 ms> <p99 ms>" at
/// the end (the time from a SEND to its 200).
func endToEndLoad(api: String, rate: Int, duration: Int, sessions: Int = 64) async throws {
    let http = HTTPClient(eventLoopGroup: group)
    let endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group, logger: quiet)
    var clients: [GatewayClient] = []
    for i in 0..<sessions {
        let c = GatewayClient(name: "Load", address: "sip:load\(i)@example.com", endpoint: endpoint, http: http, api: api, token: nil)
        try await c.open()
        clients.append(c)
    }
    say("OPEN")
    // Each session's schedule starts at its own offset, so that paced messages
    // arrive evenly, as independent users' do. One schedule for all
    // (E2E_STAGGER=0, the load before 2026-12-06) sends them in bursts of 64,
    // which share transactions and wake-ups: it flattered the CPU per message
    // at 500 msg/s 3.5x.
    let stagger = ProcessInfo.processInfo.environment["E2E_STAGGER"] != "0"
    let t0 = ContinuousClock.now
    let end = t0 + .seconds(duration)
    let (acked, latencies) = try await withThrowingTaskGroup(of: (Int, [Double]).self) { g in
        for (n, c) in clients.enumerated() {
            g.addTask {
                guard let session = c.session else { return (0, []) }
                // One CPIM body per session (its From is the session's peer): what
                // differs per message is the MSRP Message-ID.
                let cpim = CPIMMessage.make(
                    from: CPIMAddress(displayName: "Load", uri: c.address), to: [CPIMAddress(uri: "sip:ops@gw.example")],
                    dateTime: "2026-11-24T10:00:00Z", contentType: "text/plain",
                    content: Array("benchmark message with some text to make it a typical chat line".utf8))
                let body = ByteBuffer(bytes: cpim.serialized)
                var sent = 0
                var latencies: [Double] = []
                let interval: Duration? = rate > 0 ? .nanoseconds(Int64(Double(sessions) / Double(rate) * 1e9)) : nil
                let offset = stagger ? (interval ?? .zero) * Double(n) / Double(sessions) : .zero
                while ContinuousClock.now < end {
                    if let interval {
                        let due = t0 + offset + interval * sent
                        if due > ContinuousClock.now { try await Task.sleep(until: due) }
                        if ContinuousClock.now >= end { break }
                    }
                    let message = MSRPOutgoingMessage(
                        messageID: "l\(n)-\(sent)", contentType: .messageCPIM, body: MemoryBodySource(body), successReport: .no, failureReport: .yes)
                    let started = ContinuousClock.now
                    let outcome = try await session.send(message)
                    guard outcome == .accepted else { fatalError("e2e-load: message \(sent) of session \(n): \(outcome)") }
                    latencies.append(seconds(ContinuousClock.now - started) * 1000)
                    sent += 1
                }
                return (sent, latencies)
            }
        }
        return try await g.reduce(into: (0, [Double]())) { all, one in
            all.0 += one.0
            all.1 += one.1
        }
    }
    let sorted = latencies.sorted()
    let percentile = { (p: Double) in sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
    say(String(format: "ACKED %d %.2f %.2f", acked, percentile(0.5), percentile(0.99)))
    for c in clients { c.session?.close() }
    await endpoint.shutdown()
    try await http.shutdown()
}
