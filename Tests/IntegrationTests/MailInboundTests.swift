import CPIM
import Foundation
import MSRP
import MSRPGatewayClient
import SMTPWire
import Testing
import TestPeers

/// Email both ways through a real MTA: Postfix in front (it relays the reply
/// domain to `msrpgw serve`'s SMTP listener, as a site's MX would, and bounces
/// mail for unknown users itself), replies written by Python's `email` package
/// the way mail clients write them, an MSRP client on the other side.
@Suite(.serialized, .enabled(if: Peers.available("postfix") && (getuid() == 0 || Peers.required), "needs apt-get install postfix and root"))
struct MailInboundTests {
    static let secret = "reply tokens of the integration tests"

    /// Postfix, the gateway and Alice (an MSRP user) who mails Bob (bob@example.org).
    struct Site {
        let postfix: PostfixInstance
        let gateway: GatewayProcess
        let clients: TestClients
        let alice: GatewayClient
        let smtpPort: Int

        func stop() async {
            await clients.shutdown()
            await gateway.stop()
            await postfix.stop()
        }
    }

    /// The gateway's configuration: mail through Postfix, replies to `smtpPort`.
    static func configuration(postfixPort: Int, smtpPort: Int, secrets: [String] = [secret]) -> String {
        """
        [smtp]
        host = "127.0.0.1"
        port = \(postfixPort)
        security = "none"
        from = "msrpgw@gw.example"
        [smtp.inbound]
        port = \(smtpPort)
        domain = "reply.test"
        secrets = [\(secrets.map { "\"\($0)\"" }.joined(separator: ", "))]
        [routes]
        "sip:mail@gw.example" = ["mailto:bob@example.org"]
        "sip:nobody@gw.example" = ["mailto:nobody@example.org"]
        """
    }

    static func site() async throws -> Site {
        let smtpPort = try freePort()  // reserved for the gateway's listener: Postfix relays there
        let postfix = try await PostfixInstance(relay: ("reply.test", smtpPort), mailboxes: ["bob"])
        let gateway = try await GatewayProcess(extra: configuration(postfixPort: postfix.port, smtpPort: smtpPort))
        let clients = try TestClients()
        let alice = clients.client(gateway)
        return Site(postfix: postfix, gateway: gateway, clients: clients, alice: alice, smtpPort: smtpPort)
    }

    /// Alice mails Bob through the gateway and Postfix; returns Bob's copy.
    static func mailBob(_ site: Site, _ text: String, messageID: String) async throws -> String {
        let before = Set(site.postfix.delivered)
        #expect(try await site.alice.send(text, to: "sip:mail@gw.example", messageID: messageID, subject: "Lunch") == .accepted)
        #expect(await until(.seconds(20)) { site.postfix.delivered.count > before.count }, "\(site.postfix.log.suffix(2000))")
        // The new file (maildir names sort by time only to the second).
        return try #require(site.postfix.delivered.first { !before.contains($0) })
    }

    static let replyScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Helpers/mail_reply.py").path
    static let hostileScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Helpers/smtp_hostile.py").path

    struct SendResult: Decodable {
        var refused: [String: [Codable2]]?
        var data: [Codable2]?
        var code: Int? { data?.first?.int }
        var refusal: String? { refused?.values.first.map { "\($0.first?.int ?? 0) \($0.last?.text ?? "")" } }
    }

