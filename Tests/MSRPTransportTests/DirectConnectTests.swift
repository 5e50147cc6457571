import DirectConnect
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Every client of ours connects through `connect(hostOrAddress:port:)`: an IP
/// address (IPv6 with or without brackets, as URIs write it) without a name
/// lookup, a name through NIO's resolver as before.
@Suite struct DirectConnectTests {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    func listener(_ host: String) async throws -> any Channel {
        try await ServerBootstrap(group: Self.group)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: host, port: 0).get()
    }

    @Test func anAddressOrANameConnects() async throws {
        let server = try await listener("127.0.0.1")
        let port = try #require(server.localAddress?.port)
        for host in ["127.0.0.1", "localhost"] {
            let client = try await ClientBootstrap(group: Self.group).connect(hostOrAddress: host, port: port).get()
            #expect(client.remoteAddress?.ipAddress == "127.0.0.1", "\(host)")
            try await client.close()
        }
        try await server.close()
    }

    /// IPv6 loopback configured (not so in every container).
    static let hasIPv6Loopback = (try? String(contentsOfFile: "/proc/net/if_inet6", encoding: .utf8))?.contains("00000000000000000000000000000001") ?? false

    @Test(.enabled(if: hasIPv6Loopback, "no IPv6 loopback on this machine"))
    func anIPv6AddressConnectsWithOrWithoutBrackets() async throws {
        let server = try await listener("::1")
        let port = try #require(server.localAddress?.port)
        for host in ["::1", "[::1]"] {
            let client = try await ClientBootstrap(group: Self.group).connect(hostOrAddress: host, port: port).get()
            #expect(client.remoteAddress?.ipAddress == "::1", "\(host)")
            try await client.close()
        }
        try await server.close()
    }

    @Test func aRefusedAddressFailsAtOnce() async throws {
        let server = try await listener("127.0.0.1")
        let port = try #require(server.localAddress?.port)
        try await server.close()
        await #expect(throws: (any Error).self) {
            _ = try await ClientBootstrap(group: Self.group).connect(hostOrAddress: "127.0.0.1", port: port).get()
        }
    }
}
