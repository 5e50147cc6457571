// Email in and out (issue 18), each beside Postfix's own tools in the same run:
//   smtp     msrpgw's SMTP client (the adapter, from a backlog, connections
//            reused) into smtp-sink, beside smtp-source sending mails of the
//            same size into the same smtp-sink over as many connections;
//            SMTP_GATEWAY_ONLY=1 measures only the gateway figure (to profile it).
//   mail-in  `msrpgw serve` (release) in its own process taking replies from
//            smtp-source over 8 connections, each 250 only once the reply is
//            durable (synchronous=FULL); beside smtp-source into smtp-sink,
//            which stores nothing.
import AsyncHTTPClient
import Events
import Foundation
import Gateway
import MSRPTransport
import Queue
import SMTPAdapter
import SMTPWire
import TestPeers

/// Postfix's smtp-sink on `port` (as root it must be told a user to become).
func startSMTPSink(port: Int) throws -> Process {
    let args = (getuid() == 0 ? ["-u", "postfix"] : []) + ["127.0.0.1:\(port)", "256"]
    let (sink, _) = try run("/usr/sbin/smtp-sink", args, capture: false)
    for _ in 0..<200 where !tcpPortAccepts(port) { usleep(10_000) }
    return sink
}

/// smtp-source sending `mails` of `size` bytes of text over `connections`
/// reused connections; returns mails per second (it exits when every mail had its 250).
func smtpSource(port: Int, mails: Int, connections: Int, size: Int, to: String = "bob@example.org") throws -> Double {
    let t0 = ContinuousClock.now
    let (p, _) = try run("/usr/sbin/smtp-source", ["-d", "-s", String(connections), "-m", String(mails), "-l", String(size),
                                                   "-f", "bob@example.org", "-t", to, "127.0.0.1:\(port)"], capture: false)
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { fatalError("smtp-source failed (\(p.terminationStatus)) against port \(port)") }
    return Double(mails) / seconds(ContinuousClock.now - t0)
}

/// CPU time this process has used (user + system), in seconds.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

func postfixToolsPresent(_ name: String) -> Bool {
    guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/smtp-source"), FileManager.default.isExecutableFile(atPath: "/usr/sbin/smtp-sink") else {
        say("\(name): needs Postfix's smtp-source and smtp-sink (apt-get install postfix)")
        return false
    }
    return true
}

func benchSMTP() async throws {
    guard postfixToolsPresent("smtp") else { return }
    let port = try freeTCPPort()
    let sink = try startSMTPSink(port: port)
    defer { stop(sink) }
    let mails = 5000
    let connections = Int(ProcessInfo.processInfo.environment["SMTP_CONNECTIONS"] ?? "") ?? 8
    let body = Array("benchmark message: Grüße über MSRP, a line of about the length people write in a chat".utf8)
    let settings = MailSettings(from: "msrpgw@gw.example")
    var rates: [Double] = []
    var references: [Double] = []
    var cpuPerMail: [Double] = []
    var clientAlone: [Double] = []
    var clientCPU: [Double] = []
    var mailSize = 0
    for _ in 0..<3 {
        let dir = try scratch()
        let queue = try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: dir + "/queue.sqlite", followUps: Reporter(), synchronous: .full))
        let endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group, logger: quiet)
        let smtp = try SMTPAdapter(relay: SMTPRelay(host: "127.0.0.1", port: port, security: .none, maxConnections: connections),
                                   mail: settings, group: group, logger: quiet)
        var config = GatewayConfiguration(identity: "sip:gateway@gw.example", bodyDirectory: dir + "/bodies")
        config.defaultDispatch = DispatchSettings(leaseBatch: 64, leaseDuration: .seconds(60), pollInterval: .milliseconds(100))
        let gateway = try Gateway(configuration: config, queue: queue, endpoint: endpoint, adapters: [smtp], routes: [:], logger: quiet)
        var events: [NewEvent] = []
        for i in 0..<mails {
            events.append(NewEvent(adapter: "smtp", target: "mailto:bob@example.org", origin: EventOrigin(sessionID: "b", messageID: "mail-\(i)"),
                                   envelope: EventEnvelope(from: "Alice <sip:alice@example.com>", to: ["<sip:mail@gw.example>"], contentType: "text/plain;charset=UTF-8"),
                                   body: .inline(body)))
        }
        for chunk in stride(from: 0, to: mails, by: 1000) { _ = try await queue.enqueue(Array(events[chunk..<chunk + 1000])) }
        if mailSize == 0, let first = try await queue.events(EventFilter(limit: 1)).first {
            mailSize = MailDraft(event: first, recipients: ["bob@example.org"], body: body, settings: settings).composed().count
        }
        let t0 = ContinuousClock.now
        let cpu0 = processCPUSeconds()
        let runTask = Task { await gateway.run() }
        while try await queue.stats().count(state: .delivered) < mails { try await Task.sleep(for: .milliseconds(10)) }
        rates.append(Double(mails) / seconds(ContinuousClock.now - t0))
        cpuPerMail.append((processCPUSeconds() - cpu0) / Double(mails) * 1000)
        gateway.stop()
        await runTask.value
        // SMTP_GATEWAY_ONLY=1: only the gateway figure (for a profile of it).
        if ProcessInfo.processInfo.environment["SMTP_GATEWAY_ONLY"] == "1" {
            await smtp.shutdown()
            await endpoint.shutdown()
            try? FileManager.default.removeItem(atPath: dir)
            say(String(format: "smtp (gateway only): %.0f mails/s, %.3f ms CPU per mail", rates.last ?? 0, cpuPerMail.last ?? 0))
            continue
        }
        // The client alone: the same mails handed to the adapter by as many workers
        // as connections, no queue (what smtp-source does: send, store nothing).
        let leased = try await queue.events(EventFilter(state: .delivered, limit: mails))
        let t1 = ContinuousClock.now
        let cpu1 = processCPUSeconds()
        await withTaskGroup(of: Void.self) { group in
            for w in 0..<connections {
                group.addTask {
                    for event in stride(from: w, to: leased.count, by: connections).map({ leased[$0] }) { _ = await smtp.deliver(event) }
                }
            }
        }
        clientAlone.append(Double(leased.count) / seconds(ContinuousClock.now - t1))
        clientCPU.append((processCPUSeconds() - cpu1) / Double(leased.count) * 1000)
        await smtp.shutdown()
        await endpoint.shutdown()
        try? FileManager.default.removeItem(atPath: dir)
        // smtp-source's own headers are about 150 bytes: its text makes up the rest of our mail's size.
        references.append(try smtpSource(port: port, mails: mails, connections: connections, size: max(100, mailSize - 150)))
    }
    say(String(format: "smtp: %d mails (%d bytes) into smtp-sink, %d reused connections: msrpgw's SMTP client alone %.0f mails/s (runs: %@), %.3f ms CPU per mail; through the gateway from a backlog (lease, send, durable outcome) %.0f mails/s (runs: %@), %.3f ms CPU per mail; smtp-source, same size, sink and connections: %.0f /s (runs: %@); client/smtp-source = %.2f, gateway/smtp-source = %.2f  [target >= 0.5]",
               mails, mailSize, connections, median(clientAlone), clientAlone.map { String(format: "%.0f", $0) }.joined(separator: ", "), median(clientCPU),
               median(rates), rates.map { String(format: "%.0f", $0) }.joined(separator: ", "), median(cpuPerMail), median(references),
               references.map { String(format: "%.0f", $0) }.joined(separator: ", "), median(clientAlone) / median(references), median(rates) / median(references)))
}

