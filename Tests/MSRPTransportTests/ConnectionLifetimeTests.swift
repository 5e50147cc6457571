import MSRP
import NIOPosix
import Testing
import TestPeers

@testable import MSRPTransport

/// A long-running endpoint frees what each connection held: after thousands of
/// connections are opened, bound to a session, used and closed, no handler is
/// left alive (the handler once kept its context, which holds the handler: a
/// cycle that kept every closed connection's handler and buffers).
@Suite(.serialized) struct ConnectionLifetimeTests {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    @Test func closedConnectionsAreFreed() async throws {
        let endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: Self.group)
        defer { Task { await endpoint.shutdown() } }
        let port = try await endpoint.listen(host: "127.0.0.1", port: 0)
        let rounds = 4, perRound = 500, concurrency = 50
        var left: [Int] = []
        for round in 0..<rounds {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<concurrency {
                    group.addTask {
                        for i in stride(from: worker, to: perRound, by: concurrency) {
                            let id = "r\(round)c\(i)"
                            let session = endpoint.createSession(id: id, delegate: RecordingDelegate(policy: .acceptNow))
                            let client = try await RawMSRPClient(port: port, group: Self.group)
                            // A bodiless SEND binds the session to the connection (RFC 4975 §7.1).
                            try await client.write(ProtocolTests.send("t\(id)", to: id, port: port, body: nil))
                            let frames = await client.waitFrames(1)
                            #expect(frames.first?.response?.code == 200)
                            await client.close()
                            session.close()
                        }
                    }
                }
                try await group.waitForAll()
            }
            _ = await until(.seconds(5)) { endpoint.connectionHandlersAlive == 0 }
            left.append(endpoint.connectionHandlersAlive)
        }
        print("connection handlers alive 5 s after each round of \(perRound): \(left)")
        // All freed in the end (without the fix: 500 more per round, never freed).
        // Under a loaded full suite ~20 of a round were once freed only tens of
        // seconds later (not yet explained): the bound is eventual, and generous.
        #expect(await until(.seconds(120)) { endpoint.connectionHandlersAlive == 0 },
                "connection handlers alive after each round of \(perRound): \(left), now \(endpoint.connectionHandlersAlive)")
    }
}
