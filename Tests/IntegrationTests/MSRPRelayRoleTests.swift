import Foundation
import MSRP
import MSRPTransport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import TestPeers

/// An msrpgw endpoint as the relay (RFC 4976) between two MSRP clients that
/// AUTH with it through `MSRPRelayClient`: messages both ways through it, each
/// hop in From-Path; unauthenticated use refused with 403; a downstream that
/// never answers becomes a failure REPORT 408 upstream within the (shortened)
/// transaction timer (a NICKNAME to it, a 408 response); one that closes, or nobody listening, a failure REPORT 503.
@Suite(.serialized) struct MSRPRelayRoleTests {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    final class Inbox: MSRPSessionDelegate, @unchecked Sendable {
        let texts = NIOLockedValueBox<[(String, [MSRPURI])]>([])
        let reports = NIOLockedValueBox<[MSRPRequestHead]>([])
        func session(_ session: MSRPSession, didReceive message: MSRPIncomingMessage) {
            switch message.message.body {
            case .memory(let b): texts.withLockedValue { $0.append((String(buffer: b), message.head.fromPath)) }
            case .file(let path):  // a large message is spooled to disk
                let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
                texts.withLockedValue { $0.append((text, message.head.fromPath)) }
            }
            message.acknowledgement.accept()
        }
        func session(_ session: MSRPSession, didReceiveReport report: MSRPRequestHead) { reports.withLockedValue { $0.append(report) } }
        func has(_ text: String) -> Bool { texts.withLockedValue { $0.contains { $0.0 == text } } }
    }

    func text(_ s: String, report: SuccessReport = .no) -> MSRPOutgoingMessage {
        MSRPOutgoingMessage(messageID: MSRPIdentifier.make(), contentType: .textPlain, body: MemoryBodySource(ByteBuffer(string: s)), successReport: report)
    }