func benchMailIn() async throws {
    guard postfixToolsPresent("mail-in") else { return }
    let daemon = repository + "/.build/release/msrpgw"
    guard FileManager.default.isExecutableFile(atPath: daemon) else {
        say("mail-in: needs `swift build -c release --product msrpgw`")
        return
    }
    let sinkPort = try freeTCPPort()
    let sink = try startSMTPSink(port: sinkPort)
    defer { stop(sink) }
    let http = HTTPClient(eventLoopGroup: group)
    let mails = 5000
    let connections = 8
    let size = 600
    let secret = "the mail-in benchmark's token secret"
    var rates: [Double] = []
    var references: [Double] = []
    var stored = 0
    for _ in 0..<3 {
        let dir = try scratch()
        let (apiPort, smtpPort) = (try freeTCPPort(), try freeTCPPort())
        try daemonConfiguration(dir: dir, apiPort: apiPort, extra: """
            [smtp]
            host = "127.0.0.1"
            port = \(sinkPort)
            security = "none"
            from = "msrpgw@gw.example"
            [smtp.inbound]
            port = \(smtpPort)
            domain = "reply.test"
            secrets = ["\(secret)"]
            [routes]
            "sip:mail@gw.example" = ["mailto:bob@example.org"]
            """).write(toFile: dir + "/msrpgw.toml", atomically: true, encoding: .utf8)
        let gw = try await startDaemon(daemon, dir: dir)
        // The mail the replies answer: Alice's message to Bob, sent to the sink.
        var post = HTTPClientRequest(url: "http://127.0.0.1:\(apiPort)/v1/messages")
        post.method = .POST
        post.headers.add(name: "Content-Type", value: "application/json")
        post.body = .bytes(Array(#"{"to": "sip:mail@gw.example", "from": "sip:alice@example.com", "text": "Lunch?"}"#.utf8))
        let posted = try await http.execute(post, timeout: .seconds(10))
        let answer = String(buffer: try await posted.body.collect(upTo: 1 << 16))
        guard (200..<300).contains(Int(posted.status.code)) else { fatalError("mail-in: POST /v1/messages answered \(posted.status): \(answer)") }
        var event: Int64?
        let deadline = ContinuousClock.now + .seconds(30)
        while event == nil {
            guard ContinuousClock.now < deadline else { fatalError("mail-in: the mail to answer was not delivered to smtp-sink in 30 s") }
            let response = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(apiPort)/v1/events?adapter=smtp&state=delivered"), timeout: .seconds(5))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
            if let range = text.range(of: #""id":""#), let end = text[range.upperBound...].firstIndex(of: "\"") {
                event = Int64(text[range.upperBound..<end])
            } else {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let keys = try MailTokenKeys(secrets: [secret])
        let address = MailToken(kind: .reply, event: event ?? 0, expires: Date().addingTimeInterval(3600)).localPart(signedWith: keys) + "@reply.test"
        rates.append(try smtpSource(port: smtpPort, mails: mails, connections: connections, size: size, to: address))
        stored = Int(try await metric(http, api: apiPort, "msrpgw_mail_in_total{result=\"reply\"}"))
        stop(gw)
        try? FileManager.default.removeItem(atPath: dir)
        references.append(try smtpSource(port: sinkPort, mails: mails, connections: connections, size: size))
    }
    try await http.shutdown()
    say(String(format: "mail-in: %d replies (~%d bytes) into msrpgw serve (release, synchronous=FULL) from smtp-source, %d connections: %.0f mails/s durably accepted (runs: %@; the last run stored %d); smtp-source into smtp-sink (stores nothing): %.0f /s (runs: %@); msrpgw/smtp-sink = %.2f  [target >= 1000 mails/s]",
               mails, size, connections, median(rates), rates.map { String(format: "%.0f", $0) }.joined(separator: ", "), stored, median(references),
               references.map { String(format: "%.0f", $0) }.joined(separator: ", "), median(rates) / median(references)))
}
