import Foundation
import MSRPGatewayClient
import Testing
import TestPeers

/// Kamailio as a WebSocket MSRP relay in front of the gateway (RFC 7977 §5.3):
/// a browser-like client (Tests/Helpers/msrp_ws_relay_client.py) connects to
/// Kamailio's `websocket` module with the `msrp` sub-protocol, AUTHs with
/// digest, and sets up a session with `msrpgw serve` behind the granted
/// Use-Path. Its message crosses Kamailio (WS in, TCP out) to the gateway and on
/// to another session; the success REPORT comes back through Kamailio, and so
/// does a message the API posts to the client's session.
@Suite(.serialized, .enabled(if: Peers.available("kamailio"), "needs apt-get install kamailio kamailio-websocket-modules"))
struct KamailioWebSocketRelayTests {
    /// Over WS, and over WSS on Kamailio's TLS listener (the test certificate,
    /// verified by the client).
    @Test(arguments: [false, true])
    func aWebSocketClientBehindKamailioTalksToTheGateway(secure: Bool) async throws {
        try await Peers.requireDebianPython(module: "websockets", package: "python3-websockets")
        let relay = try await KamailioMSRPRelay(webSocket: true)
        defer { relay.stop() }
        let wsPort = try #require(relay.wsPort)
        let gw = try await GatewayProcess(extra: """
            [routes]
            "sip:bob@gw.example" = ["sip:bob@example.com"]
            """)
        defer { gw.stop() }
        let clients = try TestClients()
        let bob = GatewayClientNamed.bob(clients, gw)
        try await bob.open()

        // WSS: Kamailio's TLS listener takes the WebSocket handshake as well as MSRP.
        let url = secure ? "wss://127.0.0.1:\(relay.tlsPort)/" : "ws://127.0.0.1:\(wsPort)/"
        let uri = secure ? "msrps://127.0.0.1:\(relay.tlsPort);ws" : "msrp://127.0.0.1:\(wsPort);ws"
        let (status, out, client) = try await runWebSocketRelayClient(gw, url: url, relayURI: uri, caFile: secure ? relay.certificates.caPath : nil)
        let context = "\(out)\n\(client.stderr.suffix(2000))\n\(relay.log.suffix(3000))"
        #expect(status == 0, "\(context)")
        #expect(out.contains("AUTH1 MSRP auth0001 401 Unauthorized"), "\(context)")
        #expect(out.contains("AUTH2 MSRP auth0002 200 OK"), "\(context)")
        // The client is reached through Kamailio's TCP listener, not its WebSocket one.
        #expect(out.contains("USE-PATH msrp://127.0.0.1:\(relay.port)/"), "\(context)")
        #expect(out.contains("BIND MSRP bind0001 200 OK"), "\(context)")
        #expect(out.contains("SEND MSRP send0001 200 OK"), "\(context)")
        #expect(out.contains("REPORT 000 200 OK msg-wsrelay-1"), "\(context)")
        #expect(await bob.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "hello through the WebSocket relay" } })
        #expect(bob.allReceived.first { $0.text == "hello through the WebSocket relay" }?.cpim?.from?.uri == "sip:carol@example.com")
        #expect(out.contains("API 202"), "\(context)")
        #expect(out.contains("INCOMING True"), "\(context)")
        // The gateway's message reached the client with Kamailio's hop in its From-Path.
        #expect(out.contains("INCOMING-FROM-PATH msrp://127.0.0.1:\(relay.port)/"), "\(context)")
        await clients.shutdown()
    }
}

/// The gateway as the browser's WebSocket relay (RFC 7977 §5.3 with the relay
/// role on): a token at the handshake (`?access_token=`) authenticates the
/// connection, so AUTH is granted without a digest; a wrong token is refused
/// with 401; without a token, AUTH is challenged with digest. The message goes
/// through the granted path to the gateway's own session (delivered in
/// process), its REPORT and a message from the API come back over the WebSocket.
@Suite(.serialized) struct GatewayWebSocketRelayTests {
    @Test(arguments: [true, false])
    func aBrowserAuthenticatesAtTheGatewaysRelay(withToken: Bool) async throws {
        try await Peers.requireDebianPython(module: "websockets", package: "python3-websockets")
        let gw = try await GatewayProcess(extra: """
            [routes]
            "sip:bob@gw.example" = ["sip:bob@example.com"]

            [relay]
            enabled = true
            users = { webuser = "secret" }
            tokens = { "browser-token-0123456789" = "carol" }
            """, msrp: "ws_port = \"any\"")
        defer { gw.stop() }
        let wsPort = try #require(gw.ports.ws)
        let clients = try TestClients()
        let bob = GatewayClientNamed.bob(clients, gw)
        try await bob.open()

        let url = "ws://127.0.0.1:\(wsPort)/" + (withToken ? "?access_token=browser-token-0123456789" : "")
        let (status, out, client) = try await runWebSocketRelayClient(gw, url: url, relayURI: "msrp://127.0.0.1:\(wsPort);ws")
        let context = "\(out)\n\(client.stderr.suffix(2000))\n\(gw.process.stderr.suffix(3000))"
        #expect(status == 0, "\(context)")
        if withToken {
            #expect(out.contains("BAD-TOKEN 401"), "\(context)")
            #expect(out.contains("AUTH1 MSRP auth0001 200 OK"), "no digest after a good token: \(context)")
            #expect(gw.process.stderr.contains("relay path granted") && gw.process.stderr.contains("carol"), "\(context)")
        } else {
            #expect(out.contains("AUTH1 MSRP auth0001 401 Unauthorized"), "\(context)")
            #expect(out.contains("AUTH2 MSRP auth0002 200 OK"), "\(context)")
        }
        #expect(out.contains("USE-PATH msrp://127.0.0.1:\(gw.msrpPort)/"), "\(context)")
        #expect(out.contains("BIND MSRP bind0001 200 OK"), "\(context)")
        #expect(out.contains("REPORT 000 200 OK msg-wsrelay-1"), "\(context)")
        #expect(await bob.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "hello through the WebSocket relay" } })
        #expect(out.contains("INCOMING True"), "\(context)")
        #expect(out.contains("INCOMING-FROM-PATH msrp://127.0.0.1:\(gw.msrpPort)/"), "\(context)")
        await clients.shutdown()
    }
}

/// Runs Tests/Helpers/msrp_ws_relay_client.py against the relay at `url`
/// (`relayURI` its AUTH target) and `gw`'s API, writing to sip:bob@gw.example;
/// its exit status, what it printed, and the process (for its stderr).
func runWebSocketRelayClient(_ gw: GatewayProcess, url: String, relayURI: String, caFile: String? = nil) async throws -> (Int32, String, ChildProcess) {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Helpers/msrp_ws_relay_client.py").path
    let client = try ChildProcess("/usr/bin/python3", [script, gw.api, GatewayProcess.token, url, relayURI, "sip:bob@gw.example"] + (caFile.map { [$0] } ?? []),
                                  name: "msrp_ws_relay_client")
    let status = try await client.wait()
    return (status, client.stdout, client)
}