    @Test func twoClientsThroughTheRelay() async throws {
        // A long time to bind: a client's AUTH exchange is several awaits on a
        // test process's busy cooperative pool (a CI run passed the 30 s default).
        let relay = try MSRPEndpoint(configuration: MSRPTransportConfiguration(transactionTimeout: .seconds(2), bindTimeout: .seconds(600)), group: Self.group)
        let port = try await relay.listen(host: "127.0.0.1", port: 0)
        let relayURI = try MSRPURI("msrp://127.0.0.1:\(port);tcp")
        relay.relayRole = MSRPRelayRole(settings: .init(uri: relayURI, realm: "msrpgw.test", users: ["alice": "pw-a", "bob": "pw-b"]))

        let alice = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: Self.group)
        let bob = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: Self.group)
        let grantA = try await MSRPRelayClient(endpoint: alice, relay: relayURI, username: "alice", password: "pw-a").authenticate()
        let grantB = try await MSRPRelayClient(endpoint: bob, relay: relayURI, username: "bob", password: "pw-b").authenticate()
        #expect(grantA.usePath.first?.sessionID != grantB.usePath.first?.sessionID)
        await #expect { try await MSRPRelayClient(endpoint: bob, relay: relayURI, username: "bob", password: "guess").authenticate() } throws: {
            "\($0)".contains("refused the credentials")
        }
        #expect(try await MSRPRelayClient(endpoint: bob, relay: relayURI, username: "bob", password: "pw-b", expires: 10).authenticate().expires == .seconds(60),
                "423 Min-Expires, then granted")

        // Alice's To-Path: her relay, then Bob's path (his relay, then him).
        let aliceInbox = Inbox(), bobInbox = Inbox()
        let bobSession = bob.createSession(setup: .passive, delegate: bobInbox)
        let aliceSession = alice.createSession(setup: .active, remotePath: grantA.usePath + grantB.usePath + [bobSession.localURI], delegate: aliceInbox)
        try await aliceSession.connect()
        #expect(try await aliceSession.send(text("hello through msrpgw", report: .yes)) == .accepted)
        #expect(await until(.seconds(20)) { bobInbox.has("hello through msrpgw") })
        let hops = bobInbox.texts.withLockedValue { $0.first?.1 } ?? []
        #expect(hops.count == 3 && hops.last == aliceSession.localURI, "both relay hops, then Alice: \(hops)")
        bobSession.remotePath = grantB.usePath + grantA.usePath + [aliceSession.localURI]
        #expect(try await bobSession.send(text("and back")) == .accepted)
        #expect(await until(.seconds(20)) { aliceInbox.has("and back") })

        // Unauthenticated use: no grant, no way out.
        let carol = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: Self.group)
        var stranger = relayURI
        stranger.sessionID = "nosuchgrant0001"
        let carolSession = carol.createSession(setup: .active, remotePath: [stranger, bobSession.localURI], delegate: Inbox())
        await #expect { try await carolSession.connect() } throws: { "\($0)".contains("403") }

        // A downstream that never answers: 200 from the relay, then a failure REPORT 408.
        let silent = try await ServerBootstrap(group: Self.group).childChannelInitializer { ch in ch.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let silentURI = try MSRPURI("msrp://127.0.0.1:\(silent.localAddress?.port ?? 0)/silent0001;tcp")
        let toSilent = alice.createSession(setup: .active, remotePath: grantA.usePath + [silentURI], delegate: aliceInbox)
        try await toSilent.connect()
        let started = ContinuousClock.now
        #expect(try await toSilent.send(text("anyone?")) == .accepted, "the relay answers hop by hop")
        // The relay's 2 s timer, not Alice's own 30 s one (bounds loose for a loaded machine: 6.9 s was seen).
        #expect(await until(.seconds(20)) { aliceInbox.reports.withLockedValue { $0.contains { $0.headers.status?.code == 408 } } })
        #expect(ContinuousClock.now - started < .seconds(20), "within the relay's 2 s transaction timer, not the sender's 30 s")
        // A request other than SEND is answered end to end: with nobody answering
        // further on, the relay says 408 within its timer.
        let nickname = MSRPRequestHead(
            transactionID: MSRPIdentifier.make(), method: .nickname, toPath: grantA.usePath + [silentURI], fromPath: [toSilent.localURI],
            headers: [.useNickname("\"alice\"")])
        let askedAt = ContinuousClock.now
        #expect(try await toSilent.request(nickname, body: nil).code == 408)
        #expect(ContinuousClock.now - askedAt < .seconds(20), "the relay's timer, not the sender's 30 s")
        try await silent.close()

        // A downstream that closes the connection on the SEND: a failure REPORT.
        let closing = try await ServerBootstrap(group: Self.group).childChannelInitializer { ch in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(CloseOnRead()) }
        }.bind(host: "127.0.0.1", port: 0).get()
        let closingURI = try MSRPURI("msrp://127.0.0.1:\(closing.localAddress?.port ?? 0)/closes01;tcp")
        let toClosing = alice.createSession(setup: .active, remotePath: grantA.usePath + [closingURI], delegate: aliceInbox)
        try await toClosing.connect()
        #expect(try await toClosing.send(text("goodbye?")) == .accepted)
        // And one where nobody listens at all.
        let nowhere = try MSRPURI("msrp://127.0.0.1:\(try freePort())/nowhere1;tcp")
        let toNowhere = alice.createSession(setup: .active, remotePath: grantA.usePath + [nowhere], delegate: aliceInbox)
        try await toNowhere.connect()
        #expect(try await toNowhere.send(text("hello?")) == .accepted)
        #expect(await until(.seconds(6)) { aliceInbox.reports.withLockedValue { $0.filter { $0.headers.status?.code == 503 }.count } >= 2 },
                "a failure REPORT for each: \(aliceInbox.reports.withLockedValue { $0.map { $0.headers.status?.code ?? 0 } })")
        try await closing.close()
        for e in [alice, bob, carol, relay] { await e.shutdown() }
    }

    /// A downstream that hangs up as soon as anything arrives.
    final class CloseOnRead: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.close(promise: nil) }
    }
}

