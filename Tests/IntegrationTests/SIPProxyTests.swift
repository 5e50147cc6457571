import Foundation
import Testing

/// The gateway behind a real SIP proxy and registrar (Kamailio): it registers
/// with digest and keeps the binding fresh, and calls to its AOR reach it.
@Suite(.serialized, .enabled(if: Peers.available("kamailio") && Peers.available("sipp"), "needs apt-get install kamailio sip-tester"))
struct SIPProxyTests {
    func gateway(proxy: KamailioInstance, password: String = "secret", expires: Int = 3) async throws -> (GatewayProcess, Int) {
        let sipPort = try freePort()
        let gw = try await GatewayProcess(extra: """
            [sip]
            port = \(sipPort)
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
        return (gw, sipPort)
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
            "-sf", scenario, "127.0.0.1:\(proxy.port)", "-s", "msrpgw", "-i", "127.0.0.1", "-p", String(try freePort()),
            "-m", "1", "-nostdin", "-timeout", "20", "-timeout_error",
        ], name: "sipp")
        #expect(try await call.wait(timeout: .seconds(25)) == 0, "\(call.stdout.suffix(2000))\n\(proxy.log.suffix(2000))")
        #expect(gw.process.stderr.contains("call answered"))
        // Stopping unregisters: the proxy then answers 404 for the AOR.
        gw.stop()
        #expect(gw.process.stderr.contains("SIP unregistered"))
        let probe = try UDPProbe()
        let after = probe.exchange("""
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
}
