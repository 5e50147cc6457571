// Gateway benchmarks (issue 4), each beside a reference measured in the same run.
//   ingest   64 MSRP sessions over loopback sending CPIM messages as fast as the
//            200s come back (SEND -> durable -> 200), synchronous=FULL; beside the
//            queue's own enqueue rate with 64 producers.
//   webhook  deliveries to a local HTTP sink from a backlog (deliveries/s), and
//            SEND -> webhook received latency at a steady rate below capacity;
//            beside the sink's rate for plain HTTP POSTs from the same client.
//   smtp     mails from a backlog into Postfix's smtp-sink, connections reused;
//            beside Postfix's smtp-source sending mails of the same size to the
//            same sink over as many connections (MailBench.swift).
//   mail-in  replies accepted durably by `msrpgw serve`'s SMTP listener, from
//            smtp-source over 8 connections; beside smtp-source into smtp-sink.
//   sip      call setups (INVITE, 200, ACK, BYE, 200) driven by sipp over UDP
//            against `msrpgw serve` (the release build), beside sipp against
//            its own built-in UAS; then the session table must be empty.
//   relay    MSRP relay forwarding, 64 sessions: `msrpgw serve` with [relay] beside
//            Kamailio's msrp module under the same load.
//   e2e      the daemon as users run it: msrpgw serve, a webhook sink and the MSRP
//            load each in its own process, at 500, 2,000 msg/s and full speed,
//            beside the in-process ingest rate (EndToEndBench.swift).
//   xmpp     MSRP → XMPP: msrpgw serve as a component of Prosody, the MSRP load
//            in its own process, messages counted at an XMPP user; beside a raw
//            component pushing the same stanzas into the same Prosody (XMPPBench.swift).
// Usage: swift run -c release GatewayBenchmarks [ingest] [webhook] [smtp] [mail-in] [sip] [irc] [relay] [e2e] [xmpp]
import AsyncHTTPClient
import CPIM
import Events
import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import Logging
import MSRP
import MSRPTransport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Queue
import SDP
import SMTPAdapter
import WebhookAdapter
import TestPeers

func say(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }
func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
func percentile(_ xs: [Double], _ p: Double) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? 0 : s[min(s.count - 1, Int(Double(s.count) * p))]
}
func median(_ xs: [Double]) -> Double { percentile(xs, 0.5) }
func scratch() throws -> String {
    let dir = FileManager.default.currentDirectoryPath + "/.build/bench-gateway-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
let secret = "whsec_" + Data("gateway benchmark signing key".utf8).base64EncodedString()
let quiet: Logger = {
    var l = Logger(label: "bench")
    l.logLevel = .critical
    return l
}()

// MARK: - The sink

/// A webhook receiver that answers 204 and notes when each message arrived.
final class Sink: @unchecked Sendable {
    let arrivals = NIOLockedValueBox<[String: ContinuousClock.Instant]>([:])
    let count = NIOLockedValueBox(0)
    var port = 0
    private var task: Task<Void, any Error>?

    func start() async throws {
        let router = Router(context: BasicRequestContext.self)
        router.post("/hook") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 20)
            let now = ContinuousClock.now
            // The MSRP Message-ID sits in data.origin.message_id; find it without a full JSON parse.
            let text = String(buffer: body)
            if let r = text.range(of: "\"message_id\":\"") {
                let id = text[r.upperBound...].prefix { $0 != "\"" }
                self.arrivals.withLockedValue { $0[String(id)] = now }
            }
            self.count.withLockedValue { $0 += 1 }
            return Response(status: .noContent)
        }
        let ready = NIOLockedValueBox<Int?>(nil)
        let app = Application(router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in ready.withLockedValue { $0 = channel.localAddress?.port } }, eventLoopGroupProvider: .shared(group), logger: quiet)
        task = Task { try await app.run() }
        while ready.withLockedValue({ $0 }) == nil { try await Task.sleep(for: .milliseconds(5)) }
        port = ready.withLockedValue { $0 } ?? 0
    }

    func stop() async {
        task?.cancel()
        _ = try? await task?.value
    }
}

