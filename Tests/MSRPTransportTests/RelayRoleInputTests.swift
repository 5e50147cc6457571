import Digest
import MSRP
@testable import MSRPTransport
import NIOCore
import NIOConcurrencyHelpers
import NIOPosix
import Testing
import TestPeers

/// Hostile and malformed input to the relay role, on the wire: each gets a
/// clear status (401 with a fresh challenge, 423 with the bound, 403 for paths
/// it never granted, 400 for what does not parse) and the connection stays up.
@Suite struct RelayRoleInputTests {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// An endpoint on loopback that is a relay for `alice` (password `pw-a`):
    /// the endpoint, its port, its URI.
    static func startRelay(expires: ClosedRange<Int64> = 60...3600) async throws -> (MSRPEndpoint, port: Int, uri: String) {
        // The client binds no session: the 30 s that gives such a connection ran
        // out once in a loaded full run before the table was through.
        let relay = try MSRPEndpoint(configuration: MSRPTransportConfiguration(bindTimeout: .seconds(600)), group: group)
        let port = try await relay.listen(host: "127.0.0.1", port: 0)
        let uri = "msrp://127.0.0.1:\(port);tcp"
        relay.relayRole = MSRPRelayRole(settings: .init(uri: try MSRPURI(uri), realm: "msrpgw.test", users: ["alice": "pw-a"], expires: expires))
        return (relay, port, uri)
    }

    static func auth(_ tid: String, relay: String, _ headers: [String] = [], toPath: String? = nil) -> String {
        (["MSRP \(tid) AUTH", "To-Path: \(toPath ?? relay)", "From-Path: msrp://client.example.com:2855/c1;tcp"] + headers + ["-------\(tid)$", ""])
            .joined(separator: "\n")
    }

