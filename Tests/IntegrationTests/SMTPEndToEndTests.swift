import CPIM
import Foundation
import MSRP
import MSRPGatewayClient
import Testing
import TestPeers

/// MSRP in, email out: `msrpgw serve` with a real SMTP server (aiosmtpd) on
/// loopback; what arrives is read with Python's `email` package.
@Suite(.serialized, .enabled(if: Peers.debianPythonModuleAvailable("aiosmtpd"), "needs apt-get install python3-aiosmtpd"))
struct SMTPEndToEndTests {
    func smtpConfig(_ sink: SMTPSinkProcess, security: String = "none", extra: String = "", routes: String) -> String {
        """
        [smtp]
        host = "\(security == "none" ? "127.0.0.1" : "localhost")"
        port = \(sink.port)
        security = "\(security)"
        from = "msrpgw@gw.example"
        reply_to = "ops@gw.example"
        reply_timeout = "3s"
        connect_timeout = "3s"
        \(extra)
        [routes]
        \(routes)
        """
    }

    @Test func mailArrivesAsTheMessageSaid() async throws {
        let sink = try await SMTPSinkProcess(mode: "plain")
        defer { sink.stop() }
        let gw = try await GatewayProcess(extra: smtpConfig(sink, routes: "\"sip:mail@gw.example\" = [\"mailto:bob@example.org\"]"))
        defer { gw.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()
        #expect(try await alice.send("Grüße über MSRP ✓\nzweite Zeile\n.a line with a dot", to: "sip:mail@gw.example", messageID: "mail-1") == .accepted)
        #expect(try await alice.send("second", to: "sip:mail@gw.example", messageID: "mail-2") == .accepted)
        #expect(await alice.wait(timeout: .seconds(15)) { $0.allReports.count == 2 })
        #expect(alice.allReports.allSatisfy { $0.headers.status?.code == 200 })
        #expect(sink.mails.count == 2)
        // Deliveries run in parallel: find each mail by its text, not its order.
        var parsed = try await SMTPSinkProcess.parse(sink.mails)
        let m = try #require(parsed.first { $0.text?.contains("Grüße") == true })
        #expect(m.defects.isEmpty, "\(m.defects)")
        #expect(m.from_name == "Alice")
        #expect(m.from_address == "msrpgw@gw.example")
        #expect(m.reply_to == "ops@gw.example")
        #expect(m.to == "bob@example.org")
        #expect(m.subject == "Message from Alice")
        #expect(m.text?.trimmingCharacters(in: .newlines) == "Grüße über MSRP ✓\nzweite Zeile\n.a line with a dot")
        let second = try #require(parsed.first { $0.text?.contains("second") == true })
        // One session, one thread; one event, one Message-ID.
        #expect(m.in_reply_to != nil && m.in_reply_to == second.in_reply_to)
        #expect(m.references == m.in_reply_to)
        #expect(m.message_id != second.message_id)

        // HTML becomes multipart/alternative with a text part; other types are attached.
        #expect(try await alice.send("<p>Build <b>green</b> &amp; deployed</p>", to: "sip:mail@gw.example", messageID: "mail-3",
                                     contentType: "text/html", subject: "Déploiement") == .accepted)
        #expect(try await alice.send(#"{"build": 42, "ok": true}"#, to: "sip:mail@gw.example", messageID: "mail-4", contentType: "application/json") == .accepted)
        #expect(await alice.wait(timeout: .seconds(15)) { $0.allReports.count == 4 })
        #expect(sink.mails.count == 4)
        parsed = try await SMTPSinkProcess.parse(sink.mails)
        let html = try #require(parsed.first { $0.content_type == "multipart/alternative" })
        #expect(html.content_type == "multipart/alternative")
        #expect(html.subject == "Déploiement")
        #expect(html.text?.trimmingCharacters(in: .whitespacesAndNewlines) == "Build green & deployed")
        #expect(html.html?.contains("<b>green</b>") == true)
        let json = try #require(parsed.first { $0.content_type == "multipart/mixed" })
        #expect(json.content_type == "multipart/mixed")
        #expect(json.attachments.first?.type == "application/json")
        #expect(json.attachments.first?.size == #"{"build": 42, "ok": true}"#.utf8.count)
        await clients.shutdown()
    }

    @Test(arguments: ["starttls", "auth-plain", "auth-login", "tls"])
    func tlsAndAuthentication(_ mode: String) async throws {
        let certs = try await TestCertificates.make()
        let sinkMode = mode.hasPrefix("auth") ? "auth" : mode
        let sink = try await SMTPSinkProcess(mode: sinkMode, certificates: certs)
        defer { sink.stop() }
        var extra = "ca_file = \"\(certs.caPath)\""
        if mode.hasPrefix("auth") { extra += "\nusername = \"alice\"\npassword = \"s3cret\"\nauth = \"\(mode.dropFirst(5))\"" }
        let gw = try await GatewayProcess(extra: smtpConfig(sink, security: mode == "tls" ? "tls" : "starttls", extra: extra,
                                                            routes: "\"sip:mail@gw.example\" = [\"mailto:bob@example.org\"]"))
        defer { gw.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()
        #expect(try await alice.send("over TLS", to: "sip:mail@gw.example", messageID: "tls-1") == .accepted)
        #expect(await alice.wait(timeout: .seconds(15)) { $0.allReports.first?.headers.status?.code == 200 }, "\(mode): \(gw.process.stderr.suffix(2000))")
        let m = try await SMTPSinkProcess.parse(try #require(sink.mails.first))
        if mode != "tls" { #expect(m.peer_tls == "True", "\(mode)") }  // aiosmtpd records STARTTLS only
        if mode.hasPrefix("auth") { #expect(m.peer_auth.hasPrefix("True"), "\(mode): \(m.peer_auth)") }
        await clients.shutdown()
    }

    /// 451 on RCPT, 421 on MAIL, a connection dropped after the mail's data
    /// without a reply: each is retried, and in the end there is one mail and a
    /// success REPORT.
    @Test(arguments: ["tempfail", "busy", "dropdata", "tempfail+pipelining", "busy+pipelining", "dropdata+pipelining"])
    func transientFailuresEndInOneMail(_ mode: String) async throws {
        let sink = try await SMTPSinkProcess(mode: mode)
        defer { sink.stop() }
        let gw = try await GatewayProcess(extra: smtpConfig(sink, routes: "\"sip:mail@gw.example\" = [\"mailto:bob@example.org\"]"))
        defer { gw.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()
        #expect(try await alice.send("after a \(mode)", to: "sip:mail@gw.example", messageID: "\(mode)-1") == .accepted)
        #expect(await alice.wait(timeout: .seconds(15)) { $0.allReports.first?.headers.status?.code == 200 }, "\(mode)")
        #expect(sink.mails.count == 1, "\(mode)")
        await clients.shutdown()
    }

    /// With PIPELINING a one-recipient mail's DATA goes with its envelope (and
    /// the mail itself as soon as the 354 is read); several recipients wait for RCPT's replies.
    @Test(arguments: ["nobody", "nobody+pipelining"])
    func refusedRecipientsGetAFailureReport(_ mode: String) async throws {
        let sink = try await SMTPSinkProcess(mode: mode)
        defer { sink.stop() }
        let routes = """
            "sip:nobody@gw.example" = ["mailto:nobody@example.org"]
            "sip:some@gw.example" = ["mailto:nobody@example.org,bob@example.org"]
            """
        let gw = try await GatewayProcess(extra: smtpConfig(sink, routes: routes))
        defer { gw.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()
        #expect(try await alice.send("to nobody", to: "sip:nobody@gw.example", messageID: "nobody-1", successReport: false) == .accepted)
        #expect(try await alice.send("to some", to: "sip:some@gw.example", messageID: "some-1") == .accepted)
        #expect(await alice.wait(timeout: .seconds(15)) { $0.allReports.count >= 3 && $0.allReceived.count >= 2 })
        let reports = alice.allReports.map { "\($0.headers.messageID ?? "") \($0.headers.status?.code ?? 0)" }.sorted()
        #expect(reports == ["nobody-1 404", "some-1 200", "some-1 404"], "\(reports)")
        // The sender is told a stable phrase; the relay's words stay in the API (and the log).
        #expect(alice.allReports.first { $0.headers.messageID == "nobody-1" }?.headers.status?.reason == "recipient unknown")
        let (_, events, _) = try await alice.call("GET", "/v1/events?kind=report&limit=100")
        #expect(events.contains("5.1.1"), "the REPORT event keeps the relay's reply as its detail")
        let imdns = alice.allReceived.compactMap { try? IMDNNotification(xml: Array($0.text.utf8)) }
        #expect(imdns.map(\.status).sorted() == ["failed", "failed"])
        // The one mail went to the address that exists, and only there.
        #expect(sink.mails.count == 1)
        #expect(try await SMTPSinkProcess.parse(sink.mails[0]).peer_to == "bob@example.org")
        await clients.shutdown()
    }

    /// Servers that break the protocol: a clear error in the event, retries,
    /// then 408 when the age runs out. Never a crash or a hang.
    @Test(arguments: ["garbage", "silent", "overlong", "tls-unverified"])
    func misbehavingServers(_ mode: String) async throws {
        let certs = try await TestCertificates.make()
        let sink = try await SMTPSinkProcess(mode: mode == "tls-unverified" ? "starttls" : mode, certificates: certs)
        defer { sink.stop() }
        // tls-unverified: a certificate from a CA we were not told to trust.
        let gw = try await GatewayProcess(
            extra: smtpConfig(sink, security: mode == "tls-unverified" ? "starttls" : "none", extra: "reply_timeout = \"1s\"",
                              routes: "\"sip:mail@gw.example\" = [\"mailto:bob@example.org\"]")
                .replacingOccurrences(of: "reply_timeout = \"3s\"\n", with: ""),
            queue: "retry_schedule = [\"0s\", \"500ms\"]\nmax_attempts = 20\nmax_age = \"4s\"\njitter = false")
        defer { gw.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()
        #expect(try await alice.send("to a bad server", to: "sip:mail@gw.example", messageID: "bad-\(mode)") == .accepted)
        #expect(await alice.wait(timeout: .seconds(20)) { $0.allReports.first?.headers.status?.code == 408 }, "\(mode): \(gw.process.stderr.suffix(1500))")
        let (_, body, _) = try await alice.call("GET", "/v1/events?adapter=smtp&state=dead")
        let expected = ["garbage": "broke the protocol", "silent": "no reply to the greeting", "overlong": "reply line over the limit", "tls-unverified": "TLS failed"][mode] ?? "?"
        #expect(body.contains(expected), "\(mode): \(body)")
        #expect(gw.process.isRunning)
        #expect(sink.mails.isEmpty)
        await clients.shutdown()
    }
}

/// Postfix as the relay: a real MTA takes the mail and delivers or queues it.
@Suite(.serialized, .enabled(if: Peers.available("postfix") && (getuid() == 0 || Peers.required), "needs apt-get install postfix and root"))
struct PostfixTests {
    @Test func postfixAcceptsAndDeliversOrQueues() async throws {
        let postfix = try await PostfixInstance()
        defer { postfix.stop() }
        let extra = """
            [smtp]
            host = "127.0.0.1"
            port = \(postfix.port)
            security = "none"
            from = "msrpgw@gw.example"
            [routes]
            "sip:inbox@gw.example" = ["mailto:inbox@example.org"]
            "sip:far@gw.example" = ["mailto:someone@far.example"]
            """
        let gw = try await GatewayProcess(extra: extra)
        defer { gw.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()
        #expect(try await alice.send("through Postfix ✓", to: "sip:inbox@gw.example", messageID: "pf-1") == .accepted)
        #expect(try await alice.send("queued for later", to: "sip:far@gw.example", messageID: "pf-2") == .accepted)
        #expect(await alice.wait(timeout: .seconds(15)) { $0.allReports.count == 2 }, "\(postfix.log)")
        #expect(alice.allReports.allSatisfy { $0.headers.status?.code == 200 }, "Postfix took both")
        #expect(await until(.seconds(10)) { postfix.delivered.count == 1 }, "\(postfix.log)")
        let mail = try await SMTPSinkProcess.parse(try #require(postfix.delivered.first))
        #expect(mail.text?.trimmingCharacters(in: .newlines) == "through Postfix ✓")
        #expect(mail.from_name == "Alice")
        #expect(postfix.log.contains("status=deferred") || postfix.log.contains("deferred transport"), "the far one waits in Postfix's queue")
        await clients.shutdown()
    }
}
