import CPIM
import Foundation
import MSRP
import MSRPGatewayClient
import NIOCore
import NIOPosix
import Testing
import TestPeers

/// The gateway as users meet it: `msrpgw serve` as a process, an MSRP client on
/// one side, a real HTTP receiver (Python, checking signatures with the Standard
/// Webhooks reference library) on the other.
@Suite(.serialized, .enabled(if: Peers.available("python3") && Peers.pythonModuleAvailable("standardwebhooks"), "needs python3 and pip install standardwebhooks"))
struct GatewayEndToEndTests {
    func routes(_ sink: WebhookSinkProcess, _ pairs: [(String, String)]) -> String {
        var s = "[routes]\n"
        for (address, path) in pairs { s += "\"\(address)\" = [\"webhook:\(path.replacingOccurrences(of: "/", with: "_"))\"]\n" }
        for (_, path) in pairs {
            s += "[webhooks.\(path.replacingOccurrences(of: "/", with: "_"))]\nurl = \"\(sink.url("/" + path))\"\nsecrets = [\"\(WebhookSinkProcess.secret)\"]\ntimeout = \"10s\"\n"
        }
        return s
    }

    @Test func signedWebhooksThenDelayedReportsAndIMDNs() async throws {
        let sink = try await WebhookSinkProcess()
        defer { sink.stop() }
        let gw = try await GatewayProcess(extra: routes(sink, [("sip:ops@gw.example", "ok"), ("sip:flaky@gw.example", "flaky/1"), ("sip:bad@gw.example", "bad")]))
        defer { gw.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()

        #expect(try await alice.send("hello ops ✓", to: "sip:ops@gw.example", messageID: "m-ok") == .accepted)
        #expect(try await alice.send("retried once", to: "sip:flaky@gw.example", messageID: "m-flaky") == .accepted)
        #expect(try await alice.send("refused", to: "sip:bad@gw.example", messageID: "m-bad") == .accepted)
        // Failure-Report: no: no response, and no REPORT whatever happens.
        #expect(try await alice.send("quiet", to: "sip:bad@gw.example", messageID: "m-quiet", successReport: false, failureReport: .no, imdn: []) == .sent)

        #expect(await alice.wait(timeout: .seconds(15)) { c in c.allReports.count >= 3 && c.allReceived.count >= 3 })
        let reports = Dictionary(alice.allReports.map { ($0.headers.messageID ?? "", $0.headers.status?.code ?? 0) }, uniquingKeysWith: { a, _ in a })
        #expect(reports == ["m-ok": 200, "m-flaky": 200, "m-bad": 400], "\(reports)")
        let imdns = alice.allReceived.compactMap { r in try? IMDNNotification(xml: Array(r.text.utf8)) }
        #expect(Dictionary(imdns.map { ($0.messageID, $0.status) }, uniquingKeysWith: { a, _ in a })
                == ["imdn-m-ok": "delivered", "imdn-m-flaky": "delivered", "imdn-m-bad": "failed"])

        // Every request was signed correctly; the flaky one came twice with one webhook-id.
        let all = sink.records
        #expect(!all.isEmpty && all.allSatisfy(\.valid), "signatures: \(all.map { ($0.path, $0.valid) })")
        let ok = sink.records("/ok")
        #expect(ok.count == 1)
        #expect(ok.first?.payload?.data.text == "hello ops ✓")
        #expect(ok.first?.payload?.data.from?.uri == "sip:alice@example.com")
        #expect(ok.first?.payload?.data.to.first?.uri == "sip:ops@gw.example")
        let flaky = sink.records("/flaky")
        #expect(flaky.map(\.status) == [500, 200])
        #expect(Set(flaky.map(\.webhook_id)).count == 1)
        #expect(await until(.seconds(5)) { sink.records("/bad").count == 2 })
        try await Task.sleep(for: .milliseconds(500))
        #expect(alice.allReports.filter { $0.headers.messageID == "m-quiet" }.isEmpty, "Failure-Report: no got a REPORT")
        await clients.shutdown()
    }