    @Test func hostileAuthAndForwarding() async throws {
        let (relay, port, relayURI) = try await Self.startRelay(expires: 60...600)
        let client = try await RawMSRPClient(port: port, group: Self.group)

        // A challenge to answer: SHA-256 and MD5, one nonce.
        try await client.write(Self.auth("chal0001", relay: relayURI))
        let first = try #require(await client.waitFrames(1).first?.response)
        #expect(first.code == 401)
        let challenges = first.headers.fields.filter { $0.name == "WWW-Authenticate" }.map(\.value)
        #expect(challenges.count == 2)
        let challenge = try #require(DigestChallenge.preferred(challenges))
        func answer(user: String = "alice", password: String = "pw-a", realm: String? = nil, nonce: String? = nil) -> String {
            var c = challenge
            if let realm { c.realm = realm }
            if let nonce { c.nonce = nonce }
            return "Authorization: " + c.authorization(username: user, password: password, method: "AUTH", uri: relayURI, cnonce: "0a4f113b", nonceCount: 1)
        }

        let cases: [(name: String, request: String, code: Int, header: String?)] = [
            ("wrong password", Self.auth("bad00001", relay: relayURI, [answer(password: "guess")]), 401, "WWW-Authenticate"),
            ("unknown user", Self.auth("bad00002", relay: relayURI, [answer(user: "mallory")]), 401, "WWW-Authenticate"),
            ("another realm", Self.auth("bad00003", relay: relayURI, [answer(realm: "elsewhere")]), 401, "WWW-Authenticate"),
            ("a nonce we never gave", Self.auth("bad00004", relay: relayURI, [answer(nonce: "forged-nonce")]), 401, "WWW-Authenticate"),
            ("an Authorization that does not parse", Self.auth("bad00011", relay: relayURI, ["Authorization: Digest username=\"alice, realm"]), 400, nil),
            ("an Expires that is not a number", Self.auth("bad00012", relay: relayURI, [answer(), "Expires: soon"]), 400, nil),
            ("not digest at all", Self.auth("bad00005", relay: relayURI, ["Authorization: Basic YWxpY2U6cHctYQ=="]), 401, "WWW-Authenticate"),
            ("too short a lifetime", Self.auth("bad00006", relay: relayURI, [answer(), "Expires: 5"]), 423, "Min-Expires"),
            ("too long a lifetime", Self.auth("bad00007", relay: relayURI, [answer(), "Expires: 86400"]), 423, "Max-Expires"),
            ("a grant we never made", Self.auth("bad00008", relay: relayURI, [],
                                                toPath: "msrp://127.0.0.1:\(port)/nosuchgrant;tcp msrp://elsewhere.example.com:2855/x;tcp"), 403, nil),
            ("a SEND to the relay itself", """
                MSRP bad00009 SEND
                To-Path: \(relayURI)
                From-Path: msrp://client.example.com:2855/c1;tcp
                Message-ID: msg00001
                Byte-Range: 1-0/0
                -------bad00009$

                """, 403, nil),
            ("through a grant we never made", """
                MSRP bad00010 SEND
                To-Path: msrp://127.0.0.1:\(port)/nosuchgrant;tcp msrp://elsewhere.example.com:2855/x;tcp
                From-Path: msrp://client.example.com:2855/c1;tcp
                Message-ID: msg00002
                Byte-Range: 1-5/5
                Content-Type: text/plain

                hello
                -------bad00010$

                """, 403, nil),
            ("the right answer", Self.auth("good0001", relay: relayURI, [answer(), "Expires: 120"]), 200, "Use-Path"),
        ]
        for (i, c) in cases.enumerated() {
            try await client.write(c.request)
            let frames = await client.waitFrames(i + 2, timeout: .seconds(5))
            let response = try #require(frames.count > i + 1 ? frames[i + 1].response : nil, "\(c.name): no answer")
            #expect(response.code == c.code, "\(c.name): \(response.code)")
            if let header = c.header { #expect(response.headers.fields.contains { $0.name == header }, "\(c.name): no \(header)") }
        }
        #expect(!client.isClosed, "the connection survives all of it")
        await client.close()
        await relay.shutdown()
    }
}

/// A large chunk is not held whole by the relay: what has arrived goes on in
/// parts (with `+` and their own Byte-Ranges) before the chunk's end-line comes.
@Suite struct RelayStreamingTests {
    @Test func aLargeChunkGoesOnBeforeItHasAllArrived() async throws {
        let group = RelayRoleInputTests.group
        let (relay, port, relayURI) = try await RelayRoleInputTests.startRelay()

        // The far peer: a raw server that records the frames it gets (and answers none).
        let frames = NIOLockedValueBox<[MSRPFrame]>([])
        let far = try await ServerBootstrap(group: group).childChannelInitializer { ch in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(RawMSRPClient.Collector(frames, NIOLockedValueBox(false))) }
        }.bind(host: "127.0.0.1", port: 0).get()
        let farURI = "msrp://127.0.0.1:\(far.localAddress?.port ?? 0)/far00001;tcp"

        // Alice AUTHs by hand, then writes one 1 MiB chunk in two halves.
        let alice = try await RawMSRPClient(port: port, group: group)
        try await alice.write(RelayRoleInputTests.auth("chal0001", relay: relayURI))
        let challengeResponse = try #require(await alice.waitFrames(1).first?.response)
        let challenge = try #require(DigestChallenge.preferred(challengeResponse.headers.fields.filter { $0.name == "WWW-Authenticate" }.map(\.value)))
        let authorization = challenge.authorization(username: "alice", password: "pw-a", method: "AUTH", uri: relayURI, cnonce: "0a4f113b", nonceCount: 1)
        try await alice.write(RelayRoleInputTests.auth("auth0002", relay: relayURI, ["Authorization: " + authorization]))
        let granted = try #require(await alice.waitFrames(2).last?.response)
        let usePath = try #require(granted.headers.fields.first { $0.name == "Use-Path" }?.value)

