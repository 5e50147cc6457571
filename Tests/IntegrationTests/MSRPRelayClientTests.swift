import Foundation
import MSRP
import MSRPGatewayClient
import MSRPTransport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Testing
import TestPeers

/// The relay client (RFC 4976) against Kamailio's MSRP relay over TLS: AUTH
/// answered with digest, Use-Path and Expires taken from the grant, a 423's
/// Min-Expires honoured, wrong credentials refused; then a peer reaches the
/// client through the relay and the client answers back through it.
@Suite(.serialized, .enabled(if: Peers.available("kamailio"), "needs apt-get install kamailio"))
struct MSRPRelayClientTests {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    func endpoint(trusting relay: KamailioMSRPRelay) throws -> MSRPEndpoint {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(relay.certificates.caPath))
        return try MSRPEndpoint(configuration: MSRPTransportConfiguration(tlsClient: tls), group: Self.group)
    }

    @Test func authWithDigestExpiresAndRefusal() async throws {
        let relay = try await KamailioMSRPRelay()
        defer { relay.stop() }
        let e = try endpoint(trusting: relay)
        let uri = try MSRPURI("msrps://127.0.0.1:\(relay.tlsPort);tcp")

        let client = MSRPRelayClient(endpoint: e, relay: uri, username: "alice", password: "secret")
        let grant = try await client.authenticate()
        let first = try #require(grant.usePath.first)
        #expect(first.scheme == .msrps && first.port == relay.tlsPort && first.sessionID?.hasPrefix("s") == true, "\(grant.usePath)")
        #expect(grant.expires == .seconds(3600))
        #expect(grant.refreshAt < grant.obtainedAt + .seconds(3600))

        // Asking for 30 s: 423 with Min-Expires 60, asked again with 60.
        let short = MSRPRelayClient(endpoint: e, relay: uri, username: "alice", password: "secret", expires: 30)
        #expect(try await short.authenticate().expires == .seconds(60))

        // The wrong password: challenged again, refused, and said so.
        let intruder = MSRPRelayClient(endpoint: e, relay: uri, username: "alice", password: "guess")
        await #expect { try await intruder.authenticate() } throws: { "\($0)".contains("refused the credentials") }
        #expect(intruder.grant == nil)
        await e.shutdown()
    }

    final class Inbox: MSRPSessionDelegate, @unchecked Sendable {
        let texts = NIOLockedValueBox<[(String, [MSRPURI])]>([])
        func session(_ session: MSRPSession, didReceive message: MSRPIncomingMessage) {
            if case .memory(let b) = message.message.body {
                texts.withLockedValue { $0.append((String(buffer: b), message.head.fromPath)) }
            }
            message.acknowledgement.accept()
        }
    }

    @Test func aPeerReachesTheClientThroughTheRelayAndBack() async throws {
        let relay = try await KamailioMSRPRelay()
        defer { relay.stop() }
        let alice = try endpoint(trusting: relay)
        let bob = try endpoint(trusting: relay)
        _ = try await bob.listen(host: "127.0.0.1", port: 0)
        let client = MSRPRelayClient(endpoint: alice, relay: try MSRPURI("msrps://127.0.0.1:\(relay.tlsPort);tcp"), username: "alice", password: "secret")
        let grant = try await client.authenticate()

        // Alice's a=path would be the relay's Use-Path, then her own URI.
        let aliceInbox = Inbox(), bobInbox = Inbox()
        let aliceSession = alice.createSession(setup: .passive, delegate: aliceInbox)
        let alicePath = grant.usePath + [aliceSession.localURI]
        let bobSession = bob.createSession(setup: .active, remotePath: alicePath, delegate: bobInbox)
        try await bobSession.connect()
        let sent = try await bobSession.send(MSRPOutgoingMessage(
            messageID: MSRPIdentifier.make(), contentType: .textPlain, body: MemoryBodySource(ByteBuffer(string: "hello via the relay"))))
        #expect(sent == .accepted)
        #expect(await until(.seconds(5)) { aliceInbox.texts.withLockedValue { $0.contains { $0.0 == "hello via the relay" } } })
        let fromPath = aliceInbox.texts.withLockedValue { $0.first { $0.0 == "hello via the relay" }?.1 } ?? []
        #expect(fromPath.count == 2 && fromPath.last == bobSession.localURI, "the relay put itself before Bob: \(fromPath)")

        // Alice answers through her relay: To-Path = her relay, then Bob's path.
        aliceSession.remotePath = grant.usePath + [bobSession.localURI]
        let back = try await aliceSession.send(MSRPOutgoingMessage(
            messageID: MSRPIdentifier.make(), contentType: .textPlain, body: MemoryBodySource(ByteBuffer(string: "and back"))))
        #expect(back == .accepted)
        #expect(await until(.seconds(5)) { bobInbox.texts.withLockedValue { $0.contains { $0.0 == "and back" } } }, "connections at Bob: \(bob.connectionCount)\n\(relay.log.suffix(1500))")
        await alice.shutdown()
        await bob.shutdown()
    }
}

