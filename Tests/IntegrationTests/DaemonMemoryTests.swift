import Foundation
import MSRP
import MSRPGatewayClient
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SDP
import Testing
import TestPeers

/// `msrpgw serve` frees what each MSRP connection held. Rounds of sessions,
/// each made through the API, bound by a bodiless SEND on a TCP connection of
/// its own and ended by closing it: after every round the daemon reports no
/// connection handler alive (`msrpgw_msrp_connection_handlers`), and its RSS
/// after the last round is within a small bound of the first (it grew 5.5 KiB
/// per connection when handlers were never freed).
@Suite(.serialized) struct DaemonMemoryTests {
    @Test func connectionsOpenedAndClosedInRoundsLeaveNothingBehind() async throws {
        let gw = try await GatewayProcess(extra: "")
        defer { gw.stop() }
        let clients = try TestClients()
        let api = clients.client(gw)
        let (rounds, perRound, concurrency) = (3, 1000, 32)
        var alive: [Int] = []
        let rss = try await Self.connectionRounds(
            rounds, of: perRound, concurrency: concurrency, api: api, gateway: gw, group: clients.group,
            settle: { _ in
                _ = await until(.seconds(10)) { (try? await Self.handlers(api)) == 0 }
                alive.append(try await Self.handlers(api))
            })
        print("msrpgw RSS after each round of \(perRound) connections (KiB): \(rss); handlers alive 10 s after each: \(alive)")
        // Every handler is freed. Under a loaded full suite a few dozen of the
        // first round's were seen freed only 40-80 s later (not yet explained;
        // never more than ~30, never kept): the bound is eventual, and generous.
        let freed = await until(.seconds(120)) { (try? await Self.handlers(api)) == 0 }
        let now = (try? await Self.handlers(api)) ?? -1
        #expect(freed, "connection handlers alive after each round of \(perRound): \(alive), now \(now)")
        // 1,000 leaked handlers were ~5.5 MB; allocator noise is well under that.
        #expect(rss[rounds - 1] - rss[0] < 4 * 1024, "RSS by round (KiB): \(rss)")
        await clients.shutdown()
    }

    /// `rounds` rounds of `perRound` connections (`oneConnection`, `concurrency`
    /// at a time; round r's i-th has id "r<r>c<i>" and the peer `peer(r, i)`);
    /// after each round `settle`, then the daemon's RSS (KiB). Returns the RSS by round.
    static func connectionRounds(
        _ rounds: Int, of perRound: Int, concurrency: Int, api: GatewayClient, gateway: GatewayProcess, group: any EventLoopGroup,
        peer: @escaping @Sendable (Int, Int) -> String = { _, _ in "sip:alice@example.com" }, route: String? = nil,
        settle: (Int) async throws -> Void = { _ in }
    ) async throws -> [Int] {
        var rss: [Int] = []
        for round in 0..<rounds {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for worker in 0..<concurrency {
                    tasks.addTask {
                        for i in stride(from: worker, to: perRound, by: concurrency) {
                            try await oneConnection(api: api, gateway: gateway, group: group, id: "r\(round)c\(i)", peer: peer(round, i), route: route)
                        }
                    }
                }
                try await tasks.waitForAll()
            }
            try await settle(round)
            rss.append(residentKiB(gateway.process.pid))
        }
        return rss
    }

    /// A session through the API, a TCP connection that binds it with a
    /// bodiless SEND (RFC 4975 §7.1) and gets its 200, then closes.
    static func oneConnection(api: GatewayClient, gateway: GatewayProcess, group: any EventLoopGroup, id: String,
                              peer: String = "sip:alice@example.com", route: String? = nil) async throws {
        let ours = "msrp://127.0.0.1:9/\(id);tcp"
        let media = MSRPMedia(port: 9, path: [ours], acceptTypes: ["message/cpim", "text/plain"], setup: .active)
        let offer = MSRPOfferAnswer.answerDescription(media: media, host: "127.0.0.1", sessionVersion: 1)
        func encoded(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s }
        let query = "?peer=\(encoded(peer))" + (route.map { "&route=\(encoded($0))" } ?? "")
        let (status, body, _) = try await api.call("POST", "/v1/sessions" + query, body: offer.text, contentType: "application/sdp")
        guard status == 201, let theirs = try SDPParser().parse(body).msrpMedia().media.path.first else {
            Issue.record("POST /v1/sessions answered \(status): \(body)")
            return
        }
        let answered = NIOLockedValueBox(false)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(AnswerWatcher(answered)) } }
            .connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: gateway.msrpPort)).get()
        let send = "MSRP b\(id) SEND\r\nTo-Path: \(theirs)\r\nFrom-Path: \(ours)\r\nMessage-ID: m\(id)\r\nByte-Range: 1-0/0\r\n-------b\(id)$\r\n"
        try await channel.writeAndFlush(ByteBuffer(string: send))
        #expect(await until(.seconds(20), every: .milliseconds(2)) { answered.withLockedValue { $0 } }, "no 200 for the bodiless SEND of \(id)")
        try await channel.close()
    }

    /// Sees " 200 OK" go by.
    final class AnswerWatcher: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let answered: NIOLockedValueBox<Bool>
        init(_ answered: NIOLockedValueBox<Bool>) { self.answered = answered }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if String(buffer: unwrapInboundIn(data)).contains(" 200 OK") { answered.withLockedValue { $0 = true } }
        }
    }

    static func handlers(_ api: GatewayClient) async throws -> Int {
        let (_, metrics, _) = try await api.call("GET", "/metrics")
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("msrpgw_msrp_connection_handlers ") }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) } ?? -1
    }

    static func residentKiB(_ pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
}
