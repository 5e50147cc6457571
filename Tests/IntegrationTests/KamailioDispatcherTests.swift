import Foundation
import Testing
import TestPeers

/// deploy/kamailio/kamailio.cfg as the door to two `msrpgw serve` nodes on one
/// PostgreSQL queue (WITH_DISPATCHER): sipp calls for the gateway's domain,
/// spread by a hash of the request-URI user, land on both nodes, each node
/// answering with its own MSRP path; a page-mode MESSAGE goes through the same
/// door and is delivered; with one node down, every call still succeeds on the
/// other; calls to one user (a room's address) all reach one node.
@Suite(.serialized, .enabled(
    if: PostgresServer.available && Peers.available("kamailio") && Peers.available("sipp") && Peers.available("python3")
        && Peers.pythonModuleAvailable("standardwebhooks"),
    "needs PostgreSQL, kamailio, sip-tester, python3 and pip install standardwebhooks"))
struct KamailioDispatcherTests {
    struct Session: Decodable { var id: String; var local_uri: String; var remote_path: [String]; var node: Int? }

    static func node(_ n: Int, url: String, sink: WebhookSinkProcess) async throws -> GatewayProcess {
        try await GatewayProcess(extra: """
            [sip]
            port = 0
            domain = "gw.example"
            \(MultiNodeTests.route(sink.url("/ok")))
            """, queue: MultiNodeTests.queueSection(url), environment: MultiNodeTests.environment(node: n))
    }

    /// `count` calls of `pause` ms through the proxy on `port`, to `user`
    /// (`[call_number]` in it makes one user per call), the offers' paths
    /// named `tag`; `rate` new calls a second. sipp's exit status 0 means
    /// every call was answered, ACKed and hung up.
    static func calls(_ count: Int, pause: Int, user: String, tag: String = "front", proxy port: Int, rate: Int = 10) throws -> ChildProcess {
        let scenario = SIPPScenario.call(path: "msrp://127.0.0.1:9/\(tag)[call_number];tcp", pause: pause, to: "sip:\(user)@gw.example")
        return try ChildProcess(try Peers.require("sipp", package: "sip-tester"), [
            "-sf", try SIPPScenario.write(scenario), "127.0.0.1:\(port)", "-i", "127.0.0.1", "-t", "u1", "-p", String(try freePort()),
            "-m", String(count), "-r", String(rate), "-nostdin", "-timeout", "60", "-timeout_error", "-max_recv_loops", "1000",
        ], name: "sipp")
    }