        let size = 1 << 20
        let head = "MSRP big00001 SEND\r\nTo-Path: \(usePath) \(farURI)\r\nFrom-Path: msrp://alice.example.com:2855/a1;tcp\r\n"
            + "Message-ID: big00001\r\nByte-Range: 1-\(size)/\(size)\r\nContent-Type: text/plain\r\n\r\n"
        try await alice.write(Array(head.utf8) + [UInt8](repeating: 0x61, count: size / 2))
        // Half the chunk is in: parts of it have gone on already, each ending with "+".
        _ = await until(.seconds(10), every: .milliseconds(5)) { frames.withLockedValue { $0.count } >= 2 }
        let early = frames.withLockedValue { $0 }
        #expect(early.count >= 2, "parts forwarded before the end-line: \(early.count)")
        #expect(early.allSatisfy { $0.flag == .more })
        #expect(alice.received.count == 2, "no 200 for the SEND before it has all arrived")

        try await alice.write([UInt8](repeating: 0x62, count: size / 2) + Array("\r\n-------big00001$\r\n".utf8))
        _ = await until(.seconds(10), every: .milliseconds(5)) { frames.withLockedValue { $0.last?.flag } == .complete }
        let all = frames.withLockedValue { $0 }
        // In order, contiguous, the whole message once; the relay's 200 for the SEND.
        var next: Int64 = 1
        var bytes: [UInt8] = []
        for f in all {
            #expect(f.request?.headers.byteRange?.start == next, "contiguous: \(f.request?.headers.byteRange.map(String.init(describing:)) ?? "-")")
            #expect(f.request?.headers.byteRange?.total == Int64(size))
            next += Int64(f.body?.readableBytes ?? 0)
            bytes += f.body.map { Array($0.readableBytesView) } ?? []
        }
        #expect(bytes == [UInt8](repeating: 0x61, count: size / 2) + [UInt8](repeating: 0x62, count: size / 2))
        #expect(all.last?.flag == .complete)
        #expect(await alice.waitFrames(3).last?.response?.code == 200)
        await alice.close()
        try await far.close()
        await relay.shutdown()
    }
}

/// Back-pressure: a client sending faster than its next hop reads (here, a
/// next hop that never reads) is held back by the relay, which stops reading
/// from it, so what the relay holds stays bounded.
@Suite struct RelayBackPressureTests {
    @Test func aClientFasterThanItsNextHopIsHeldBack() async throws {
        let group = RelayRoleInputTests.group
        let (relay, _, relayText) = try await RelayRoleInputTests.startRelay()
        let relayURI = try MSRPURI(relayText)
        // A next hop that accepts and never reads.
        let stuck = try await ServerBootstrap(group: group).childChannelOption(.autoRead, value: false)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let stuckURI = try MSRPURI("msrp://127.0.0.1:\(stuck.localAddress?.port ?? 0)/stuck001;tcp")

        let aliceGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let alice = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: aliceGroup)
        let grant = try await MSRPRelayClient(endpoint: alice, relay: relayURI, username: "alice", password: "pw-a").authenticate()
        let session = alice.createSession(setup: .active, remotePath: grant.usePath + [stuckURI], delegate: nil)
        try await session.connect()
        let body = ByteBuffer(repeating: 0x78, count: 64 << 10)
        let accepted = NIOLockedValueBox(0)
        let sender = Task {
            for _ in 0..<600 {  // 37.5 MiB
                guard (try? await session.send(MSRPOutgoingMessage(messageID: MSRPIdentifier.make(), contentType: .textPlain, body: MemoryBodySource(body)))) == .accepted
                else { return }
                accepted.withLockedValue { $0 += 1 }
            }
        }
        try await Task.sleep(for: .seconds(3))
        let queued = await relay.queuedOutboundBytes()
        let sent = accepted.withLockedValue { $0 }
        // Held back past 4 MiB queued (plus a chunk or two in flight); without
        // back-pressure all 600 go through the relay into its queue.
        #expect(queued < 6 << 20, "the relay holds \(queued) bytes")
        #expect(sent < 600, "\(sent) of 600 accepted by the relay")
        sender.cancel()
        session.close()
        await alice.shutdown()
        try await stuck.close()
        await relay.shutdown()
        try await aliceGroup.shutdownGracefully()
    }
}
