import Foundation
import Testing
import TestPeers

/// Page mode (RFC 3428): a SIP MESSAGE from sipp is stored (202), delivered as
/// a signed webhook, and the IMDN it asked for comes back as a MESSAGE to the
/// sender (a second sipp, as UAS).
@Suite(.serialized, .enabled(if: Peers.available("sipp") && Peers.available("python3") && Peers.pythonModuleAvailable("standardwebhooks"),
                             "needs apt-get install sip-tester and pip install standardwebhooks"))
struct SIPPageModeTests {
    /// sipp sends one MESSAGE (CPIM asking for delivery notifications) and expects 202.
    static func message(to route: String, sender: String, imdnID: String, text: String) -> String {
        SIPPScenario.header("page mode") + """
              <send retrans="500"><![CDATA[
                MESSAGE sip:\(route)@[remote_ip]:[remote_port] SIP/2.0
                Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
                From: <\(sender)>;tag=[pid]SIPpTag[call_number]
                To: <sip:\(route)@[remote_ip]:[remote_port]>
                Call-ID: [call_id]
                CSeq: 1 MESSAGE
                Max-Forwards: 70
                Content-Type: message/cpim
                Content-Length: [len]

                From: <\(sender)>
                To: <sip:\(route)@gw.example>
                DateTime: 2026-11-24T10:00:00Z
                NS: imdn <urn:ietf:params:imdn>
                imdn.Message-ID: \(imdnID)
                imdn.Disposition-Notification: positive-delivery, negative-delivery

                Content-Type: text/plain; charset=utf-8

                \(text)
              ]]></send>
              <recv response="202"/>
            </scenario>

            """
    }

    /// sipp as the sender's UA: receives one MESSAGE (the IMDN) and answers 200.
    static let imdnSink = SIPPScenario.header("imdn sink") + SIPPScenario.answer("MESSAGE", tag: true) + "</scenario>\n"

    /// SIP on a free port in domain gw.example; sip:ok@ and sip:bad@ routed to
    /// the sink's /ok (204) and /bad (400).
    static func sipAndRoutes(to sink: WebhookSinkProcess) -> String {
        """
        [sip]
        port = 0
        domain = "gw.example"
        [routes]
        "sip:ok@gw.example" = ["webhook:ok"]
        "sip:bad@gw.example" = ["webhook:bad"]
        [webhooks.ok]
        url = "\(sink.url("/ok"))"
        secrets = ["\(WebhookSinkProcess.secret)"]
        [webhooks.bad]
        url = "\(sink.url("/bad"))"
        secrets = ["\(WebhookSinkProcess.secret)"]
        """
    }

