import Events
import Foundation
import Gateway
import IRCAdapter
import IRCClient
import IRCWire
import Logging
import MSRPTransport
import NIOConcurrencyHelpers
import Queue

/// MSRP → IRC: a backlog of chat messages delivered by the `irc` adapter through
/// a local InspIRCd (flood control off on both sides), counted as lines arriving
/// at another client in the channel. The reference: the same kind of lines
/// written straight down one connection as fast as it goes, counted the same way.
func benchIRC() async throws {
    guard let inspircd = ["/usr/sbin/inspircd", "/usr/bin/inspircd"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        say("irc: skipped, inspircd is not installed (apt-get install inspircd)")
        return
    }
    let dir = try scratch()
    let port = try freeTCPPort()
    try """
        <server name="irc.bench" description="bench" network="Bench" id="0AB">
        <admin name="b" nick="b" email="b@localhost">
        <bind address="127.0.0.1" port="\(port)" type="clients">
        <connect allow="*" resolvehostnames="no" fakelag="no" threshold="1000000" commandrate="1000000" localmax="1000" globalmax="1000" recvq="65536" softsendq="16777216" hardsendq="33554432">
        <performance netbuffersize="65000" somaxconn="1024">
        <log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="\(dir)/ircd.log">
        <module name="cap"> <module name="ircv3"> <module name="ircv3_echomessage"> <module name="ircv3_servertime"> <module name="ircv3_msgid">
        """.write(toFile: dir + "/inspircd.conf", atomically: true, encoding: .utf8)
    var command = [inspircd, "--config", dir + "/inspircd.conf", "--nofork", "--nopid"]
    if getuid() == 0, let pw = getpwnam("irc") {
        chown(dir, pw.pointee.pw_uid, pw.pointee.pw_gid)
        chown(dir + "/inspircd.conf", pw.pointee.pw_uid, pw.pointee.pw_gid)
        command = ["/usr/bin/setpriv", "--reuid=irc", "--regid=irc", "--clear-groups"] + command
    }
    let (server, _) = try run(command[0], Array(command.dropFirst()), capture: false)
    defer { stop(server) }
    let connect = { (nick: String) in
        try await IRCConnection.connect(IRCClientConfiguration(host: "127.0.0.1", port: port, tls: false, nick: nick, linesPerSecond: 0), group: group, logger: quiet)
    }
    var reader: IRCConnection?
    for _ in 0..<100 where reader == nil {
        reader = try? await connect("reader")
        if reader == nil { try await Task.sleep(for: .milliseconds(50)) }
    }
    guard let reader else { say("irc: inspircd did not come up"); return }
    let received = NIOLockedValueBox(0)
    Task { for await m in reader.messages where m.command == "PRIVMSG" { received.withLockedValue { $0 += 1 } } }
    try await reader.send(IRCMessage(command: "JOIN", params: ["#bench"])).get()

    let count = Int(ProcessInfo.processInfo.environment["IRC_COUNT"] ?? "") ?? 10_000
    var ours: [Double] = [], reference: [Double] = []
    let rounds = Int(ProcessInfo.processInfo.environment["IRC_ROUNDS"] ?? "") ?? 5
    for round in 0..<rounds {
        // Through the gateway: a backlog drained by the dispatcher and the adapter.
        let queueDir = try scratch()
        let queue = try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: queueDir + "/queue.sqlite", followUps: Reporter(), synchronous: .full))
        let endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group, logger: quiet)
        let bot = IRCBot(name: "bench", configuration: IRCClientConfiguration(host: "127.0.0.1", port: port, tls: false, nick: "gw\(round)", linesPerSecond: 0),
                         channels: ["#bench": nil], group: group, logger: quiet)
        let botTask = Task { await bot.run() }
        var config = GatewayConfiguration(identity: "sip:gateway@gw.example", bodyDirectory: queueDir + "/bodies")
        config.defaultDispatch = DispatchSettings(leaseBatch: 64, leaseDuration: .seconds(60), pollInterval: .milliseconds(100))
        var debug = Logger(label: "bench.irc")
        debug.logLevel = ProcessInfo.processInfo.environment["IRC_DEBUG"] != nil ? .debug : .critical
        let gateway = try Gateway(configuration: config, queue: queue, endpoint: endpoint, adapters: [IRCAdapter(bots: [bot], batchSize: Int(ProcessInfo.processInfo.environment["IRC_BATCH"] ?? "") ?? 256, logger: debug)],
                                  routes: ["sip:ops@gw.example": ["irc://bench/bench"]], logger: debug)
        var events: [NewEvent] = []
        for i in 0..<count {
            events.append(NewEvent(adapter: "irc", target: "irc://bench/bench", origin: EventOrigin(sessionID: "b", messageID: "irc-\(round)-\(i)"),
                                   envelope: EventEnvelope(from: "Load <sip:load@example.com>", to: ["<sip:ops@gw.example>"], contentType: "text/plain"),
                                   body: .inline(Array("benchmark message \(i) with some text to make it typical".utf8))))
        }
        for chunk in stride(from: 0, to: count, by: 1000) { _ = try await queue.enqueue(Array(events[chunk..<min(count, chunk + 1000)])) }
        while !bot.isConnected { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(300))  // its JOIN
        received.withLockedValue { $0 = 0 }
        let t0 = ContinuousClock.now
        let runTask = Task { await gateway.run() }
        let deadline = ContinuousClock.now + .seconds(120)
        while received.withLockedValue({ $0 }) < count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        ours.append(Double(received.withLockedValue { $0 }) / seconds(ContinuousClock.now - t0))
        say(String(format: "irc: round %d: %.0f msg/s", round + 1, ours[round]))
        gateway.stop()
        await runTask.value
        botTask.cancel()
        let stopping = ContinuousClock.now
        await botTask.value
        if ContinuousClock.now - stopping > .seconds(2) { say("irc: the bot took \(ContinuousClock.now - stopping) to stop") }
        await endpoint.shutdown()

        // Reference: lines written straight down one connection.
        let writer = try await connect("writer\(round)")
        try await writer.send(IRCMessage(command: "JOIN", params: ["#bench"])).get()
        try await Task.sleep(for: .milliseconds(300))
        received.withLockedValue { $0 = 0 }
        let t1 = ContinuousClock.now
        for i in 0..<count { writer.send(IRCMessage(command: "PRIVMSG", params: ["#bench", "<Load> benchmark message \(i) with some text to make it typical"])) }
        while received.withLockedValue({ $0 }) < count, ContinuousClock.now < deadline + .seconds(60) { try await Task.sleep(for: .milliseconds(5)) }
        reference.append(Double(received.withLockedValue { $0 }) / seconds(ContinuousClock.now - t1))
        await writer.quit()
        try? FileManager.default.removeItem(atPath: queueDir)
    }
    await reader.quit()
    say(String(format: "irc: %d chat messages from a backlog through the irc adapter to InspIRCd (flood control off, proof = echo): %.0f msg/s (runs: %@); raw lines down one connection: %.0f /s (runs: %@); adapter/raw = %.2f  [target >= 5000 msg/s]",
               count, median(ours), ours.map { String(format: "%.0f", $0) }.joined(separator: ", "), median(reference),
               reference.map { String(format: "%.0f", $0) }.joined(separator: ", "), median(ours) / median(reference)))
}
