import Foundation
import MSRPGatewayClient
import Testing
import TestPeers

/// The web client page served by `msrpgw serve` at /client, in headless
/// Chromium (Debian `chromium`) driven through the DevTools protocol: it signs
/// in, connects over WSS (the test certificate pinned by its key), sends a
/// message that reaches another session and a signed webhook, and shows its delivery from the REPORT
/// or IMDN, and shows a message posted to the API. With the relay role on, the
/// page presents its token at the WebSocket handshake and AUTHs, and its path
/// goes through the granted Use-Path, and a second page joins a chat room and
/// talks with a participant there. The screenshot is kept in
/// .build/artifacts/web-client.png.
@Suite(.serialized, .enabled(if: Peers.available("chromium"), "needs apt-get install chromium"))
struct WebClientTests {
    @Test(arguments: [false, true])
    func theWebClientInChromium(throughTheRelay: Bool) async throws {
        _ = try Peers.require("chromium", package: "chromium")
        let certificates = try await TestCertificates.make()
        let sink = try await WebhookSinkProcess()
        defer { sink.stop() }
        // The route goes to Bob's MSRP session and to a signed webhook.
        let gw = try await GatewayProcess(extra: """
            [routes]
            "sip:bob@gw.example" = ["sip:bob@example.com", "webhook:ok"]
            [webhooks.ok]
            url = "\(sink.url("/ok"))"
            secrets = ["\(WebhookSinkProcess.secret)"]
            [rooms]
            "sip:chat@gw.example" = { nicknames = true }
            """ + (throughTheRelay ? "\n[relay]\nenabled = true\n" : ""), msrp: """
            wss_port = "any"
            tls_certificate = "\(certificates.certPath)"
            tls_key = "\(certificates.keyPath)"
            """)
        defer { gw.stop() }
        let clients = try TestClients()
        let bob = GatewayClientNamed.bob(clients, gw)
        try await bob.open()

        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let artifacts = root.appendingPathComponent(".build/artifacts").path
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        let shot = artifacts + (throughTheRelay ? "/web-client-relay.png" : "/web-client.png")
        try? FileManager.default.removeItem(atPath: shot)
        let script = root.appendingPathComponent("Tests/Helpers/chromium_web_client.py").path
        // Through the relay, a second page also joins a chat room where Erin is.
        let room = "sip:chat@gw.example"
        let erin = clients.client(gw, address: "sip:erin@example.com")
        if throughTheRelay { try await erin.open(route: room) }
        let driver = try ChildProcess("/usr/bin/python3", [script, gw.api, GatewayProcess.token, "sip:bob@gw.example", certificates.certPath, shot]
                                      + (throughTheRelay ? [room] : []), name: "chromium driver")
        if throughTheRelay {
            #expect(await erin.wait(timeout: .seconds(40)) { c in c.allReceived.contains { $0.text == "hello room, from the browser" } },
                    "\(driver.stdout)")
            #expect(erin.allReceived.first { $0.text == "hello room, from the browser" }?.cpim?.from?.uri == "sip:dora@example.com")
            #expect(try await erin.send("hello browser, from the room", to: room, messageID: "room-answer-1") == .accepted)
        }
        let status = try await driver.wait()
        let out = driver.stdout
        #expect(status == 0, "\(out)\n\(driver.stderr.suffix(2000))\n\(gw.process.stderr.suffix(1500))")
        #expect(out.contains("PAGE msrpgw web client"), "\(out)")
        #expect(out.contains("CONNECTED True connected"), "\(out)")
        // Through the relay: the page's path starts with the relay path granted to its token.
        #expect(out.contains(throughTheRelay ? "RELAY-PATH msrp://127.0.0.1:\(gw.msrpPort)/" : "RELAY-PATH none"), "\(out)")
        if throughTheRelay { #expect(gw.process.stderr.contains("relay path granted") && gw.process.stderr.contains("user=api")) }
        #expect(out.contains("SENT delivered"), "\(out)")
        #expect(out.contains("API 202"), "\(out)")
        let file = (0..<200).map { String(format: "line %03d of a file sent in chunks ✓\n", $0) }.joined()
        #expect(out.contains("FILE \(file.utf8.count) delivered"), "\(out)")
        #expect(await bob.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == file } }, "the file, whole, from its chunks")
        #expect(out.contains("RECEIVED yes"), "\(out)")
        #expect(await bob.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "hello from Chromium ✓" } })
        #expect(bob.allReceived.first { $0.text == "hello from Chromium ✓" }?.cpim?.from?.uri == "sip:carol@example.com")
        // And at the webhook receiver, signed (checked with the Standard Webhooks library).
        #expect(await until(.seconds(10)) { sink.records("/ok").contains { $0.valid && $0.payload?.data.text == "hello from Chromium ✓" } },
                "\(sink.records("/ok").map { ($0.valid, $0.payload?.data.text ?? "-") })")
        #expect(sink.records("/ok").first { $0.payload?.data.text == "hello from Chromium ✓" }?.payload?.data.from?.uri == "sip:carol@example.com")
        if throughTheRelay {
            #expect(out.contains("ROOM-JOINED True"), "\(out)")
            #expect(out.contains("ROOM-SENT accepted (200)"), "the room's answer: \(out)")
            #expect(out.contains("ROOM-RECEIVED yes"), "\(out)")
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: shot)[.size] as? Int) ?? 0
        #expect(size > 5_000, "a screenshot of the page at \(shot)")
        await clients.shutdown()
    }
}
