import DirectConnect
import Foundation
import NIOCore
import NIOPosix
import Testing
import TestPeers

/// Every client of ours connects through `connect(hostOrAddress:port:)`: an IP
/// address (IPv6 with or without brackets, as URIs write it) without a name
/// lookup, a name through NIO's resolver as before, and a host that is neither
/// (from a configuration or a peer's URI) fails as a connection error.
@Suite struct DirectConnectTests {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// IPv6 loopback configured (not so in every container).
    static let hasIPv6Loopback = (try? String(contentsOfFile: "/proc/net/if_inet6", encoding: .utf8))?.contains("00000000000000000000000000000001") ?? false

    func connect(_ host: String, _ port: Int) async throws -> any Channel {
        try await ClientBootstrap(group: Self.group).connect(hostOrAddress: host, port: port).get()
    }

    /// A listener on `address`; each of `hosts` connects to it and reaches `address`.
    func expectConnections(to address: String, from hosts: [String]) async throws {
        let server = try await ServerBootstrap(group: Self.group)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: address, port: 0).get()
        let port = try #require(server.localAddress?.port)
        for host in hosts {
            let client = try await connect(host, port)
            #expect(client.remoteAddress?.ipAddress == address, "\(host)")
            try await client.close()
        }
        try await server.close()
    }

    @Test func anAddressOrANameConnects() async throws {
        try await expectConnections(to: "127.0.0.1", from: ["127.0.0.1", "localhost"])
    }

    @Test(.enabled(if: hasIPv6Loopback, "no IPv6 loopback on this machine"))
    func anIPv6AddressConnectsWithOrWithoutBrackets() async throws {
        try await expectConnections(to: "::1", from: ["::1", "[::1]"])
    }

    /// A refused port, and hosts that are neither an address nor a name that
    /// resolves (half a bracket, an octet too large, nothing): each an error.
    @Test func aRefusedOrMalformedHostFails() async throws {
        let port = try freePort()
        for host in ["127.0.0.1", "[]", "[::1", "::1]", "256.1.1.1", ""] {
            await #expect(throws: (any Error).self, "\(host)") { _ = try await connect(host, port) }
        }
    }
}