    /// A JSON value that is a number or a string.
    enum Codable2: Decodable {
        case int(Int), text(String)
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int.self) { self = .int(i) } else { self = .text(try c.decode(String.self)) }
        }
        var int: Int? { if case .int(let i) = self { i } else { nil } }
        var text: String? { if case .text(let t) = self { t } else { nil } }
    }

    /// Bob's reply to `original`, written in `style`, sent to `port` (Postfix, or the gateway directly).
    static func reply(_ style: String, to original: String, port: Int, options: [String] = []) async throws -> SendResult {
        let p = try ChildProcess(SMTPSinkProcess.python, [replyScript, style, "127.0.0.1", String(port), original] + options, name: "mail_reply \(style)")
        _ = try await p.wait(timeout: .seconds(60))
        guard let line = p.stdout.split(separator: "\n").last else { throw ChildProcess.ChildFailed(description: "no result: \(p.stderr)") }
        return try JSONDecoder().decode(SendResult.self, from: Data(line.utf8))
    }

    /// What a client received but the IMDNs about its own messages.
    static func messages(_ client: GatewayClient) -> [GatewayClient.Received] {
        client.allReceived.filter { !$0.contentType.hasPrefix("message/imdn+xml") }
    }

    static func replyAddress(_ mailPath: String) async throws -> String {
        try #require(try await SMTPSinkProcess.parse(mailPath).reply_to)
    }

    // MARK: - Replies

    @Test func repliesAsClientsWriteThemArriveAsTheirNewTextOnly() async throws {
        let site = try await Self.site()
        defer { Task { await site.stop() } }
        site.alice.moreWrappedTypes = ["image/png"]
        try await site.alice.open()
        let mail = try await Self.mailBob(site, "Lunch at noon?\nAt the usual place.", messageID: "lunch-1")
        let parsed = try await SMTPSinkProcess.parse(mail)
        #expect(parsed.reply_to?.hasPrefix("reply+") == true && parsed.reply_to?.hasSuffix("@reply.test") == true, "\(parsed.reply_to ?? "-")")
        #expect(parsed.auto_submitted == nil, "a person wrote it")
        let expected: [String: String] = [
            "thunderbird": "Sounds good, see you there.",
            "gmail": "Yes, noon works!",
            "html-only": "I'll be there & bring cake.",
            "outlook": "Agreed \u{2013} let\u{2019}s do that.",
            "latin1": "Très bien, à midi.",
            "base64": "Ja, gerne! \u{1F600} Grüße",
            "attachment": "Here is the picture.",
        ]
        for style in expected.keys.sorted() {
            let sent = try await Self.reply(style, to: mail, port: site.postfix.port)
            #expect(sent.code == 250, "\(style): Postfix took it")
        }
        // Seven texts and the picture, each once; Postfix delivers them in its own order.
        #expect(await site.alice.wait(timeout: .seconds(30)) { Self.messages($0).count >= 8 }, "\(site.gateway.process.stderr.suffix(3000))")
        try await Task.sleep(for: .milliseconds(300))
        let received = Self.messages(site.alice)
        #expect(received.count == 8)
        let texts = Set(received.filter { $0.contentType.hasPrefix("text/plain") }.map(\.text))
        #expect(texts == Set(expected.values), "\(texts.symmetricDifference(Set(expected.values)))")
        let picture = try #require(received.first { $0.contentType == "image/png" })
        #expect(picture.text.utf8.count > 8)
        let from = try #require(received.first?.cpim?.from)
        #expect(from.uri == "mailto:bob@example.org" && from.displayName == "Bob Example")
        #expect(received.first?.cpim?.subjects.first?.text == "Re: Lunch")
        #expect(received.allSatisfy { $0.cpim?.dateTime != nil })
        // An alert (a system message) is auto-generated, and there is nobody to answer.
        let before = site.postfix.delivered.count
        let (status, _, _) = try await site.alice.call("POST", "/v1/messages", body: #"{"to": "sip:mail@gw.example", "text": "disk full", "system": true}"#)
        #expect(status == 202)
        #expect(await until(.seconds(20)) { site.postfix.delivered.count > before })
        let alert = try #require(try await SMTPSinkProcess.parse(site.postfix.delivered).first { $0.text?.contains("disk full") == true })
        #expect(alert.auto_submitted == "auto-generated")
        #expect(alert.reply_to == nil)
    }

    @Test func forgedExpiredStrayAutomaticAndLoopingMailIsRefusedOrDropped() async throws {
        let site = try await Self.site()
        defer { Task { await site.stop() } }
        try await site.alice.open()
        let mail = try await Self.mailBob(site, "Are you there?", messageID: "there-1")
        let address = try await Self.replyAddress(mail)
        let local = String(address.split(separator: "@")[0])
        // Refused at RCPT, each with its code (sent to the gateway's listener directly).
        var forged = Array(local)
        forged[10] = forged[10] == "a" ? "b" : "a"
        let keys = try MailTokenKeys(secrets: [Self.secret])
        let token = try MailToken.verify(localPart: local, keys: keys, now: Date())
        let expired = MailToken(kind: .reply, event: token.event, expires: Date().addingTimeInterval(-60)).localPart(signedWith: keys)
        let otherKey = MailToken(kind: .reply, event: token.event, expires: Date().addingTimeInterval(600))
            .localPart(signedWith: try MailTokenKeys(secrets: ["somebody else's secret, long enough"]))
        let bounceForReply = "bounce+" + local.dropFirst("reply+".count)
        let cases: [(String, String)] = [
            (String(forged) + "@reply.test", "550 5.1.1 No such user"),
            (expired + "@reply.test", "550 5.1.1 Reply address expired"),
            (otherKey + "@reply.test", "550 5.1.1 No such user"),
            (bounceForReply + "@reply.test", "550 5.1.1 No such user"),
            ("postmaster@reply.test", "550 5.1.1 No such user"),
            (local + "@elsewhere.example", "550 5.7.1 Relay access denied"),
        ]
        for (to, refusal) in cases {
            let r = try await Self.reply("plain", to: mail, port: site.smtpPort, options: ["--to", to])
            #expect(r.refusal == refusal, "\(to)")
        }
        // Taken (so that nobody bounces them back) and dropped: an auto-reply, bulk mail, our own mail come back.
        for style in ["auto-reply", "bulk", "loop"] {
            #expect(try await Self.reply(style, to: mail, port: site.smtpPort).code == 250, "\(style)")
        }
        // A person's reply after them is the one that arrives.
        #expect(try await Self.reply("plain", to: mail, port: site.smtpPort).code == 250)
        #expect(await site.alice.wait(timeout: .seconds(15)) { Self.messages($0).count >= 1 })
        try await Task.sleep(for: .milliseconds(500))
        #expect(Self.messages(site.alice).map(\.text) == ["Sounds good, see you there."])
        let log = site.gateway.process.stderr
        for reason in ["auto-submitted", "precedence", "our-own"] {
            #expect(log.contains("reason=\(reason)") && log.contains("inbound mail not relayed"), "\(reason) logged")
        }
        for reason in ["token signature does not verify", "token expired", "relay attempt"] {
            #expect(log.contains(reason), "\(reason) logged")
        }
        let (_, metrics, _) = try await site.alice.call("GET", "/metrics")
        let mailIn = metrics.split(separator: "\n").filter { $0.hasPrefix("msrpgw_mail_in_total") }
        #expect(mailIn.contains(#"msrpgw_mail_in_total{result="dropped",reason="auto-submitted"} 1"#), "\(mailIn)")
        #expect(mailIn.contains(#"msrpgw_mail_in_total{result="reply"} 1"#), "\(mailIn)")
    }

    /// Rotation by SIGHUP: the new secret first signs while the old one still
    /// verifies; once the old one is dropped, its addresses are refused.
    @Test func tokenSecretsRotateOnReload() async throws {
        let site = try await Self.site()
        defer { Task { await site.stop() } }
        try await site.alice.open()
        let old = try await Self.mailBob(site, "Before the rotation", messageID: "rot-1")
        let newSecret = "the next secret of the integration tests"
        func reload(_ secrets: [String]) async throws {
            let before = site.gateway.process.stderr.components(separatedBy: "configuration reloaded").count
            try site.gateway.rewrite(extra: Self.configuration(postfixPort: site.postfix.port, smtpPort: site.smtpPort, secrets: secrets))
            site.gateway.process.signal(SIGHUP)
            #expect(await until(.seconds(10)) { site.gateway.process.stderr.components(separatedBy: "configuration reloaded").count > before })
        }
        try await reload([newSecret, Self.secret])
        #expect(try await Self.reply("plain", to: old, port: site.smtpPort).code == 250, "the old secret still verifies")
        let new = try await Self.mailBob(site, "After the rotation", messageID: "rot-2")
        let local = String(try await Self.replyAddress(new).split(separator: "@")[0])
        #expect(throws: MailToken.Refusal.forged) { try MailToken.verify(localPart: local, keys: try MailTokenKeys(secrets: [Self.secret]), now: Date()) }
        #expect((try? MailToken.verify(localPart: local, keys: try MailTokenKeys(secrets: [newSecret]), now: Date())) != nil, "signed with the new one")
        try await reload([newSecret])
        #expect(try await Self.reply("plain", to: old, port: site.smtpPort).refusal == "550 5.1.1 No such user")
        #expect(try await Self.reply("plain", to: new, port: site.smtpPort).code == 250)
        #expect(await site.alice.wait(timeout: .seconds(15)) { Self.messages($0).count >= 2 })
    }

    // MARK: - Bounces

    @Test func aBounceFromPostfixComesBackAsAFailureReportAndIMDN() async throws {
        let site = try await Self.site()
        defer { Task { await site.stop() } }
        try await site.alice.open()
        #expect(try await site.alice.send("to nobody", to: "sip:nobody@gw.example", messageID: "nobody-1") == .accepted)
        // First the truth of the moment: Postfix took it (a 200 REPORT, IMDN delivered)...
        #expect(await site.alice.wait(timeout: .seconds(20)) { $0.allReports.contains { $0.headers.status?.code == 200 } })
        // ...then the truth later: Postfix's own bounce, through the VERP address, a 404 REPORT and IMDN failed.
        #expect(await site.alice.wait(timeout: .seconds(30)) { $0.allReports.contains { $0.headers.status?.code == 404 } },
                "\(site.postfix.log.suffix(3000))\n\(site.gateway.process.stderr.suffix(3000))")
        #expect(await site.alice.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.contentType.hasPrefix("message/imdn+xml") && $0.text.contains("<failed/>") } })
        #expect(site.postfix.log.contains("bounce+"), "Postfix sent its DSN to the VERP address")
        let (status, body, _) = try await site.alice.call("GET", "/v1/events?state=bounced")
        #expect(status == 200)
        #expect(body.contains("5.1.1") && body.contains("nobody@example.org"), "\(body)")
        let (_, metrics, _) = try await site.alice.call("GET", "/metrics")
        #expect(metrics.contains(#"msrpgw_mail_in_total{result="bounce"} 1"#))
        #expect(metrics.contains(#"msrpgw_deliveries_total{adapter="smtp",outcome="bounced"} 1"#))
    }

    // MARK: - Durability

    @Test func aReplyAcknowledgedIsDeliveredOnceAfterSIGKILL() async throws {
        let site = try await Self.site()
        defer { Task { await site.stop() } }
        try await site.alice.open()
        let mail = try await Self.mailBob(site, "Still there?", messageID: "kill-1")
        // Alice is gone: the reply must wait in the queue.
        let (closed, _, _) = try await site.alice.call("DELETE", "/v1/sessions/\(try #require(site.alice.sessionID))")
        #expect(closed == 204 || closed == 200)
        #expect(try await Self.reply("plain", to: mail, port: site.smtpPort, options: ["--message-id", "<kill-test@example.org>"]).code == 250)
        site.gateway.process.signal(SIGKILL)
        try await site.gateway.restart()
        // The same mail again (its sender never saw our 250, say): the same event.
        #expect(try await Self.reply("plain", to: mail, port: site.smtpPort, options: ["--message-id", "<kill-test@example.org>"]).code == 250)
        let alice = site.clients.client(site.gateway)
        try await alice.open()
        #expect(await alice.wait(timeout: .seconds(20)) { Self.messages($0).count >= 1 })
        try await Task.sleep(for: .seconds(1))
        #expect(Self.messages(alice).map(\.text) == ["Sounds good, see you there."])
    }
}

