import MSRP
import NIOCore
import NIOPosix
#if canImport(Glibc)
    import Glibc
#endif
import Testing
import TestPeers

@testable import MSRPTransport

/// MSRP connections both ways have Nagle's algorithm off (TCP_NODELAY: a
/// SEND's last bytes must not wait for the previous segment's ACK) and no
/// other option by mistake: TCP_NODELAY was once set at the socket level,
/// where its number is SO_DEBUG, which needs CAP_NET_ADMIN. Every connection
/// then failed for a daemon not running as root (found by DebianPackageTests;
/// NIO had turned TCP_NODELAY on by itself).
@Suite struct SocketOptionTests {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    @Test func connectionsHaveNoDelayAndNoDebug() async throws {
        // No session is ever bound here: the bind time-out (30 s by default) must
        // not close the accepted connection before its options are read (a loaded
        // full run starved this test past it: "I/O on closed channel").
        let server = try MSRPEndpoint(configuration: MSRPTransportConfiguration(bindTimeout: .seconds(600)), group: Self.group)
        let client = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: Self.group)
        defer { Task { await server.shutdown(); await client.shutdown() } }
        let port = try await server.listen(host: "127.0.0.1", port: 0)
        _ = try await client.connection(to: try MSRPURI("msrp://127.0.0.1:\(port)/x;tcp"))
        #expect(await until(.seconds(5)) { server.connectionCount == 1 })
        for (side, endpoint) in [("accepted", server), ("outbound", client)] {
            let connection = try #require(endpoint.allConnections.first)
            let noDelay = try await connection.channel.getOption(.tcpOption(.tcp_nodelay)).get()
            #expect(noDelay != 0, "TCP_NODELAY on the \(side) connection")
            let debug = try await connection.channel.getOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_DEBUG))).get()
            #expect(debug == 0, "SO_DEBUG on the \(side) connection")
        }
    }
}