/// `msrpgw serve` with `[msrp] relay`: it AUTHs with Kamailio at start, answers
/// sessions with the relay's path before its own URI, and both directions go
/// through the relay: Alice's message reaches the gateway, is delivered to Bob's
/// session, and Alice's success REPORT comes back, each hop by Kamailio.
@Suite(.serialized, .enabled(if: Peers.available("kamailio"), "needs apt-get install kamailio"))
struct GatewayThroughRelayTests {
    @Test func sessionsGoThroughTheRelay() async throws {
        let relay = try await KamailioMSRPRelay()
        defer { relay.stop() }
        let gw = try await GatewayProcess(extra: """
            [routes]
            "sip:bob@gw.example" = ["sip:bob@example.com"]
            """, msrp: relay.gatewayClientSettings)
        defer { gw.stop() }
        #expect(gw.process.stderr.contains("relay granted a path"), "\(gw.process.stderr.suffix(1500))")

        let clients = try TestClients()
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(relay.certificates.caPath))
        let endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(tlsClient: tls), group: MSRPRelayClientTests.group)
        _ = try await endpoint.listen(host: "127.0.0.1", port: 0)
        let alice = GatewayClient(name: "Alice", address: "sip:alice@example.com", endpoint: endpoint, http: clients.http, api: gw.api, token: GatewayProcess.token)
        let bob = GatewayClient(name: "Bob", address: "sip:bob@example.com", endpoint: endpoint, http: clients.http, api: gw.api, token: GatewayProcess.token)
        try await alice.open()
        try await bob.open()
        // The answers put the relay first in the path.
        let (_, sessions, _) = try await alice.call("GET", "/v1/sessions")
        #expect(gw.process.stderr.contains("relay=msrps://127.0.0.1:\(relay.tlsPort)/"), "\(sessions)")

        #expect(try await alice.send("hello through the relay", to: "sip:bob@gw.example", messageID: "relay-room-1") == .accepted)
        #expect(await bob.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "hello through the relay" } },
                "\(gw.process.stderr.suffix(2000))")
        let received = try #require(bob.allReceived.first { $0.text == "hello through the relay" })
        #expect(received.cpim?.from?.uri == "sip:alice@example.com")
        #expect(await alice.wait(timeout: .seconds(10)) { c in
            c.allReports.contains { $0.headers.messageID == "relay-room-1" && $0.headers.status?.code == 200 }
        }, "the REPORT came back through the relay")
        await clients.shutdown()
        await endpoint.shutdown()
    }

    /// A session the gateway offers (an alert to a SIP user with no session): the
    /// INVITE's SDP puts the relay's path first (`TCP/TLS/MSRP` for the msrps
    /// relay), and the system message reaches the callee through Kamailio.
    @Test func anOutboundCallGoesThroughTheRelay() async throws {
        let sipp = try Peers.require("sipp", package: "sip-tester")
        let relay = try await KamailioMSRPRelay()
        defer { relay.stop() }
        let clients = try TestClients()
        let listener = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: MSRPRelayClientTests.group)
        let msrpPort = try await listener.listen(host: "127.0.0.1", port: 0)
        let inbox = MSRPRelayClientTests.Inbox()
        _ = listener.createSession(id: "oncall1", setup: .passive, acceptTypes: [.textPlain, .messageCPIM], delegate: inbox)
        let uasPort = try freePort()
        // The callee's scenario also checks the offer: the relay's path, then ours.
        let scenario = SIPProxyTests.callee(msrpPort: msrpPort, session: "oncall1").replacingOccurrences(
            of: #"<recv request="INVITE" crlf="true" rrs="true"/>"#,
            with: #"<recv request="INVITE" crlf="true" rrs="true"><action><ereg regexp="a=path:msrps://127\.0\.0\.1:\#(relay.tlsPort)/[^ ]+;tcp msrp://" search_in="body" check_it="true" assign_to="p"/><ereg regexp="m=message [0-9]+ TCP/TLS/MSRP" search_in="body" check_it="true" assign_to="m"/></action></recv><Reference variables="p,m"/>"#)
        let callee = try ChildProcess(sipp, [
            "-sf", try SIPPScenario.write(scenario), "-i", "127.0.0.1", "-p", String(uasPort), "-m", "1", "-nostdin", "-timeout", "40", "-timeout_error",
        ], name: "sipp callee")
        defer { callee.stop() }
        let sipPort = try freePort()
        let gw = try await GatewayProcess(extra: """
            [sip]
            port = \(sipPort)
            call_out = true
            hangup_after = "500ms"
            [routes]
            "sip:oncall@gw.example" = ["sip:oncall@127.0.0.1:\(uasPort)"]
            """, msrp: relay.gatewayClientSettings)
        defer { gw.stop() }
        let (status, _, _) = try await clients.client(gw).call(
            "POST", "/v1/messages", body: #"{"to": "sip:oncall@gw.example", "text": "disk full on db2", "system": true}"#)
        #expect(status == 202)
        #expect(await until(.seconds(20)) { inbox.texts.withLockedValue { $0 }.contains { $0.0.contains("disk full on db2") } },
                "no system message: \(gw.process.stderr.suffix(3000))\n\(callee.stdout.suffix(1500))\n\(relay.log.suffix(2000))")
        // It came through Kamailio: its hop first in the From-Path, then the gateway.
        let hops = inbox.texts.withLockedValue { $0.first { $0.0.contains("disk full on db2") }?.1 } ?? []
        #expect(hops.count == 2 && hops.first?.port == relay.tlsPort, "\(hops)")
        #expect(try await callee.wait(timeout: .seconds(20)) == 0, "the offer had the relay's path: \(callee.stdout.suffix(1500))\n\(callee.stderr.suffix(1500))")
        #expect(gw.process.stderr.contains("direction=outgoing") && gw.process.stderr.contains("relay=msrps://127.0.0.1:\(relay.tlsPort)/"))
        await listener.shutdown()
        await clients.shutdown()
    }
}
