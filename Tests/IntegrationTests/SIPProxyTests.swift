import Foundation
import MSRP
import MSRPTransport
import NIOConcurrencyHelpers
import Testing
import TestPeers

/// The gateway behind a real SIP proxy and registrar (Kamailio): it registers
/// with digest and keeps the binding fresh, and calls to its AOR reach it.
@Suite(.serialized, .enabled(if: Peers.available("kamailio") && Peers.available("sipp"), "needs apt-get install kamailio sip-tester"))
struct SIPProxyTests {
    func gateway(proxy: KamailioInstance, password: String = "secret", expires: Int = 3) async throws -> (GatewayProcess, Int) {
        let gw = try await GatewayProcess(extra: """
            [sip]
            port = 0
            domain = "gw.example"
            outbound_proxy = "127.0.0.1:\(proxy.port)"
            registrar = "sip:127.0.0.1:\(proxy.port)"
            aor = "sip:msrpgw@127.0.0.1"
            password = "\(password)"
            register_expires = \(expires)
            [routes]
            "sip:ops@gw.example" = ["sip:oncall@example.com"]
            "sip:msrpgw@gw.example" = ["sip:oncall@example.com"]
            """)
        return (gw, try #require(gw.ports.sip))
    }

    @Test(arguments: ["MD5", "SHA-256"])
    func registersRefreshesAndReceivesCallsThroughTheProxy(_ algorithm: String) async throws {
        let proxy = try await KamailioInstance(algorithm: algorithm)
        defer { proxy.stop() }
        let (gw, _) = try await gateway(proxy: proxy)
        defer { gw.stop() }
        // Granted 3 s, refreshed half-way: the third registration is the second refresh,
        // and by then the first binding would have expired without them.
        try await gw.process.waitFor("refresh=2", in: \.stderr, timeout: .seconds(15))
        #expect(gw.process.stderr.contains("SIP registered"))
        #expect(proxy.log.contains("REGISTER from sip:msrpgw@127.0.0.1"), "\(proxy.log.suffix(2000))")
        // A call to the AOR at the proxy: Kamailio looks the binding up and relays to us.
        let sipp = try Peers.require("sipp", package: "sip-tester")
        let scenario = try SIPPScenario.write(SIPPScenario.call(path: "msrp://127.0.0.1:9/viaproxy1;tcp", pause: 200))
        let call = try ChildProcess(sipp, [
            "-sf", scenario, "127.0.0.1:\(proxy.port)", "-s", "msrpgw", "-i", "127.0.0.1",
            "-m", "1", "-nostdin", "-timeout", "20", "-timeout_error",
        ], name: "sipp")
        #expect(try await call.wait(timeout: .seconds(25)) == 0, "\(call.stdout.suffix(2000))\n\(proxy.log.suffix(2000))")
        #expect(gw.process.stderr.contains("call answered"))
        // Our 200 carries the proxy's Record-Route back (the caller's dialog keeps the proxy in its path).
        #expect(proxy.log.contains("200 to INVITE with Record-Route <sip:127.0.0.1:\(proxy.port);lr"), "\(proxy.log.suffix(2000))")
        // Stopping unregisters: the proxy then answers 404 for the AOR.
        await gw.stop()
        #expect(gw.process.stderr.contains("SIP unregistered"))
        let probe = try UDPProbe()
        let after = await probe.exchange("""
            OPTIONS sip:msrpgw@127.0.0.1:\(proxy.port) SIP/2.0
            Via: SIP/2.0/UDP 127.0.0.1:\(probe.port);branch=z9hG4bKafter1
            From: <sip:probe@127.0.0.1>;tag=a
            To: <sip:msrpgw@127.0.0.1>
            Call-ID: after-unregister
            CSeq: 1 OPTIONS
            Max-Forwards: 70
            Content-Length: 0


            """, to: proxy.port)
        #expect(after?.0 == 404, "the binding is gone after the un-REGISTER: \(after?.1 ?? "no answer")")
    }

    @Test func aWrongPasswordIsReportedAndRetried() async throws {
        let proxy = try await KamailioInstance()
        defer { proxy.stop() }
        let (gw, _) = try await gateway(proxy: proxy, password: "not-the-secret")
        defer { gw.stop() }
        try await gw.process.waitFor("SIP registration failed", in: \.stderr, timeout: .seconds(10))
        #expect(gw.process.stderr.contains("401"), "\(gw.process.stderr.suffix(1500))")
        #expect(!gw.process.stderr.contains("SIP registered"))
    }

    /// sipp as the callee: answers the INVITE with an MSRP path to the test's
    /// listener, takes the ACK, then the BYE.
    static func callee(msrpPort: Int, session: String) -> String {
        SIPPScenario.header("callee") + """
              <recv request="INVITE" crlf="true" rrs="true"/>
              <send><![CDATA[
                SIP/2.0 200 OK
                [last_Via:]
                [last_From:]
                [last_To:];tag=[pid]SIPpTag01[call_number]
                [last_Call-ID:]
                [last_CSeq:]
                [last_Record-Route:]
                Contact: <sip:oncall@[local_ip]:[local_port]>
                Content-Type: application/sdp
                Content-Length: [len]

                v=0
                o=oncall 1 1 IN IP4 127.0.0.1
                s=-
                c=IN IP4 127.0.0.1
                t=0 0
                m=message \(msrpPort) TCP/MSRP *
                a=path:msrp://127.0.0.1:\(msrpPort)/\(session);tcp
                a=accept-types:message/cpim text/plain
                a=accept-wrapped-types:text/plain
                a=setup:passive
              ]]></send>
              <recv request="ACK"/>

            """ + SIPPScenario.answer("BYE") + "</scenario>\n"
    }

    /// What the callee's MSRP side receives.
    final class Inbox: MSRPSessionDelegate, @unchecked Sendable {
        let texts = NIOLockedValueBox<[String]>([])
        func session(_ session: MSRPSession, didReceive message: MSRPIncomingMessage) {
            if case .memory(let buffer) = message.message.body { texts.withLockedValue { $0.append(String(buffer: buffer)) } }
            message.acknowledgement.accept()
        }
    }

    /// An alert for a SIP user nobody has a session with: the gateway calls
    /// through the proxy (407, digest), sends the system message over the MSRP
    /// session the answer describes, and hangs up once nothing is left.
    /// With `wireCheck`, the gateway also registers, and tshark captures what it
    /// sends (REGISTER, INVITE with our SDP offer, ACK, BYE): no malformed warnings.
    @Test(arguments: [false, true])
    func anOutboundCallThroughTheProxyDeliversASystemMessage(wireCheck: Bool) async throws {
        if wireCheck, !Peers.available("tshark") { return }
        let sipp = try Peers.require("sipp", package: "sip-tester")
        let proxy = try await KamailioInstance()
        defer { proxy.stop() }
        let clients = try TestClients()
        let listener = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: clients.group)
        let msrpPort = try await listener.listen(host: "127.0.0.1", port: 0)
        let inbox = Inbox()
        _ = listener.createSession(id: "oncall1", setup: .passive, acceptTypes: [.textPlain, .messageCPIM], delegate: inbox)
        let uasPort = try freePort()
        let callee = try ChildProcess(sipp, [
            "-sf", try SIPPScenario.write(Self.callee(msrpPort: msrpPort, session: "oncall1")), "-i", "127.0.0.1", "-p", String(uasPort),
            "-m", "1", "-nostdin", "-timeout", "40", "-timeout_error",
        ], name: "sipp callee")
        defer { callee.stop() }
        let pcap = Scratch.path("sipout", suffix: ".pcap")
        // Everything the gateway sends goes through the proxy: its port is the filter.
        let capture = try wireCheck ? ChildProcess(try Peers.require("tshark", package: "tshark"), ["-i", "lo", "-f", "udp port \(proxy.port)", "-w", pcap], name: "tshark") : nil
        defer { capture?.stop() }
        try await capture?.waitFor("Capturing on", in: \.stderr)
        let gw = try await GatewayProcess(extra: """
            [sip]
            port = 0
            outbound_proxy = "127.0.0.1:\(proxy.port)"
            aor = "sip:msrpgw@127.0.0.1"
            password = "secret"
            hangup_after = "500ms"
            \(wireCheck ? "registrar = \"sip:127.0.0.1:\(proxy.port)\"" : "")
            [routes]
            "sip:oncall@gw.example" = ["sip:oncall@127.0.0.1:\(uasPort)"]
            """)
        defer { gw.stop() }
        let (status, _, _) = try await clients.client(gw).call(
            "POST", "/v1/messages", body: #"{"to": "sip:oncall@gw.example", "text": "disk full on db1", "system": true}"#)
        #expect(status == 202)
        #expect(await until(.seconds(20)) { inbox.texts.withLockedValue { $0 }.contains { $0.contains("disk full on db1") } },
                "no system message: \(gw.process.stderr.suffix(3000))\n\(proxy.log.suffix(2000))")
        // Nothing left for the peer: BYE, and the callee's scenario completes.
        #expect(try await callee.wait(timeout: .seconds(20)) == 0, "\(callee.stdout.suffix(1500))\n\(gw.process.stderr.suffix(2000))")
        try await gw.process.waitFor("outbound call ended", in: \.stderr, timeout: .seconds(10))
        #expect(proxy.log.contains("INVITE authenticated as msrpgw"), "the proxy's 407 was answered with credentials")
        let (_, events, _) = try await clients.client(gw).call("GET", "/v1/events?adapter=msrp")
        #expect(events.contains("\"state\":\"delivered\""), "\(events)")
        await listener.shutdown()
        await clients.shutdown()
        if let capture {
            let tshark = try Peers.require("tshark", package: "tshark")
            try await Task.sleep(for: .milliseconds(300))
            capture.signal(SIGINT)
            _ = try await capture.wait()
            let methods = try await runTshark(tshark, ["-r", pcap, "-Y", "sip.Method", "-T", "fields", "-e", "sip.Method"])
            for m in ["REGISTER", "INVITE", "ACK", "BYE"] { #expect(methods.contains(m), "\(m) not seen: \(methods)") }
            let offer = try await runTshark(tshark, ["-r", pcap, "-Y", "sip.Method == \"INVITE\" && sdp", "-T", "fields", "-e", "sdp.media_attr"])
            #expect(offer.contains("path:msrp://") && offer.contains("setup:active"), "our SDP offer decodes: \(offer)")
            let auth = try await runTshark(tshark, ["-r", pcap, "-Y", "sip.Proxy-Authorization || sip.Authorization", "-T", "fields", "-e", "sip.Method"])
            #expect(auth.contains("INVITE") && auth.contains("REGISTER"), "credentials sent: \(auth)")
            let malformed = try await runTshark(tshark, ["-r", pcap, "-Y", "_ws.malformed || ((sip || sdp) && _ws.expert.severity >= warning)"])
            #expect(malformed.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "tshark flags: \(malformed)")
        }
    }

    /// A busy callee: the call fails, the alert keeps waiting (not an attempt),
    /// and the peer is not called again at once.
    @Test func aBusyCalleeLeavesTheMessageWaiting() async throws {
        let sipp = try Peers.require("sipp", package: "sip-tester")
        let proxy = try await KamailioInstance()
        defer { proxy.stop() }
        let busy = SIPPScenario.header("busy") + SIPPScenario.answer("INVITE", code: "486 Busy Here", tag: true)
            + "  <recv request=\"ACK\"/>\n</scenario>\n"
        let uasPort = try freePort()
        let callee = try ChildProcess(sipp, [
            "-sf", try SIPPScenario.write(busy), "-i", "127.0.0.1", "-p", String(uasPort), "-m", "1", "-nostdin", "-timeout", "30", "-timeout_error",
        ], name: "sipp busy callee")
        defer { callee.stop() }
        let gw = try await GatewayProcess(extra: """
            [sip]
            port = 0
            outbound_proxy = "127.0.0.1:\(proxy.port)"
            aor = "sip:msrpgw@127.0.0.1"
            password = "secret"
            [routes]
            "sip:oncall@gw.example" = ["sip:oncall@127.0.0.1:\(uasPort)"]
            """)
        defer { gw.stop() }
        let clients = try TestClients()
        let (status, _, _) = try await clients.client(gw).call(
            "POST", "/v1/messages", body: #"{"to": "sip:oncall@gw.example", "text": "are you there?", "system": true}"#)
        #expect(status == 202)
        // The 486 was ACKed (the callee's scenario needs the ACK to finish).
        #expect(try await callee.wait(timeout: .seconds(20)) == 0, "\(callee.stdout.suffix(1500))")
        try await gw.process.waitFor("outbound call failed", in: \.stderr, timeout: .seconds(10))
        #expect(gw.process.stderr.contains("486 Busy Here"))
        let (_, events, _) = try await clients.client(gw).call("GET", "/v1/events?adapter=msrp")
        #expect(events.contains("\"state\":\"queued\""), "it waits for the next call: \(events)")
        #expect(events.contains("\"attempts\":0"), "a failed call is not a delivery attempt: \(events)")
        await clients.shutdown()
    }
}