    /// A webhook endpoint with its own CA (`ca_file`): its receiver's certificate
    /// from a private CA is trusted for it, and for no other endpoint.
    @Test func aWebhookEndpointTrustsItsOwnCA() async throws {
        let certs = try await TestCertificates.make()
        let sink = try await WebhookSinkProcess(tls: certs)
        defer { sink.stop() }
        let gw = try await GatewayProcess(extra: """
            [routes]
            "sip:inside@gw.example" = ["webhook:inside"]
            "sip:other@gw.example" = ["webhook:other"]
            [webhooks.inside]
            url = "\(sink.url("/ok"))"
            secrets = ["\(WebhookSinkProcess.secret)"]
            ca_file = "\(certs.caPath)"
            [webhooks.other]
            url = "\(sink.url("/ok2"))"
            secrets = ["\(WebhookSinkProcess.secret)"]
            """, queue: "retry_schedule = [\"0s\"]\nmax_attempts = 1\njitter = false")
        defer { gw.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()
        #expect(try await alice.send("over TLS", to: "sip:inside@gw.example", messageID: "m-inside", imdn: []) == .accepted)
        #expect(try await alice.send("untrusted", to: "sip:other@gw.example", messageID: "m-other", imdn: []) == .accepted)
        #expect(await alice.wait(timeout: .seconds(15)) { $0.allReports.count >= 2 })
        let codes = Dictionary(alice.allReports.map { ($0.headers.messageID ?? "", $0.headers.status?.code ?? 0) }, uniquingKeysWith: { a, _ in a })
        #expect(codes["m-inside"] == 200, "\(codes)")
        #expect(codes["m-other"] != 200, "an endpoint without the CA must not trust the receiver: \(codes)")
        #expect(sink.records("/ok").count == 1 && sink.records("/ok2").isEmpty)
        await clients.shutdown()
    }

    @Test func receiverDownForTheWholeAgeThen408AndReplay() async throws {
        let port = try freePort()  // nobody listens here yet
        let extra = """
            [routes]
            "sip:ops@gw.example" = ["webhook:down"]
            [webhooks.down]
            url = "http://127.0.0.1:\(port)/ok"
            secrets = ["\(WebhookSinkProcess.secret)"]
            timeout = "2s"
            """
        let gw = try await GatewayProcess(extra: extra, queue: "retry_schedule = [\"0s\", \"300ms\"]\nmax_attempts = 20\nmax_age = \"2s\"\njitter = false")
        defer { gw.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()
        #expect(try await alice.send("nobody home", to: "sip:ops@gw.example", messageID: "m-down", successReport: false) == .accepted)
        #expect(await alice.wait(timeout: .seconds(15)) { $0.allReports.contains { $0.headers.status?.code == 408 } }, "no 408 REPORT")
        // No oracle: the sender learns a stable phrase, not our receiver's address or socket error.
        let comment = alice.allReports.first { $0.headers.status?.code == 408 }?.headers.status?.reason ?? ""
        #expect(comment == "delivery timed out", "the 408 REPORT said \(comment.debugDescription)")
        #expect(alice.allReceived.contains { (try? IMDNNotification(xml: Array($0.text.utf8)))?.status == "failed" })

        let (status, body, _) = try await alice.call("GET", "/v1/events?state=dead&adapter=webhook")
        #expect(status == 200)
        struct E: Decodable { var id: String; var status_code: Int?; var last_error: String? }
        let dead = try JSONDecoder().decode([E].self, from: Data(body.utf8))
        #expect(dead.count == 1)
        #expect(dead.first?.status_code == 408)
        #expect(dead.first?.last_error?.contains("127.0.0.1") == true || dead.first?.last_error?.contains("refused") == true,
                "the API keeps why: \(dead.first?.last_error ?? "-")")

        // The receiver comes back; an operator replays the event.
        let sink = try await WebhookSinkProcess(port: port)
        defer { sink.stop() }
        let id = try #require(dead.first?.id)
        let (replayed, _, _) = try await alice.call("POST", "/v1/events/\(id)/replay")
        #expect(replayed == 200)
        #expect(await until { sink.records("/ok").count == 1 })
        #expect(sink.records("/ok").first?.payload?.data.text == "nobody home")
        #expect(await until { (try? await alice.call("GET", "/v1/events/\(id)"))?.1.contains("\"state\":\"delivered\"") == true })
        let (again, _, _) = try await alice.call("POST", "/v1/events/\(id)/replay")
        #expect(again == 409, "a delivered event is not replayed")
        await clients.shutdown()
    }

    @Test func sigkillAfterThe200LosesNothingAndDeliversOnce() async throws {
        let sink = try await WebhookSinkProcess()
        defer { sink.stop() }
        let gw = try await GatewayProcess(extra: routes(sink, [("sip:ops@gw.example", "slow/2")]))
        defer { gw.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()
        #expect(try await alice.send("survives a crash", to: "sip:ops@gw.example", messageID: "m-crash") == .accepted)
        // The delivery is in flight at the receiver: kill the gateway now.
        try await sink.process.waitFor("BEGIN /slow/2")
        gw.process.signal(SIGKILL)
        _ = try await gw.process.wait(timeout: .seconds(5))
        try await gw.restart()
        #expect(await until(.seconds(20)) { sink.records("/slow").count >= 2 }, "not delivered after the restart")
        let records = sink.records("/slow")
        #expect(Set(records.map(\.webhook_id)).count == 1, "one message, one webhook-id: \(records.map(\.webhook_id))")
        #expect(records.allSatisfy { $0.payload?.data.text == "survives a crash" })
        #expect(await until { (try? await alice.call("GET", "/v1/events?state=delivered&adapter=webhook"))?.1.contains("m-crash") == true })
        await clients.shutdown()
    }

    @Test func alertmanagerAlertsBecomeSystemMessagesOnce() async throws {
        let gw = try await GatewayProcess(extra: "[alertmanager]\nsubscribers = [\"sip:alice@example.com\"]")
        defer { gw.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()
        let alert = #"{"version":"4","groupKey":"g1","status":"firing","commonLabels":{"alertname":"DiskFull"},"alerts":[{"status":"firing","labels":{"alertname":"DiskFull"},"annotations":{"summary":"/var at 97%"},"startsAt":"2026-11-24T10:00:00Z","fingerprint":"abc"}]}"#
        let (s1, _, _) = try await alice.call("POST", "/v1/alertmanager", body: alert)
        let (s2, _, _) = try await alice.call("POST", "/v1/alertmanager", body: alert)  // Alertmanager retrying
        #expect(s1 == 200 && s2 == 200)
        #expect(await alice.wait(timeout: .seconds(10)) { !$0.allReceived.isEmpty })
        try await Task.sleep(for: .milliseconds(500))
        let got = alice.allReceived
        #expect(got.count == 1, "the retried notification is the same event")
        #expect(got.first?.system == true)
        #expect(got.first?.text == "[FIRING:1] DiskFull\n- /var at 97%")
        await clients.shutdown()
    }

    /// Bad input at the API: the right status and a message, never a crash.
    @Test func apiAnswersBadInputClearly() async throws {
        let gw = try await GatewayProcess(extra: "")
        defer { gw.stop() }
        let clients = try TestClients()
        let api = clients.client(gw)
        let anonymous = clients.client(gw, token: nil)
        let wrong = clients.client(gw, token: "wrong")
        let offerPNG = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\na=accept-types:image/png\r\na=path:msrp://127.0.0.1:9/abc;tcp\r\n"
        let cases: [(String, GatewayClient, String, String, String?, String, Int)] = [
            ("no token", anonymous, "GET", "/v1/events", nil, "application/json", 401),
            ("wrong token", wrong, "GET", "/v1/events", nil, "application/json", 401),
            ("SDP with the wrong content type", api, "POST", "/v1/sessions", "v=0", "text/plain", 415),
            ("garbage SDP", api, "POST", "/v1/sessions", "hello", "application/sdp", 400),
            ("SDP without MSRP", api, "POST", "/v1/sessions", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\n", "application/sdp", 400),
            ("SDP with nothing acceptable", api, "POST", "/v1/sessions", offerPNG, "application/sdp", 415),
            ("malformed JSON", api, "POST", "/v1/messages", "{", "application/json", 400),
            ("JSON missing text", api, "POST", "/v1/messages", #"{"to": "sip:alice@example.com"}"#, "application/json", 400),
            ("JSON wrong type", api, "POST", "/v1/messages", #"{"to": 5, "text": "x"}"#, "application/json", 400),
            ("both session and to", api, "POST", "/v1/messages", #"{"to": "sip:a@b", "session": "x", "text": "x"}"#, "application/json", 400),
            ("unknown session", api, "POST", "/v1/messages", #"{"session": "nope", "text": "x"}"#, "application/json", 404),
            ("unroutable address", api, "POST", "/v1/messages", #"{"to": "mailto:x@example.com", "text": "x"}"#, "application/json", 403),
            ("tel: peer with no session and no call-out", api, "POST", "/v1/messages", #"{"to": "tel:+15551234567", "text": "x"}"#, "application/json", 403),
            ("not JSON", api, "POST", "/v1/messages", "text=x", "application/x-www-form-urlencoded", 415),
            ("huge body", api, "POST", "/v1/messages", String(repeating: "x", count: 300_000), "application/json", 413),
            ("bad state filter", api, "GET", "/v1/events?state=bogus", nil, "application/json", 400),
            ("bad limit", api, "GET", "/v1/events?limit=0", nil, "application/json", 400),
            ("bad event id", api, "GET", "/v1/events/abc", nil, "application/json", 400),
            ("unknown event", api, "GET", "/v1/events/123", nil, "application/json", 404),
            ("replay of an unknown event", api, "POST", "/v1/events/123/replay", nil, "application/json", 404),
            ("unknown session delete", api, "DELETE", "/v1/sessions/nope", nil, "application/json", 404),
            // Strings that reach MSRP, CPIM or mail headers and the log: by their grammar.
            ("content type with a bare CR", api, "POST", "/v1/messages", #"{"to": "sip:ops@gw.example", "text": "x", "content_type": "text/plain\rX-Evil: 1"}"#, "application/json", 400),
            ("content type not a media type", api, "POST", "/v1/messages", #"{"to": "sip:ops@gw.example", "text": "x", "content_type": "plain"}"#, "application/json", 400),
            ("subject with a line feed", api, "POST", "/v1/messages", #"{"to": "sip:ops@gw.example", "text": "x", "subject": "hi\nBcc: x@y"}"#, "application/json", 400),
            ("from not a URI", api, "POST", "/v1/messages", #"{"to": "sip:ops@gw.example", "text": "x", "from": "ops team"}"#, "application/json", 400),
            ("to with angle brackets", api, "POST", "/v1/messages", #"{"to": "<sip:ops@gw.example>", "text": "x"}"#, "application/json", 400),
            ("session id with a control character", api, "POST", "/v1/messages", #"{"session": "a\u001bb", "text": "x"}"#, "application/json", 400),
            ("peer not a URI", api, "POST", "/v1/sessions?peer=alice%0D%0A", offerPNG, "application/sdp", 400),
            ("Alertmanager v3", api, "POST", "/v1/alertmanager", #"{"version":"3","groupKey":"g","status":"firing","alerts":[]}"#, "application/json", 400),
            ("no subscribers", api, "POST", "/v1/alertmanager", #"{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"firing","labels":{}}]}"#, "application/json", 503),
        ]
        for (name, client, method, path, body, type, expected) in cases {
            let (status, text, _) = try await client.call(method, path, body: body, contentType: type)
            #expect(status == expected, "\(name): \(status) \(text)")
            if expected != 401 { #expect(text.contains("\"error\""), "\(name): \(text)") }
        }
        let (health, hbody, _) = try await anonymous.call("GET", "/healthz")
        #expect(health == 200 && hbody.contains("\"status\":\"ok\""))
        let (metrics, mbody, _) = try await anonymous.call("GET", "/metrics")
        #expect(metrics == 200 && mbody.contains("msrpgw_queue_events"), "\(mbody.prefix(500))")
        #expect(gw.process.isRunning)
        await clients.shutdown()
    }

    /// Shutdown is bounded when peers do not answer: a webhook receiver, an IRC
    /// server and an SMTP relay that accept connections and never say a word,
    /// with a delivery in flight. The process is gone within 20 s of SIGTERM.
    @Test func sigtermIsBoundedWhenPeersDoNotAnswer() async throws {
        let clients = try TestClients()
        let silent = try await ServerBootstrap(group: clients.group)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = silent.localAddress?.port ?? 0
        let gw = try await GatewayProcess(extra: """
            [routes]
            "sip:ops@gw.example" = ["webhook:mute"]
            "sip:mail@gw.example" = ["mailto:ops@example.org"]
            [webhooks.mute]
            url = "http://127.0.0.1:\(port)/hook"
            secrets = ["\(WebhookSinkProcess.secret)"]
            timeout = "60s"
            [smtp]
            host = "127.0.0.1"
            port = \(port)
            security = "none"
            from = "gw@example.org"
            reply_timeout = "60s"
            [irc.mute]
            host = "127.0.0.1"
            port = \(port)
            tls = false
            nick = "gw"
            """)
        let alice = clients.client(gw)
        try await alice.open()
        #expect(try await alice.send("into the void", to: "sip:ops@gw.example", successReport: false, imdn: []) == .accepted)
        #expect(try await alice.send("no reply", to: "sip:mail@gw.example", successReport: false, imdn: []) == .accepted)
        try await Task.sleep(for: .milliseconds(500))  // the deliveries are under way
        let start = ContinuousClock.now
        gw.process.signal(SIGTERM)
        let status = try await gw.process.wait(timeout: .seconds(30))
        let took = ContinuousClock.now - start
        print("SIGTERM with silent peers: exit \(status) after \(took)")
        #expect(took < .seconds(21), "shutdown took \(took)")
        try? await silent.close()  // before its loop shuts down (a defer would run after)
        await clients.shutdown()
    }

    @Test func sigtermStopsCleanly() async throws {
        let gw = try await GatewayProcess(extra: "")
        gw.process.signal(SIGTERM)
        let status = try await gw.process.wait(timeout: .seconds(25))
        #expect(status == 0, "\(gw.process.stderr)")
        #expect(gw.process.stderr.contains("msrpgw stopped"))
    }
}

/// `msrpgw check-config`, as an operator runs it.
@Suite struct CheckConfigTests {
    @Test func theExampleIsValidAndMistakesAreNamed() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let good = try ChildProcess(Executables.msrpgw, ["check-config", root.appendingPathComponent("config/msrpgw.toml").path], name: "check-config")
        #expect(try await good.wait() == 0, "\(good.stderr)")
        #expect(good.stdout.contains("ok:"))

        let path = Scratch.path("bad", suffix: ".toml")
        try "[msrp]\nport = \"many\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        let bad = try ChildProcess(Executables.msrpgw, ["check-config", path], name: "check-config")
        #expect(try await bad.wait() == 2)
        #expect(bad.stderr.contains("msrp.port: expected an integer"), "\(bad.stderr)")

        let env = try ChildProcess(Executables.msrpgw, ["check-config", root.appendingPathComponent("config/msrpgw.toml").path], name: "check-config",
                                   environment: ["MSRPGW_MSRP_PORT": "nope"])
        #expect(try await env.wait() == 2)
        #expect(env.stderr.contains("msrp.port"), "\(env.stderr)")
    }
}
