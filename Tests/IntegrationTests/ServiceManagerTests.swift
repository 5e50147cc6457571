import Foundation
import MSRP
import MSRPTransport
import NIOConcurrencyHelpers
import Testing
import TestPeers

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon under a service manager: the sd_notify protocol on a socket the
/// test holds (as systemd would), a configuration reload on SIGHUP that keeps
/// sessions up, and JSON logs.
@Suite(.serialized, .enabled(if: Peers.available("python3") && Peers.pythonModuleAvailable("standardwebhooks"), "needs python3 and pip install standardwebhooks"))
struct ServiceManagerTests {
    @Test func notifiesReadyWatchdogReloadingAndStopping() async throws {
        let socket = try NotifySocket()
        let gw = try await GatewayProcess(extra: GatewayProcess.routeToNowhere,
                                          environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "600000"])
        defer { gw.stop() }
        #expect(await until(.seconds(10)) { socket.messages.contains { $0.hasPrefix("READY=1") } }, "\(socket.messages)")
        let ready = socket.messages.first { $0.hasPrefix("READY=1") } ?? ""
        #expect(ready.contains("STATUS=serving 0 sessions"), "\(ready)")
        // A 0.6 s watchdog is pinged every 0.3 s once the checks pass.
        #expect(await until(.seconds(10)) { socket.messages.filter { $0 == "WATCHDOG=1" }.count >= 4 }, "\(socket.messages)")

        let before = socket.messages.count
        gw.process.signal(SIGHUP)
        #expect(await until(.seconds(10)) { socket.messages.dropFirst(before).contains { $0.hasPrefix("READY=1") } })
        let reload = Array(socket.messages.dropFirst(before)).filter { $0 != "WATCHDOG=1" }
        #expect(reload.first?.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") == true, "\(reload)")
        #expect(gw.process.stderr.contains("configuration reloaded"))