// MARK: - Clients

/// One MSRP session of the load: offers itself to the gateway and sends CPIM.
final class LoadSession: MSRPSessionDelegate, @unchecked Sendable {
    var session: MSRPSession!
    func session(_ session: MSRPSession, didReceive message: MSRPIncomingMessage) { message.acknowledgement.accept() }

    static func open(_ gateway: Gateway, endpoint: MSRPEndpoint) async throws -> LoadSession {
        let s = LoadSession()
        let local = endpoint.createSession(setup: .active, acceptTypes: [.messageCPIM, .textPlain], delegate: s)
        s.session = local
        let offer = MSRPOfferAnswer.answerDescription(
            media: MSRPMedia(port: 9, path: [local.localURI.description], acceptTypes: ["message/cpim", "text/plain"],
                             acceptWrappedTypes: ["text/plain", "message/imdn+xml"], setup: .active),
            host: "127.0.0.1", sessionVersion: 1)
        let (_, answer) = try await gateway.createSession(offer: offer, peer: "sip:load@example.com")
        local.remotePath = try answer.msrpMedia().media.path.map { try MSRPURI($0) }
        try await local.connect()
        return s
    }

    /// A ~300-byte CPIM message.
    static func message(_ id: String) -> MSRPOutgoingMessage {
        let cpim = CPIMMessage.make(
            from: CPIMAddress(displayName: "Load", uri: "sip:load@example.com"), to: [CPIMAddress(uri: "sip:ops@gw.example")],
            dateTime: "2026-11-24T10:00:00Z", contentType: "text/plain", content: Array("benchmark message \(id) with some text to make it typical".utf8))
        return MSRPOutgoingMessage(messageID: id, contentType: .messageCPIM, body: MemoryBodySource(ByteBuffer(bytes: cpim.serialized)))
    }
}

struct Rig {
    let gateway: Gateway
    let endpoint: MSRPEndpoint
    let clients: MSRPEndpoint
    let http: WebhookHTTPClient
    let dir: String

    /// `webhookConcurrency`: the adapter's slots (the daemon's default is 256).
    static func make(sinkPort: Int, webhookConcurrency: Int = 64) async throws -> Rig {
        let dir = try scratch()
        let queue = try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: dir + "/queue.sqlite", followUps: Reporter(), synchronous: .full))
        let endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group, logger: quiet)
        try await endpoint.listen(host: "127.0.0.1", port: 0)
        let http = WebhookHTTPClient(group: group)
        let url = "http://127.0.0.1:\(sinkPort)/hook"
        let webhook = try WebhookAdapter(endpoints: [WebhookEndpoint(name: "sink", url: url, secrets: [secret])], client: http, concurrency: webhookConcurrency, logger: quiet)
        var config = GatewayConfiguration(identity: "sip:gateway@gw.example", bodyDirectory: dir + "/bodies")
        config.defaultDispatch = DispatchSettings(leaseBatch: 64, leaseDuration: .seconds(60), pollInterval: .milliseconds(100))
        let gateway = try Gateway(configuration: config, queue: queue, endpoint: endpoint, adapters: [webhook],
                                  routes: ["sip:ops@gw.example": [url]], logger: quiet)
        let clients = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group, logger: quiet)
        return Rig(gateway: gateway, endpoint: endpoint, clients: clients, http: http, dir: dir)
    }

    func close() async {
        gateway.closeAllSessions()
        await clients.shutdown()
        await endpoint.shutdown()
        await http.shutdown()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

// MARK: - Ingest

/// The reference: the queue alone, 64 producers, one event per call, FULL.
func queueEnqueueRate() async throws -> Double {
    let dir = try scratch()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let queue = try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: dir + "/q.sqlite", followUps: Reporter(), synchronous: .full))
    let t0 = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { g in
        for p in 0..<64 {
            g.addTask {
                for i in 0..<200 {
                    _ = try await queue.enqueue([NewEvent(adapter: "webhook", target: "https://x/", origin: EventOrigin(sessionID: "s\(p)", messageID: "m\(i)"),
                                                          body: .inline(Array(repeating: 0x61, count: 60)))])
                }
            }
        }
        try await g.waitForAll()
    }
    return 64 * 200 / seconds(ContinuousClock.now - t0)
}

