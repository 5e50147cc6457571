import Foundation
import MSRP
import MSRPTransport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TestPeers

/// MSRP relay forwarding (RFC 4976): 64 receivers AUTH with a relay and get a
/// path each; 64 senders send to them through it (SEND in, SEND out, the
/// receiver's 200 back to the relay; the sender has the relay's hop-by-hop 200),
/// RELAY_COUNT messages per sender. Counted as messages arriving at the
/// receivers per second. msrpgw's relay role (`msrpgw serve`, release build, a
/// process of its own) beside Kamailio's msrp module (Debian) with the same load
/// in the same run. RELAY_EVENT_LOOPS sets msrpgw's `[msrp] event_loops`
/// (default 1, as its configuration; 0 shares one loop per core).
func benchRelay() async throws {
    let perSender = Int(ProcessInfo.processInfo.environment["RELAY_COUNT"] ?? "") ?? 300
    let sessions = 64
    var ours: [Double] = [], kamailio: [Double] = []

    // msrpgw as its own process, as Kamailio is: `msrpgw serve` (release) with [relay].
    let binary = repository + "/.build/release/msrpgw"
    guard FileManager.default.isExecutableFile(atPath: binary) else {
        say("relay: needs `swift build -c release --product msrpgw`")
        return
    }
    let dir = try scratch()
    let (msrpPort, apiPort) = (try freeTCPPort(), try freeTCPPort())
    try """
        [gateway]
        data_dir = "\(dir)"
        log_level = "warning"
        [msrp]
        port = \(msrpPort)
        connect_allow = ["127.0.0.0/8"]
        event_loops = \(ProcessInfo.processInfo.environment["RELAY_EVENT_LOOPS"] ?? "1")
        [api]
        port = \(apiPort)
        [relay]
        enabled = true
        realm = "bench"
        users = { bench = "secret" }
        """.write(toFile: dir + "/msrpgw.toml", atomically: true, encoding: .utf8)
    let (gateway, _) = try run(binary, ["serve", "--config", dir + "/msrpgw.toml"], capture: false)
    defer { stop(gateway) }
    for _ in 0..<200 where !tcpPortAccepts(msrpPort) { usleep(20_000) }
    let ourURI = try MSRPURI("msrp://127.0.0.1:\(msrpPort);tcp")

    let reference = try startKamailioRelay()
    defer { if let k = reference { stopWithChildren(k.process) } }

    // Both relays share two cores with the load generator, which caps both rates
    // alike; the CPU each relay spends per message (its processes' user + system
    // time over the round) says which one does the work more cheaply.
    var oursCPU: [Double] = [], kamailioCPU: [Double] = []
    for _ in 0..<3 {
        let before = processTreeCPUSeconds(gateway.processIdentifier)
        ours.append(try await relayRound(relay: ourURI, sessions: sessions, perSender: perSender))
        oursCPU.append((processTreeCPUSeconds(gateway.processIdentifier) - before) / Double(sessions * perSender) * 1e6)
        if let k = reference {
            let before = processTreeCPUSeconds(k.process.processIdentifier)
            kamailio.append(try await relayRound(relay: k.uri, sessions: sessions, perSender: perSender))
            kamailioCPU.append((processTreeCPUSeconds(k.process.processIdentifier) - before) / Double(sessions * perSender) * 1e6)
        }
    }
    let runs = { (xs: [Double]) in xs.map { String(format: "%.0f", $0) }.joined(separator: ", ") }
    let cpu = { (xs: [Double]) in xs.map { String(format: "%.1f", $0) }.joined(separator: ", ") }
    if kamailio.isEmpty {
        say(String(format: "relay: msrpgw forwards %.0f msg/s (runs: %@), %.1f us CPU per message; Kamailio not installed, no reference",
                   median(ours), runs(ours), median(oursCPU)))
    } else {
        say(String(format: "relay: %d senders x %d messages through a relay to %d receivers: msrpgw %.0f msg/s (runs: %@); Kamailio msrp %.0f msg/s (runs: %@); msrpgw/Kamailio = %.2f  [target >= 1.0]",
                   sessions, perSender, sessions, median(ours), runs(ours), median(kamailio), runs(kamailio), median(ours) / median(kamailio)))
        say(String(format: "relay CPU per message: msrpgw %.1f us (runs: %@); Kamailio %.1f us (runs: %@); Kamailio/msrpgw = %.2f  [higher: msrpgw cheaper]",
                   median(oursCPU), cpu(oursCPU), median(kamailioCPU), cpu(kamailioCPU), median(kamailioCPU) / median(oursCPU)))
    }
}

/// Stops a process and the children it forked (Kamailio's workers are left
/// running, orphaned, when their parent ends by SIGKILL).
private func stopWithChildren(_ p: Process) {
    let children = processTree(p.processIdentifier).map(\.pid).filter { $0 != p.processIdentifier }
    stop(p)
    for child in children { kill(child, SIGKILL) }
}

/// A process and its children (Kamailio forks its workers; msrpgw is one
/// process): pid and user + system CPU seconds of each, from /proc.
private func processTree(_ pid: Int32) -> [(pid: Int32, cpuSeconds: Double)] {
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
        guard let p = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after "(comm)": state ppid ... utime (14th field overall) stime (15th).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let ppid = Int32(fields[1]), p == pid || ppid == pid,
              let utime = Double(fields[11]), let stime = Double(fields[12])
        else { return nil }
        return (p, (utime + stime) / ticks)
    }
}