extension MSRPRelayRoleTests {
    /// RFC 4976 §7.1: the relay re-chunks. Alice writes a 4 MiB message as one
    /// chunk and a short one right behind it; the relay sends the large one on
    /// in interruptible chunks, so the short one can reach Bob first, and the
    /// large one arrives whole. Whether the short one passes depends on the
    /// relay still holding part of the large one when it arrives (on a loaded
    /// machine the relay may have written it all already): it must pass in one
    /// of three tries. Without re-chunking it never can (one chunk, in order).
    @Test func aLargeChunkIsRechunkedSoASmallMessagePassesIt() async throws {
        let relay = try MSRPEndpoint(configuration: MSRPTransportConfiguration(bindTimeout: .seconds(600)), group: Self.group)
        let port = try await relay.listen(host: "127.0.0.1", port: 0)
        let relayURI = try MSRPURI("msrp://127.0.0.1:\(port);tcp")
        relay.relayRole = MSRPRelayRole(settings: .init(uri: relayURI, realm: "msrpgw.test", users: ["alice": "pw-a", "bob": "pw-b"]))
        // Alice sends each message as one chunk written in one piece: nothing on
        // her own connection lets the short message pass.
        let whole = MSRPTransportConfiguration(chunkSize: 8 << 20, pieceSize: 8 << 20)
        let large = String(repeating: "0123456789abcdef", count: (4 << 20) / 16)
        var orders: [[Int]] = []
        for _ in 0..<3 {
            let alice = try MSRPEndpoint(configuration: whole, group: Self.group)
            // Bob's copy of the large message is a spooled file: in the test's scratch directory.
            let spool = ChunkAssemblerLimits(spoolDirectory: try Scratch.directory("spool"))
            let bob = try MSRPEndpoint(configuration: MSRPTransportConfiguration(assemblerLimits: spool), group: Self.group)
            let grantA = try await MSRPRelayClient(endpoint: alice, relay: relayURI, username: "alice", password: "pw-a").authenticate()
            let grantB = try await MSRPRelayClient(endpoint: bob, relay: relayURI, username: "bob", password: "pw-b").authenticate()
            let aliceInbox = Inbox(), bobInbox = Inbox()
            let bobSession = bob.createSession(setup: .passive, delegate: bobInbox)
            let aliceSession = alice.createSession(setup: .active, remotePath: grantA.usePath + grantB.usePath + [bobSession.localURI], delegate: aliceInbox)
            try await aliceSession.connect()

            async let first = aliceSession.send(text(large))
            try await Task.sleep(for: .milliseconds(1))  // queued behind the large one
            async let second = aliceSession.send(text("short"))
            #expect(try await [first, second] == [.accepted, .accepted])
            #expect(await until(.seconds(20)) { bobInbox.texts.withLockedValue { $0.count } == 2 },
                    "failure reports: \(aliceInbox.reports.withLockedValue { $0.map { "\($0.headers.status.map(String.init(describing:)) ?? "-")" } })")
            let intact = bobInbox.texts.withLockedValue { $0.first { $0.0.count == large.utf8.count }?.0 == large }
            #expect(intact, "the large message arrives as sent")
            orders.append(bobInbox.texts.withLockedValue { $0.map(\.0.count) })
            for e in [alice, bob] { await e.shutdown() }
            if orders.last == [5, large.utf8.count] { break }
        }
        #expect(orders.last == [5, large.utf8.count], "the short message first, then the large one whole, in one of three tries: \(orders)")
        await relay.shutdown()
    }
}

/// `msrpgw serve` with `[relay]`: two clients AUTH with the daemon and talk
/// through it, beside its own sessions on the same listener.
@Suite(.serialized) struct DaemonRelayRoleTests {
    @Test func theDaemonRelaysForItsUsers() async throws {
        // A long time to bind, as above: the AUTH exchange is the test's, not the timer.
        let gw = try await GatewayProcess(extra: """
            [relay]
            enabled = true
            users = { alice = "pw-a", bob = "pw-b" }
            """, msrp: #"unbound_timeout = "600s""#)
        defer { gw.stop() }
        #expect(gw.process.stderr.contains("acting as an MSRP relay"))
        let relayURI = try MSRPURI("msrp://127.0.0.1:\(gw.msrpPort);tcp")
        let group = MSRPRelayRoleTests.group
        let alice = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group)
        let bob = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group)
        let grantA = try await MSRPRelayClient(endpoint: alice, relay: relayURI, username: "alice", password: "pw-a").authenticate()
        let grantB = try await MSRPRelayClient(endpoint: bob, relay: relayURI, username: "bob", password: "pw-b").authenticate()
        let bobInbox = MSRPRelayRoleTests.Inbox()
        let bobSession = bob.createSession(setup: .passive, delegate: bobInbox)
        let aliceSession = alice.createSession(setup: .active, remotePath: grantA.usePath + grantB.usePath + [bobSession.localURI], delegate: MSRPRelayRoleTests.Inbox())
        try await aliceSession.connect()
        let message = MSRPOutgoingMessage(messageID: MSRPIdentifier.make(), contentType: .textPlain, body: MemoryBodySource(ByteBuffer(string: "relayed by msrpgw serve")))
        #expect(try await aliceSession.send(message) == .accepted)
        #expect(await until(.seconds(20)) { bobInbox.has("relayed by msrpgw serve") })
        #expect(gw.process.stderr.contains("relay path granted"))
        await alice.shutdown()
        await bob.shutdown()
    }
}