/// Sends from every session, one message in flight each, as fast as the 200s
/// come back, until `duration` has passed; returns each message's time from
/// SEND to 200 (ms) and how long the sending took. `tag` keeps message ids of
/// different rounds apart.
func sendAsFastAsAcknowledged(_ sessions: [LoadSession], for duration: Duration, tag: String) async throws -> (latencies: [Double], elapsed: Double) {
    let t0 = ContinuousClock.now
    let latencies = try await withThrowingTaskGroup(of: [Double].self) { g in
        for (n, s) in sessions.enumerated() {
            g.addTask {
                var out: [Double] = []
                var i = 0
                while ContinuousClock.now - t0 < duration {
                    let start = ContinuousClock.now
                    let outcome = try await s.session.send(LoadSession.message("\(tag)\(n)-\(i)"))
                    guard outcome == .accepted else { throw CancellationError() }
                    out.append(seconds(ContinuousClock.now - start) * 1000)
                    i += 1
                }
                return out
            }
        }
        return try await g.reduce(into: [Double]()) { $0 += $1 }
    }
    return (latencies, seconds(ContinuousClock.now - t0))
}

/// One round of in-process ingest: 64 sessions for 4 s, as fast as the 200s come back.
func ingestRound() async throws -> (rate: Double, p50: Double, p99: Double) {
    let rig = try await Rig.make(sinkPort: 9)  // the dispatcher does not run: ingest alone
    var sessions: [LoadSession] = []
    for _ in 0..<64 { sessions.append(try await LoadSession.open(rig.gateway, endpoint: rig.clients)) }
    let (latencies, elapsed) = try await sendAsFastAsAcknowledged(sessions, for: .seconds(4), tag: "s")
    let stored = try await rig.gateway.queue.stats().count()
    guard stored == latencies.count else { fatalError("acknowledged \(latencies.count), stored \(stored)") }
    await rig.close()
    return (Double(latencies.count) / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99))
}

func benchIngest() async throws {
    var rates: [Double] = [], p50s: [Double] = [], p99s: [Double] = []
    for _ in 0..<3 {
        let round = try await ingestRound()
        rates.append(round.rate)
        p50s.append(round.p50)
        p99s.append(round.p99)
    }
    let reference = try await queueEnqueueRate()
    say(String(format: "ingest, 64 sessions, CPIM ~300 B, synchronous=FULL: %.0f msg/s (runs: %@), SEND->200 p50 %.2f ms p99 %.2f ms; queue enqueue alone (64 producers): %.0f /s; ingest/queue = %.2f  [target >= 10000 msg/s, p99 <= 20 ms]",
               median(rates), rates.map { String(format: "%.0f", $0) }.joined(separator: ", "), median(p50s), median(p99s), reference, median(rates) / reference))
}

// MARK: - Webhooks