        gw.process.signal(SIGTERM)
        #expect(await until(.seconds(20)) { socket.messages.contains { $0.hasPrefix("STOPPING=1") } }, "\(socket.messages)")
        #expect(try await gw.process.wait(timeout: .seconds(25)) == 0)
    }

    /// SIGHUP puts new routes, webhook URLs and secrets, and the log level in
    /// force while an MSRP session stays up; a webhook taken out still delivers
    /// what was queued for it; a bad file changes nothing.
    @Test func reloadKeepsSessionsAndRefusesABadFile() async throws {
        let newSecret = "whsec_" + Data("the rotated key of the reload test".utf8).base64EncodedString()
        let (first, second) = (try await WebhookSinkProcess(), try await WebhookSinkProcess(secret: newSecret))
        defer { first.stop(); second.stop() }
        // In [dispatch]: a receiver that is down is probed every second (the
        // breaker's doubling wait would otherwise reach 16 s or more while a
        // loaded machine gets through the reload).
        func route(to sink: WebhookSinkProcess, secret: String, name: String = "ops") -> String {
            """
            breaker_backoff = "1s"
            breaker_max_backoff = "1s"
            [routes]
            "sip:ops@gw.example" = ["webhook:\(name)"]
            [webhooks.\(name)]
            url = "\(sink.url("/ok"))"
            secrets = ["\(secret)"]
            """
        }
        // A receiver that is down at first: its message waits in the queue across the reload.
        let latePort = try freePort()
        let gw = try await GatewayProcess(
            extra: route(to: first, secret: WebhookSinkProcess.secret).replacingOccurrences(
                of: "[webhooks.ops]", with: "\"sip:late@gw.example\" = [\"webhook:late\"]\n[webhooks.late]\nurl = \"http://127.0.0.1:\(latePort)/ok\"\nsecrets = [\"\(WebhookSinkProcess.secret)\"]\n[webhooks.ops]"),
            queue: "retry_schedule = [\"300ms\"]\nmax_attempts = 200\njitter = false")
        defer { gw.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()
        let r1 = try await alice.send("before the reload", to: "sip:ops@gw.example", messageID: "reload-1")
        #expect(r1 == .accepted, "\(r1) \(gw.process.stderr)")
        #expect(await until(.seconds(10)) { first.records("/ok").count == 1 })
        #expect(try await alice.send("for a receiver that is down", to: "sip:late@gw.example", messageID: "reload-late") == .accepted)
        // Its first attempt has failed (after the HTTP client's connect time-out): the next one comes after the reload.
        try await gw.process.waitFor("webhook late unreachable", in: \.stderr)

        try gw.rewrite(extra: route(to: second, secret: newSecret, name: "rotated"), logLevel: "debug")
        gw.process.signal(SIGHUP)
        try await gw.process.waitFor("configuration reloaded", in: \.stderr)
        #expect(try await alice.send("after the reload", to: "sip:ops@gw.example", messageID: "reload-2") == .accepted)
        #expect(await until(.seconds(10)) { second.records("/ok").count == 1 })
        #expect(second.records("/ok").first?.valid == true, "signed with the new secret")
        #expect(second.records("/ok").first?.payload?.data.text == "after the reload")
        #expect(first.records("/ok").count == 1)
        // The late receiver's webhook is no longer configured: what waited for it still goes.
        let lateSink = try await WebhookSinkProcess(port: latePort)
        defer { lateSink.stop() }
        #expect(await until(.seconds(15)) { lateSink.records("/ok").contains { $0.valid && $0.payload?.data.text == "for a receiver that is down" } })
        // The new level is in force for loggers made at start.
        #expect(await until(.seconds(5)) { gw.process.stderr.contains("message accepted") })

        // A route to a webhook that is not configured: refused, naming the key; the old one stays.
        try gw.rewrite(extra: """
            [routes]
            "sip:ops@gw.example" = ["webhook:missing"]
            """)
        gw.process.signal(SIGHUP)
        try await gw.process.waitFor("configuration reload refused", in: \.stderr)
        #expect(gw.process.stderr.contains("names no [webhooks.missing]"))
        #expect(try await alice.send("after a refused reload", to: "sip:ops@gw.example", messageID: "reload-3") == .accepted)
        #expect(await until(.seconds(10)) { second.records("/ok").count == 2 })
        #expect(alice.allReports.allSatisfy { $0.headers.status?.code == 200 })
        #expect(gw.process.stderr.components(separatedBy: "msrpgw ready").count == 2, "one start, no restart")
        await clients.shutdown()
    }

    /// A reload also puts in force the SMTP mail settings, the rooms and the
    /// relay role's users, with the daemon and its sessions as they were.
    @Test func reloadAppliesSMTPRoomsAndRelayUsers() async throws {
        let sink = try await SMTPSinkProcess(mode: "plain")
        defer { sink.stop() }
        func config(from: String, user: String, rooms: String) -> String {
            """
            [routes]
            "sip:mail@gw.example" = ["mailto:inbox@example.org"]
            [smtp]
            host = "127.0.0.1"
            port = \(sink.port)
            security = "none"
            from = "\(from)"
            reply_timeout = "3s"
            connect_timeout = "3s"
            [relay]
            enabled = true
            users = { \(user) = "pw-\(user)" }
            \(rooms)
            """
        }
        let gw = try await GatewayProcess(extra: config(from: "before@gw.example", user: "olduser", rooms: ""))
        defer { gw.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()
        #expect(try await alice.send("first mail", to: "sip:mail@gw.example", messageID: "reload-mail-1") == .accepted)
        #expect(await until(.seconds(15)) { sink.mails.count == 1 })
        #expect(try await SMTPSinkProcess.parse(sink.mails[0]).from_address == "before@gw.example")
        let inRoom = clients.client(gw, address: "sip:carol@example.com")
        await #expect(throws: (any Error).self, "no room yet") { try await inRoom.open(route: "sip:room@gw.example") }
        let relay = try MSRPURI("msrp://127.0.0.1:\(gw.msrpPort);tcp")
        _ = try await MSRPRelayClient(endpoint: clients.endpoint, relay: relay, username: "olduser", password: "pw-olduser").authenticate()

        try gw.rewrite(extra: config(from: "after@gw.example", user: "newuser", rooms: "[rooms]\n\"sip:room@gw.example\" = { nicknames = true }"))
        gw.process.signal(SIGHUP)
        try await gw.process.waitFor("configuration reloaded", in: \.stderr)
        #expect(try await alice.send("second mail", to: "sip:mail@gw.example", messageID: "reload-mail-2") == .accepted)
        #expect(await until(.seconds(15)) { sink.mails.count == 2 })
        #expect(try await SMTPSinkProcess.parse(sink.mails).map(\.from_address).sorted() == ["after@gw.example", "before@gw.example"])
        try await inRoom.open(route: "sip:room@gw.example")
        _ = try await MSRPRelayClient(endpoint: clients.endpoint, relay: relay, username: "newuser", password: "pw-newuser").authenticate()
        await #expect(throws: (any Error).self, "the old user is gone") {
            _ = try await MSRPRelayClient(endpoint: clients.endpoint, relay: relay, username: "olduser", password: "pw-olduser").authenticate()
        }
        await clients.shutdown()
    }

    /// `log_format = "json"`: every line of a run is one JSON object with the stable keys.
    @Test func jsonLogsAreOneObjectPerLine() async throws {
        let gw = try await GatewayProcess(extra: GatewayProcess.routeToNowhere, environment: ["MSRPGW_GATEWAY_LOG_FORMAT": "json"])
        gw.process.signal(SIGTERM)
        _ = try await gw.process.wait(timeout: .seconds(25))
        let lines = gw.process.stderr.split(separator: "\n")
        #expect(lines.count >= 3)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["time"] is String && object?["level"] is String && object?["logger"] is String && object?["message"] is String,
                    "\(line)")
        }
        #expect(lines.contains { $0.contains("\"message\":\"msrpgw ready\"") })
    }
}

/// A Unix datagram socket standing in for systemd's `$NOTIFY_SOCKET`: it
/// collects every datagram the daemon sends.
final class NotifySocket: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let received = NIOLockedValueBox<[String]>([])
    private let reader: Thread

    var messages: [String] { received.withLockedValue { $0 } }

    init() throws {
        let path = Scratch.path("notify", suffix: ".sock")
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        (self.path, self.fd) = (path, fd)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { p in
            for (i, b) in path.utf8.enumerated() { p[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw ChildProcess.ChildFailed(description: "cannot bind \(path): errno \(errno)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let received = self.received
        reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !Thread.current.isCancelled {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 { received.withLockedValue { $0.append(String(decoding: buffer[0..<n], as: UTF8.self)) } }
            }
            close(fd)
        }
        reader.start()
    }

    deinit {
        reader.cancel()
        unlink(path)
    }
}