    @Test(arguments: [("ok", "delivered"), ("bad", "failed")])
    func messageIsStoredDeliveredAndNotified(_ route: String, _ disposition: String) async throws {
        let sipp = try Peers.require("sipp", package: "sip-tester")
        let sink = try await WebhookSinkProcess()
        defer { sink.stop() }
        let gw = try await GatewayProcess(extra: Self.sipAndRoutes(to: sink))
        defer { gw.stop() }
        let sipPort = try #require(gw.ports.sip)
        let uasPort = try freePort()
        let trace = Scratch.path("imdn", suffix: ".log")
        let uas = try ChildProcess(sipp, [
            "-sf", try SIPPScenario.write(Self.imdnSink), "-i", "127.0.0.1", "-p", String(uasPort), "-m", "1", "-nostdin",
            "-timeout", "30", "-timeout_error", "-trace_msg", "-message_file", trace,
        ], name: "sipp imdn sink")
        defer { uas.stop() }
        let sender = "sip:alice@127.0.0.1:\(uasPort)"
        let text = "page mode → \(route) ✓"
        let uac = try ChildProcess(sipp, [
            "-sf", try SIPPScenario.write(Self.message(to: route, sender: sender, imdnID: "pm-\(route)", text: text)),
            "127.0.0.1:\(sipPort)", "-i", "127.0.0.1", "-m", "1", "-nostdin", "-timeout", "20", "-timeout_error",
        ], name: "sipp message")
        #expect(try await uac.wait(timeout: .seconds(25)) == 0, "202 expected: \(uac.stdout.suffix(1500))\n\(gw.process.stderr.suffix(1500))")
        // The IMDN comes back to the sender's URI.
        #expect(try await uas.wait(timeout: .seconds(25)) == 0, "no IMDN: \(uas.stdout.suffix(1500))\n\(gw.process.stderr.suffix(2000))")
        let received = (try? String(contentsOfFile: trace, encoding: .utf8)) ?? ""
        #expect(received.contains("Content-Type: message/cpim"), "\(received)")
        #expect(received.contains("<message-id>pm-\(route)</message-id>"), "\(received)")
        #expect(received.contains("<\(disposition)/>"), "\(received)")
        let webhooks = sink.records("/\(route)")
        #expect(webhooks.contains { $0.payload?.data.text?.trimmingCharacters(in: .whitespacesAndNewlines) == text && $0.valid },
                "the message reached the webhook: \(webhooks.map { $0.payload?.data.text ?? "-" })")
    }

    /// A retransmitted MESSAGE (UDP) is answered again and stored once.
    /// The IMDN owed to a sender nothing can reach (a host name, no outbound
    /// proxy to resolve it) fails at once, not after the maximum age of retries.
    @Test func anIMDNForAnUnreachableSenderFailsAtOnce() async throws {
        let sink = try await WebhookSinkProcess()
        defer { sink.stop() }
        let gw = try await GatewayProcess(extra: Self.sipAndRoutes(to: sink), queue: "retry_schedule = [\"0s\", \"1h\"]\nmax_attempts = 10\nmax_age = \"1d\"\njitter = false")
        defer { gw.stop() }
        let sipPort = try #require(gw.ports.sip)
        let probe = try UDPProbe()
        let cpim = [
            "From: <sip:alice@example.com>", "To: <sip:ok@gw.example>", "NS: imdn <urn:ietf:params:imdn>", "imdn.Message-ID: pm-unreachable",
            "imdn.Disposition-Notification: positive-delivery", "", "Content-Type: text/plain", "", "hello",
        ].joined(separator: "\r\n")
        let message = [
            "MESSAGE sip:ok@127.0.0.1:\(sipPort) SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.1:\(probe.port);branch=z9hG4bK-unreach-1",
            "From: <sip:alice@example.com>;tag=u1", "To: <sip:ok@gw.example>", "Call-ID: unreach-\(UUID().uuidString)", "CSeq: 1 MESSAGE",
            "Max-Forwards: 70", "Content-Type: message/cpim", "Content-Length: \(cpim.utf8.count)", "", cpim,
        ].joined(separator: "\r\n")
        #expect(await probe.exchange(message, to: sipPort, raw: true)?.0 == 202)
        let clients = try TestClients()
        let api = clients.client(gw)
        struct E: Decodable { var state: String; var attempts: Int; var last_error: String? }
        var imdns: [E] = []
        let ended = await until(.seconds(15)) {
            let body = (try? await api.call("GET", "/v1/events?kind=imdn"))?.1 ?? "[]"
            imdns = (try? JSONDecoder().decode([E].self, from: Data(body.utf8))) ?? []
            return imdns.count == 1 && imdns[0].state != "queued" && imdns[0].state != "leased"
        }
        #expect(ended, "the IMDN is still waiting: \(imdns.map { ($0.state, $0.attempts, $0.last_error ?? "") })")
        #expect(imdns.first?.attempts == 1)
        await clients.shutdown()
    }

    @Test func retransmissionIsStoredOnce() async throws {
        let gw = try await GatewayProcess(extra: """
            [sip]
            port = 0
            domain = "gw.example"
            [routes]
            "sip:ops@gw.example" = ["sip:oncall@example.com"]
            """)
        defer { gw.stop() }
        let sipPort = try #require(gw.ports.sip)
        let probe = try UDPProbe()
        let message = """
            MESSAGE sip:ops@127.0.0.1:\(sipPort) SIP/2.0
            Via: SIP/2.0/UDP 127.0.0.1:\(probe.port);branch=z9hG4bK-retrans-1
            From: <sip:alice@example.com>;tag=r1
            To: <sip:ops@gw.example>
            Call-ID: retrans-\(UUID().uuidString)
            CSeq: 7 MESSAGE
            Max-Forwards: 70
            Content-Type: text/plain
            Content-Length: 12

            stored once!
            """
        #expect(await probe.exchange(message, to: sipPort)?.0 == 202)
        #expect(await probe.exchange(message, to: sipPort)?.0 == 202)
        let clients = try TestClients()
        let (_, events, _) = try await clients.client(gw).call("GET", "/v1/events?adapter=msrp")
        #expect(events.components(separatedBy: "\"target\":\"sip:oncall@example.com\"").count - 1 == 1, "\(events)")
        await clients.shutdown()
    }
}