/// The reference: a general HTTP client (AsyncHTTPClient, which the adapter
/// used before it had its own) POSTing to the same sink, 64 in flight.
func plainPostRate(sink: Sink) async throws -> Double {
    var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
    configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
    let http = HTTPClient(eventLoopGroup: group, configuration: configuration)
    let total = 10_000
    let next = NIOLockedValueBox(0)
    let t0 = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { g in
        for _ in 0..<64 {
            g.addTask {
                while next.withLockedValue({ n in defer { n += 1 }; return n }) < total {
                    var r = HTTPClientRequest(url: "http://127.0.0.1:\(sink.port)/hook")
                    r.method = .POST
                    r.body = .bytes(ByteBuffer(string: #"{"data":{"origin":{"message_id":"plain"}}}"#))
                    let resp = try await http.execute(r, timeout: .seconds(10))
                    _ = try await resp.body.collect(upTo: 1024)
                }
            }
        }
        try await g.waitForAll()
    }
    let rate = Double(total) / seconds(ContinuousClock.now - t0)
    try await http.shutdown()
    return rate
}

func benchWebhook() async throws {
    let sink = Sink()
    try await sink.start()
    var rates: [Double] = [], p50s: [Double] = [], p99s: [Double] = []
    for _ in 0..<3 {
        // Throughput: a backlog of 10,000 messages, then the dispatcher drains it.
        let rig = try await Rig.make(sinkPort: sink.port)
        let backlog = 10_000
        var events: [NewEvent] = []
        for i in 0..<backlog {
            events.append(NewEvent(adapter: "webhook", target: "http://127.0.0.1:\(sink.port)/hook",
                                   origin: EventOrigin(sessionID: "b", messageID: "backlog-\(i)"),
                                   envelope: EventEnvelope(from: "<sip:load@example.com>", to: ["<sip:ops@gw.example>"], contentType: "text/plain"),
                                   body: .inline(Array("benchmark message \(i)".utf8))))
        }
        for chunk in stride(from: 0, to: backlog, by: 1000) { _ = try await rig.gateway.queue.enqueue(Array(events[chunk..<chunk + 1000])) }
        sink.count.withLockedValue { $0 = 0 }
        let t0 = ContinuousClock.now
        let run = Task { await rig.gateway.run() }
        while sink.count.withLockedValue({ $0 }) < backlog { try await Task.sleep(for: .milliseconds(5)) }
        rates.append(Double(backlog) / seconds(ContinuousClock.now - t0))
        while try await rig.gateway.queue.stats().count(state: .delivered) < backlog { try await Task.sleep(for: .milliseconds(5)) }

        // Latency: 16 sessions, 1,000 messages/s in all, SEND start to webhook received.
        var sessions: [LoadSession] = []
        for _ in 0..<16 { sessions.append(try await LoadSession.open(rig.gateway, endpoint: rig.clients)) }
        let sent = NIOLockedValueBox<[String: ContinuousClock.Instant]>([:])
        let perSession = 150
        try await withThrowingTaskGroup(of: Void.self) { g in
            for (n, s) in sessions.enumerated() {
                g.addTask {
                    let start = ContinuousClock.now
                    for i in 0..<perSession {
                        let due = start + .milliseconds(16 * i)  // 62.5/s per session
                        if due > ContinuousClock.now { try await Task.sleep(until: due) }
                        let id = "lat-\(n)-\(i)"
                        sent.withLockedValue { $0[id] = ContinuousClock.now }
                        _ = try await s.session.send(LoadSession.message(id))
                    }
                }
            }
            try await g.waitForAll()
        }
        let expected = sessions.count * perSession
        while sink.arrivals.withLockedValue({ a in a.keys.filter { $0.hasPrefix("lat-") }.count }) < expected { try await Task.sleep(for: .milliseconds(5)) }
        let sentAt = sent.withLockedValue { $0 }
        let latencies = sink.arrivals.withLockedValue { a in sentAt.compactMap { id, t in a[id].map { seconds($0 - t) * 1000 } } }
        p50s.append(percentile(latencies, 0.5))
        p99s.append(percentile(latencies, 0.99))
        rig.gateway.stop()
        await run.value
        await rig.close()
    }
    let reference = try await plainPostRate(sink: sink)
    await sink.stop()
    say(String(format: "webhook deliveries from a 10,000 backlog: %.0f /s (runs: %@); plain POSTs from AsyncHTTPClient to the same sink, 64 in flight: %.0f /s; webhook/plain = %.2f  [target >= 5000/s]",
               median(rates), rates.map { String(format: "%.0f", $0) }.joined(separator: ", "), reference, median(rates) / reference))
    say(String(format: "SEND -> webhook received, 1,000 msg/s over 16 sessions: p50 %.2f ms, p99 %.2f ms (runs' p99: %@)  [target p99 <= 50 ms]",
               median(p50s), median(p99s), p99s.map { String(format: "%.1f", $0) }.joined(separator: ", ")))
}

// MARK: - SMTP

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// Starts a process; its output goes to the returned pipe, or nowhere when
/// `capture` is false (a pipe nobody reads fills up and stalls the process).
func run(_ executable: String, _ args: [String], capture: Bool = true) throws -> (Process, Pipe) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    let out = Pipe()
    if capture {
        p.standardOutput = out
    } else {
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
    }
    try p.run()
    return (p, out)
}

/// Stops a server: SIGTERM, up to 5 s, then SIGKILL. (InspIRCd run through
/// setpriv was seen ignoring SIGTERM, and Foundation's waitUntilExit spins a core
/// while it waits: a benchmark that never ended and skewed the next ones.)
func stop(_ p: Process) {
    guard p.isRunning else { return }
    p.terminate()
    for _ in 0..<250 where p.isRunning { usleep(20_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    while p.isRunning { usleep(10_000) }
}

/// A configuration for `msrpgw serve` under a benchmark: data in `dir`, MSRP on
/// a port it picks, the API on `apiPort`, warnings only; `extra` appended.
func daemonConfiguration(dir: String, apiPort: Int, extra: String) -> String {
    """
    [gateway]
    identity = "sip:gateway@gw.example"
    data_dir = "\(dir)"
    log_level = "warning"
    [msrp]
    port = 0
    connect_allow = ["127.0.0.0/8"]
    # The load's 64 sessions share one connection: no per-connection or
    # per-session limit on a benchmark.
    max_messages_per_second = 0
    max_connection_messages_per_second = 0
    [api]
    port = \(apiPort)
    \(extra)
    """
}

func freeTCPPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

// MARK: - SIP

/// The tests' call (INVITE, 200, ACK, BYE, 200), each with its own session id.
let callScenario = SIPPScenario.call(path: "msrp://127.0.0.1:9/b[call_number];tcp", pause: 0)

/// Drives `calls` calls at up to `rate`/s with sipp; returns calls per second
/// and whether every call succeeded.
func sippRun(port: Int, calls: Int, rate: Int, scenario: String) throws -> (Double, Bool) {
    let t0 = ContinuousClock.now
    let (p, _) = try run("/usr/bin/sipp", ["-sf", scenario, "127.0.0.1:\(port)", "-s", "ops", "-i", "127.0.0.1", "-p", String(try freeTCPPort()),
                                           "-m", String(calls), "-r", String(rate), "-l", "2000", "-nostdin", "-timeout", "120", "-timeout_error"],
                     capture: false)
    p.waitUntilExit()
    return (Double(calls) / seconds(ContinuousClock.now - t0), p.terminationStatus == 0)
}

func benchSIP() async throws {
    let binary = repository + "/.build/release/msrpgw"
    guard FileManager.default.isExecutableFile(atPath: binary), FileManager.default.isExecutableFile(atPath: "/usr/bin/sipp") else {
        say("sip: needs `swift build -c release --product msrpgw` and sipp (apt-get install sip-tester)")
        return
    }
    let scenario = NSTemporaryDirectory() + "bench-call.xml"
    try callScenario.write(toFile: scenario, atomically: true, encoding: .utf8)
    let dir = try scratch()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let (sipPort, apiPort) = (try freeTCPPort(), try freeTCPPort())
    // sipp offers its load from one address: no per-source limit in the way of the figure.
    try daemonConfiguration(dir: dir, apiPort: apiPort, extra: "[sip]\nport = \(sipPort)\nmax_requests_per_second = 0")
        .write(toFile: dir + "/msrpgw.toml", atomically: true, encoding: .utf8)
    let (gw, _) = try run(binary, ["serve", "--config", dir + "/msrpgw.toml"], capture: false)
    defer { gw.terminate() }
    try await Task.sleep(for: .seconds(1))
    let uasPort = try freeTCPPort()
    let (builtin, _) = try run("/usr/bin/sipp", ["-sn", "uas", "-i", "127.0.0.1", "-p", String(uasPort), "-nostdin"], capture: false)
    defer { kill(builtin.processIdentifier, SIGKILL) }  // sipp does not stop on SIGTERM
    try await Task.sleep(for: .milliseconds(500))

    let calls = 10000, rate = Int(ProcessInfo.processInfo.environment["SIP_RATE"] ?? "") ?? 5000
    _ = try sippRun(port: sipPort, calls: 500, rate: 1000, scenario: scenario)  // warm-up
    var ours: [Double] = [], reference: [Double] = []
    var allOK = true
    for _ in 0..<3 {
        let (r, ok) = try sippRun(port: sipPort, calls: calls, rate: rate, scenario: scenario)
        ours.append(r)
        allOK = allOK && ok
        reference.append(try sippRun(port: uasPort, calls: calls, rate: rate, scenario: scenario).0)
    }
    // The session table: every call was hung up, so nothing may be left.
    try await Task.sleep(for: .seconds(1))
    let (curl, out) = try run("/usr/bin/env", ["python3", "-c", "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:\(apiPort)/v1/sessions').read().decode())"])
    // Read before waiting: a long list fills the pipe, and the child would wait for us.
    let left = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    curl.waitUntilExit()
    say(String(format: "sip: %d calls (INVITE/200/ACK/BYE/200) over UDP offered at %d/s: msrpgw %.0f calls/s (runs: %@, all succeeded: %@); sipp's built-in UAS %.0f calls/s (runs: %@); msrpgw/uas = %.2f; sessions left: %@  [target >= 500/s]",
               calls, rate, median(ours), ours.map { String(format: "%.0f", $0) }.joined(separator: ", "), allOK ? "yes" : "NO",
               median(reference), reference.map { String(format: "%.0f", $0) }.joined(separator: ", "), median(ours) / median(reference), left == "[]" ? "none" : "\(left.components(separatedBy: "\"id\"").count - 1) sessions"))
}

let chosen = Array(CommandLine.arguments.dropFirst())
say("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB")
if chosen.isEmpty {
    // Each benchmark in a process of its own: what one leaves behind (open
    // databases, sessions, the sink's threads) must not slow the next.
    for name in ["ingest", "webhook", "smtp", "mail-in", "sip", "irc", "relay", "e2e", "xmpp"] {
        let (p, out) = try run(CommandLine.arguments[0], [name])
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        for line in text.split(separator: "\n") where !line.hasPrefix("machine:") { say(String(line)) }
    }
} else {
    for name in chosen {
        switch name {
        case "ingest": try await benchIngest()
        case "webhook": try await benchWebhook()
        case "smtp": try await benchSMTP()
        case "mail-in": try await benchMailIn()
        case "sip": try await benchSIP()
        case "irc": try await benchIRC()
        case "relay": try await benchRelay()
        case "e2e": try await benchEndToEnd()
        case "queue-even":
            // e2e's reference alone (to profile it): the queue at an even 500 msg/s for 10 s.
            say(String(format: "queue alone at an even 500 msg/s: %.3f ms CPU/msg", try await queueAtEvenPace(rate: 500, count: 5_000)))
        case "pg-ingest": try await benchPostgresIngest()
        case "xmpp": try await benchXMPP()
        case "sizing": try await benchSizing()
        case "sizing-load":
            // The load process of sizing: sizing-load API SESSIONS MESSAGES
            let a = Array(chosen.dropFirst())
            try await sizingLoad(api: a[0], sessions: Int(a[1]) ?? 0, messages: Int(a[2]) ?? 0)
            exit(0)
        case "e2e-load":
            // The load process of e2e: e2e-load API RATE SECONDS [SESSIONS]
            let a = Array(chosen.dropFirst())
            try await endToEndLoad(api: a[0], rate: Int(a[1]) ?? 0, duration: Int(a[2]) ?? 10, sessions: a.count > 3 ? Int(a[3]) ?? 64 : 64)
            try await group.shutdownGracefully()
            exit(0)
        default: say("unknown benchmark \(name)")
        }
    }
}
try await group.shutdownGracefully()