/// The SMTP listener against hostile clients: each gets a clear reply or a
/// clean close, the daemon's memory stays bounded, and it serves the next one.
@Suite(.serialized)
struct SMTPListenerHostileInputTests {
    struct Outcome: Decodable {
        var replies: [String]
        var closed: Bool
        var sent: Int
        var rss_growth_kb: Int?
        var tls_ehlo_offers_starttls: Bool?
    }

    static func play(_ c: String, port: Int, pid: pid_t? = nil) async throws -> Outcome {
        var args = [MailInboundTests.hostileScript, c, "127.0.0.1", String(port), "reply+x@reply.test"]
        if let pid { args.append(String(pid)) }
        let p = try ChildProcess(SMTPSinkProcess.python, args, name: "smtp_hostile \(c)")
        _ = try await p.wait(timeout: .seconds(90))
        guard let line = p.stdout.split(separator: "\n").last else { throw ChildProcess.ChildFailed(description: "\(c): no result: \(p.stderr)") }
        return try JSONDecoder().decode(Outcome.self, from: Data(line.utf8))
    }

    @Test func eachHostileClientGetsAClearAnswer() async throws {
        let certificates = try await TestCertificates.make()
        let smtpPort = try freePort()
        let gw = try await GatewayProcess(extra: """
            [smtp]
            host = "127.0.0.1"
            port = 9
            security = "none"
            from = "msrpgw@gw.example"
            [smtp.inbound]
            port = \(smtpPort)
            domain = "reply.test"
            secrets = ["\(MailInboundTests.secret)"]
            command_timeout = "2s"
            tls_certificate = "\(certificates.certPath)"
            tls_key = "\(certificates.keyPath)"
            """)
        defer { gw.stop() }
        // (case, replies after the greeting, closed by the server)
        let table: [(String, [String], Bool)] = [
            ("bare-lf", ["521 5.5.2"], true),
            ("nul", ["250", "500 5.5.2"], false),
            ("long-line", ["250", "500 5.5.2", "250 2.0.0"], false),
            ("injection", ["250", "250 2.1.0", "500 5.5.2", "555 5.5.4", "503 5.5.1", "501 5.5.4"], false),
            ("slow", ["421 4.4.2"], true),
            ("dribble", ["421 4.4.2"], true),
            ("tls-garbage", ["250", "220 2.0.0"], true),
            ("oversize", ["250", "552 5.3.4"], false),
            ("no-ehlo", ["503 5.5.1", "503 5.5.1", "503 5.5.1"], false),
        ]
        for (c, replies, closed) in table {
            let outcome = try await Self.play(c, port: smtpPort)
            #expect(outcome.replies == ["220"] + replies, "\(c)")
            #expect(outcome.closed == closed, "\(c): closed")
        }
        // STARTTLS: what was pipelined after it is dropped; inside TLS EHLO starts over and STARTTLS is not offered again.
        let tls = try await Self.play("starttls", port: smtpPort)
        #expect(tls.replies == ["220", "250", "220 2.0.0", "250", "250 2.1.0", "550 5.1.1", "221 2.0.0"], "\(tls.replies)")
        #expect(tls.tls_ehlo_offers_starttls == false)
        // Connections opened and closed: after a first round (the allocator's own growth),
        // 1,000 more leave memory where it was (a leaked handler and its buffer are ~5 KiB each).
        _ = try await Self.play("churn-500", port: smtpPort, pid: gw.process.pid)
        let churn = try await Self.play("churn-1000", port: smtpPort, pid: gw.process.pid)
        #expect(churn.replies == ["220"])
        #expect((churn.rss_growth_kb ?? .max) < 3 << 10, "RSS grew \(churn.rss_growth_kb ?? -1) KiB over 1,000 more connections")
        // 100 bad commands: 20 answered, then 421 and the end.
        let errors = try await Self.play("errors", port: smtpPort)
        #expect(errors.replies.count == 22 && errors.replies.last == "421 4.7.0" && errors.closed)
        // 10,000 recipients pipelined: bad tokens refused, the connection ended after the error limit.
        let rcpts = try await Self.play("many-rcpt", port: smtpPort)
        #expect(rcpts.replies.prefix(3) == ["220", "250", "250 2.1.0"] && rcpts.replies.last == "421 4.7.0" && rcpts.closed, "\(rcpts.replies.suffix(3))")
        // A client pipelining a million commands and reading nothing: the server stops reading.
        let flood = try await Self.play("pipelining-flood", port: smtpPort, pid: gw.process.pid)
        #expect(flood.replies == ["220", "250 2.0.0", "250 2.0.0", "250 2.0.0"])
        #expect((flood.rss_growth_kb ?? .max) < 32 << 10, "RSS grew \(flood.rss_growth_kb ?? -1) KiB while flooded with \(flood.sent) bytes")
        // Still serving, and it said why it closed connections.
        #expect(gw.process.isRunning)
        #expect(try await Self.play("oversize", port: smtpPort).replies == ["220", "250", "552 5.3.4"])
        let log = gw.process.stderr
        #expect(log.contains("Bare LF received") && log.contains("Too many errors") && log.contains("SMTP connection timed out"))
    }
}