    @Test func callsAndMessagesSpreadOverTheNodesAndFailOver() async throws {
        let server = try await PostgresServer.shared()
        let url = server.url(database: try await server.createDatabase("front"))
        let sink = try await WebhookSinkProcess()
        defer { sink.stop() }
        let nodes = [try await Self.node(1, url: url, sink: sink), try await Self.node(2, url: url, sink: sink)]
        defer { nodes.forEach { $0.stop() } }
        let directory = try Scratch.directory("dispatcher")
        let list = directory + "/dispatcher.list"
        try nodes.map { "1 sip:127.0.0.1:\($0.ports.sip ?? 0)" }.joined(separator: "\n").appending("\n")
            .write(toFile: list, atomically: true, encoding: .utf8)
        if getuid() == 0, let pw = getpwnam("kamailio") { chown(list, pw.pointee.pw_uid, pw.pointee.pw_gid) }
        let proxy = try await KamailioInstance(extra: """
            #!define WITH_DISPATCHER
            #!define GATEWAY_DOMAIN "gw.example"
            #!define DISPATCHER_LIST "\(list)"
            #!define DISPATCHER_PING_INTERVAL 1
            #!define DISPATCHER_TIMEOUT 1000
            """)
        defer { proxy.stop() }
        let clients = try TestClients()
        let api = clients.client(nodes[0])

        // Twenty calls of 15 s (long enough to be seen by a loaded run), to
        // twenty users: while they are up, the cluster's sessions are on both
        // nodes, each answered with that node's MSRP listener.
        let first = try Self.calls(20, pause: 15000, user: "u[call_number]a", proxy: proxy.port)
        var seen: [Session] = []
        let spread = await until(.seconds(60)) {
            guard let (_, body, _) = try? await api.call("GET", "/v1/sessions"),
                  let sessions = try? JSONDecoder().decode([Session].self, from: Data(body.utf8)) else { return false }
            seen = sessions.filter { $0.id.contains("-") }
            return Set(seen.compactMap(\.node)) == [1, 2]
        }
        // (The nodes' own logs too: an unloaded full run once listed no session
        // at all for 60 s while the calls were answered; alone it passes.)
        #expect(spread, """
            calls landed on nodes \(Set(seen.compactMap(\.node))) only
            \(proxy.log.suffix(2000))
            \(nodes.enumerated().map { "node \($0.offset + 1):\n\($0.element.process.stderr.suffix(2000))" }.joined(separator: "\n"))
            """)
        for session in seen {
            let node = nodes[(session.node ?? 1) - 1]
            #expect(session.local_uri.contains(":\(node.msrpPort)/"), "node \(session.node ?? 0)'s answer names \(session.local_uri)")
        }
        #expect(try await first.wait(timeout: .seconds(60)) == 0, "sipp:\n\(first.stdout.suffix(1500))\(first.stderr.suffix(2000))\n\(proxy.log.suffix(2000))")

        // Calls to one user (a chat room's address, say) all reach one node.
        let room = try Self.calls(6, pause: 15000, user: "room", tag: "room", proxy: proxy.port)
        var inRoom: [Session] = []
        let together = await until(.seconds(60)) {
            guard let (_, body, _) = try? await api.call("GET", "/v1/sessions"),
                  let sessions = try? JSONDecoder().decode([Session].self, from: Data(body.utf8)) else { return false }
            inRoom = sessions.filter { $0.remote_path.contains { $0.contains("/room") } }
            return inRoom.count == 6
        }
        #expect(together && Set(inRoom.compactMap(\.node)).count == 1, "one user's calls went to nodes \(inRoom.compactMap(\.node))")
        #expect(try await room.wait(timeout: .seconds(60)) == 0, "sipp:\n\(room.stdout.suffix(1500))\(room.stderr.suffix(2000))")

        // A page-mode MESSAGE through the same door, stored and delivered.
        let message = SIPPScenario.header("message") + """
              <send retrans="500"><![CDATA[
                MESSAGE sip:ops@gw.example SIP/2.0
                Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
                From: <sip:carol@example.com>;tag=[pid]SIPpTag[call_number]
                To: <sip:ops@gw.example>
                Call-ID: [call_id]
                CSeq: 1 MESSAGE
                Max-Forwards: 70
                Content-Type: text/plain
                Content-Length: [len]

                through the dispatcher
              ]]></send>
              <recv response="202"/>
            </scenario>

            """
        let sent = try ChildProcess(try Peers.require("sipp", package: "sip-tester"), [
            "-sf", try SIPPScenario.write(message), "127.0.0.1:\(proxy.port)", "-i", "127.0.0.1", "-t", "u1", "-p", String(try freePort()),
            "-m", "1", "-nostdin", "-timeout", "30", "-timeout_error",
        ], name: "sipp")
        #expect(try await sent.wait(timeout: .seconds(40)) == 0, "sipp:\n\(sent.stdout.suffix(1500))\(sent.stderr.suffix(2000))\n\(proxy.log.suffix(2000))")
        #expect(await until(.seconds(30)) { sink.records("/ok").contains { $0.payload?.data.text?.hasPrefix("through the dispatcher") == true } },
                "\(sink.records.map { "\($0.path) \($0.payload?.data.text ?? "-")" })")

        // Node 2 down: every call is answered by node 1 (the ones hashed to
        // node 2 after its 1 s time-out, then none once probes took it out).
        await nodes[1].stop()
        let started = ContinuousClock.now
        let second = try Self.calls(20, pause: 200, user: "u[call_number]b", proxy: proxy.port)
        #expect(try await second.wait(timeout: .seconds(60)) == 0, "sipp:\n\(second.stdout.suffix(1500))\(second.stderr.suffix(2000))\n\(proxy.log.suffix(3000))")
        print("20 calls with node 2 down took \(ContinuousClock.now - started)")
        #expect(proxy.log.contains("did not answer"), "no failover seen:\n\(proxy.log.suffix(3000))")
        await clients.shutdown()
    }
}
