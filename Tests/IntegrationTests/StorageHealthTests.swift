import Foundation
import MSRPGatewayClient
import MSRPTransport
import Testing
import TestPeers

/// `msrpgw serve` on a disk that fills up: messages it cannot store are refused
/// (500, never a 200 for what is not durable), `/healthz` says `degraded` with
/// 503 while the queue cannot write (it said "ok": statistics are reads, and
/// reads work on a full disk), and both recover once there is room again.
@Suite(.serialized, .enabled(if: ScratchMount.canMount, "mounts a tmpfs: needs root"))
struct StorageHealthTests {
    @Test func aFullDiskIsDegradedHealthAndRecovers() async throws {
        let mount = try ScratchMount(sizeKiB: 3 * 1024)
        defer { mount.unmount() }
        let gw = try await GatewayProcess(extra: GatewayProcess.routeToNowhere, queue: "retry_schedule = [\"1h\"]\nmax_attempts = 3\njitter = false", directory: mount.path)
        defer { gw.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()
        #expect(try await alice.call("GET", "/healthz").0 == 200)

        let big = String(repeating: "x", count: 64 * 1024)
        var accepted = 0
        var refusal: MSRPSendOutcome?
        for i in 0..<200 {
            let outcome = try await alice.send("\(i) \(big)", to: "sip:ops@gw.example", successReport: false, imdn: [])
            guard outcome == .accepted else {
                refusal = outcome
                break
            }
            accepted += 1
        }
        guard case .rejected(let code, let comment) = refusal else {
            Issue.record("the disk never filled: \(accepted) accepted, then \(String(describing: refusal))")
            return
        }
        #expect(code == 500)
        #expect(comment == "the gateway cannot store the message now", "no path or error for the peer: \(comment ?? "-")")
        let (status, body, _) = try await alice.call("GET", "/healthz")
        #expect(status == 503 && body.contains("degraded"), "\(status) \(body)")

        // Room again: the next message is stored and health comes back.
        try mount.resize(sizeKiB: 64 * 1024)
        #expect(try await alice.send("after", to: "sip:ops@gw.example", successReport: false, imdn: []) == .accepted)
        let (again, _, _) = try await alice.call("GET", "/healthz")
        #expect(again == 200)
        await clients.shutdown()
    }
}