private func processTreeCPUSeconds(_ pid: Int32) -> Double {
    processTree(pid).reduce(0) { $0 + $1.cpuSeconds }
}

/// Counts complete messages.
private final class Counter: MSRPSessionDelegate, @unchecked Sendable {
    let count = NIOLockedValueBox(0)
    func session(_ session: MSRPSession, didReceive message: MSRPIncomingMessage) {
        message.acknowledgement.accept()
        count.withLockedValue { $0 += 1 }
    }
}

/// Senders and receivers each have a thread of their own (a fixed layout: what
/// the relay reads per wake-up, and so its cost per message, depends on how the
/// load generator's connections share threads; measured, msrpgw's cost per
/// message is lower with this layout than with both on one thread, where
/// requests reach it about one per wake-up). RELAY_GENERATOR_SHARED=1 puts both
/// on one thread instead.
private let senderLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
private let receiverLoop = ProcessInfo.processInfo.environment["RELAY_GENERATOR_SHARED"] == "1"
    ? senderLoop : MultiThreadedEventLoopGroup(numberOfThreads: 1)

private func relayRound(relay: MSRPURI, sessions: Int, perSender: Int) async throws -> Double {
    let receivers = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: receiverLoop, logger: quiet)
    let senders = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: senderLoop, logger: quiet)
    let counter = Counter()
    var targets: [[MSRPURI]] = []
    for _ in 0..<sessions {
        let grant = try await MSRPRelayClient(endpoint: receivers, relay: relay, username: "bench", password: "secret", logger: quiet).authenticate()
        let inbox = receivers.createSession(setup: .passive, delegate: counter)
        targets.append(grant.usePath + [inbox.localURI])
    }
    var outs: [MSRPSession] = []
    for path in targets {
        let s = senders.createSession(setup: .active, remotePath: path, delegate: nil)
        try await s.connect()
        outs.append(s)
    }
    let body = ByteBuffer(string: String(repeating: "relay benchmark message ", count: 4))
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { g in
        for s in outs {
            g.addTask {
                for _ in 0..<perSender {
                    _ = try await s.send(MSRPOutgoingMessage(messageID: MSRPIdentifier.make(), contentType: .textPlain, body: MemoryBodySource(body)))
                }
            }
        }
        try await g.waitForAll()
    }
    let total = sessions * perSender
    let deadline = ContinuousClock.now + .seconds(60)
    while counter.count.withLockedValue({ $0 }) < total, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
    let rate = Double(counter.count.withLockedValue { $0 }) / seconds(ContinuousClock.now - start)
    await senders.shutdown()
    await receivers.shutdown()
    return rate
}

/// Kamailio's msrp module as a relay on TCP: deploy/kamailio/kamailio.cfg as
/// shipped (the relay role, without TLS), or nil when Kamailio is not installed.
private func startKamailioRelay() throws -> (process: Process, uri: MSRPURI)? {
    guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/kamailio") else { return nil }
    let dir = try scratch()
    let port = try freeTCPPort()
    // Its TCP workers, as msrpgw's event loops can be set (RELAY_KAMAILIO_TCP_CHILDREN, default 2).
    let workers = ProcessInfo.processInfo.environment["RELAY_KAMAILIO_TCP_CHILDREN"] ?? "2"
    try FileManager.default.createDirectory(atPath: dir + "/db", withIntermediateDirectories: true)
    try """
        #!define WITH_MSRP_RELAY
        #!define AUTH_REALM "bench"
        #!define WORKERS 1
        #!define TCP_WORKERS \(workers)
        #!define USERS_DB "text://\(dir)/db"
        listen=tcp:127.0.0.1:\(port)

        """.write(toFile: dir + "/msrpgw-local.cfg", atomically: true, encoding: .utf8)
    try "table_name(str) table_version(int)\nmsrpgw_users:1\n".write(toFile: dir + "/db/version", atomically: true, encoding: .utf8)
    try "key_name(str) key_type(int) value_type(int) key_value(str) expires(int)\nbench:0:0:secret:0\n"
        .write(toFile: dir + "/db/msrpgw_users", atomically: true, encoding: .utf8)
    var args = ["-DD", "-E", "-f", packageRoot() + "/deploy/kamailio/kamailio.cfg", "-m", "64", "-M", "8", "-Y", dir]
    if getuid() == 0, let pw = getpwnam("kamailio") {
        for p in [dir, dir + "/msrpgw-local.cfg", dir + "/db", dir + "/db/version", dir + "/db/msrpgw_users"] {
            chown(p, pw.pointee.pw_uid, pw.pointee.pw_gid)
        }
        args += ["-u", "kamailio", "-g", "kamailio"]
    }
    // Kamailio reads msrpgw-local.cfg from its working directory.
    let (p, _) = try run("/bin/sh", ["-c", "cd '\(dir)' && exec /usr/sbin/kamailio " + args.map { "'\($0)'" }.joined(separator: " ")], capture: false)
    for _ in 0..<200 {
        if tcpPortAccepts(port) { break }
        usleep(20_000)
    }
    usleep(200_000)
    return (p, try MSRPURI("msrp://127.0.0.1:\(port);tcp"))
}

private func packageRoot() -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}

