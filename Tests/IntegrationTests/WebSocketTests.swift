import Foundation
import MSRPGatewayClient
import Testing
import TestPeers

/// MSRP over WebSocket (RFC 7977) into `msrpgw serve`, from a client that
/// behaves as a browser does (Python's websockets, Debian python3-websockets):
/// the `msrp` sub-protocol, a .invalid host in its path, one chunk per message.
/// Its message reaches another session and its success REPORT comes back as one
/// WebSocket message; a wrong sub-protocol is refused with 400, two chunks in
/// one message and a chunk over two messages end with close code 1002, an
/// oversize message with 1009; the 101 carries CORS for the page's origin, and
/// an origin off the allow-list gets 403.
@Suite(.serialized) struct WebSocketTests {
    /// Plain WS on loopback, and WSS with the test certificate (verified by the client).
    @Test(arguments: [false, true])
    func aBrowserLikeClientTalksOverWebSocket(secure: Bool) async throws {
        try await Peers.requireDebianPython(module: "websockets", package: "python3-websockets")
        let certificates = try await TestCertificates.make()
        let gw = try await GatewayProcess(extra: """
            [routes]
            "sip:bob@gw.example" = ["sip:bob@example.com"]
            """, msrp: secure ? """
            wss_port = "any"
            ws_origins = ["https://chat.example"]
            tls_certificate = "\(certificates.certPath)"
            tls_key = "\(certificates.keyPath)"
            """ : "ws_port = \"any\"")
        defer { gw.stop() }
        let wsPort = try #require(secure ? gw.ports.wss : gw.ports.ws)
        #expect(gw.process.stderr.contains("MSRP WebSocket listening"))
        let clients = try TestClients()
        let bob = GatewayClientNamed.bob(clients, gw)
        try await bob.open()

        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Helpers/msrp_ws_client.py").path
        let url = secure ? "wss://127.0.0.1:\(wsPort)/" : "ws://127.0.0.1:\(wsPort)/"
        let client = try ChildProcess("/usr/bin/python3", [script, gw.api, GatewayProcess.token, url, "sip:bob@gw.example"] + (secure ? [certificates.caPath] : []),
                                      name: "msrp_ws_client")
        let status = try await client.wait()
        let out = client.stdout
        #expect(status == 0, "\(out)\n\(client.stderr.suffix(2000))")
        #expect(out.contains("SUBPROTOCOL msrp"), "\(out)")
        #expect(out.contains("BIND MSRP bind0001 200 OK"), "\(out)")
        #expect(out.contains("SEND MSRP send0001 200 OK"), "\(out)")
        #expect(out.contains("REPORT Status: 000 200 OK") && out.contains("REPORT-ONE-MESSAGE"), "\(out)")
        #expect(await bob.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "hello from a WebSocket" } })
        #expect(bob.allReceived.first { $0.text == "hello from a WebSocket" }?.cpim?.from?.uri == "sip:alice@example.com")
        #expect(out.contains("WRONG-SUBPROTOCOL 400"), "\(out)")
        #expect(out.contains("CORS https://chat.example"), "\(out)")
        // With ws_origins (the WSS run) another origin is refused; without, any may connect.
        #expect(out.contains(secure ? "BAD-ORIGIN 403" : "BAD-ORIGIN accepted"), "\(out)")
        #expect(out.contains("TWO-CHUNKS 1002"), "\(out)")
        #expect(out.contains("SPLIT-CHUNK 1002"), "\(out)")
        #expect(out.contains("OVERSIZE 1009"), "\(out)")
        #expect(gw.process.stderr.contains("not exactly one MSRP chunk"))
        #expect(gw.process.stderr.contains("WebSocket handshake refused"))
        await clients.shutdown()
    }
}
