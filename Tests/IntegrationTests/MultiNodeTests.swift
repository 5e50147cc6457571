import Foundation
import MSRPGatewayClient
import Testing
import TestPeers

/// Several `msrpgw serve` nodes on one PostgreSQL queue (a throwaway server
/// started by the test), messages in on every node, deliveries to one signed
/// webhook receiver.
@Suite(.serialized, .enabled(if: PostgresServer.available && Peers.available("python3") && Peers.pythonModuleAvailable("standardwebhooks"),
                             "needs PostgreSQL, python3 and pip install standardwebhooks"))
struct MultiNodeTests {
    /// The nodes' [queue] section: PostgreSQL, quick retries, a short heartbeat.
    static func queueSection(_ url: String) -> String {
        """
        backend = "postgresql"
        url = "\(url)"
        retry_schedule = ["0s", "300ms"]
        max_attempts = 1000
        jitter = false
        heartbeat = "500ms"
        node_timeout = "3s"
        timeout = "10s"
        """
    }

    static func route(_ url: String) -> String {
        """
        [routes]
        "sip:ops@gw.example" = ["webhook:ops"]
        [webhooks.ops]
        url = "\(url)"
        secrets = ["\(WebhookSinkProcess.secret)"]
        timeout = "10s"
        """
    }

    static func startNodes(_ count: Int, url: String, extra: String, breakerSettings: Bool = true) async throws -> [GatewayProcess] {
        var nodes: [GatewayProcess] = []
        for node in 1...count {
            let environment = breakerSettings ? environment(node: node) : ["MSRPGW_GATEWAY_NODE": String(node)]
            nodes.append(try await GatewayProcess(extra: extra, queue: queueSection(url), environment: environment))
        }
        return nodes
    }

    /// Node `node`, with circuit breakers that probe again within a second: a
    /// receiver that was down while a loaded run sent its messages had pushed
    /// every node's back-off to tens of seconds.
    static func environment(node: Int) -> [String: String] {
        ["MSRPGW_GATEWAY_NODE": String(node), "MSRPGW_DISPATCH_BREAKER_BACKOFF": "200ms", "MSRPGW_DISPATCH_BREAKER_MAX_BACKOFF": "1s"]
    }

    /// The webhook deliveries a node made, from its /metrics.
    static func deliveries(_ node: GatewayProcess, _ client: GatewayClient) async throws -> Int {
        let (_, metrics, _) = try await client.call("GET", "/metrics")
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("msrpgw_deliveries_total") && $0.contains("adapter=\"webhook\"") && $0.contains("outcome=\"delivered\"") }
        return line.flatMap { Int(Double($0.split(separator: " ").last ?? "") ?? 0) } ?? 0
    }

    /// Messages in on all three nodes, every node woken by every insert
    /// (LISTEN/NOTIFY) and leasing: each message delivered once (one
    /// webhook-id), and by the node of the session it came in on (so a
    /// session's messages keep the order one node keeps); every sender gets
    /// every success REPORT on its own node's session, none undeliverable (a
    /// REPORT is pinned to the node that holds the session: one leased by
    /// another node would be recorded undeliverable). (That only the session's
    /// node takes its REPORTs, deterministically: PostgresQueueTests; a REPORT
    /// owed for another node's delivery: `anyNodeAnswersForTheWholeCluster`.)
    @Test func threeNodesDeliverEachMessageOnceAndReportOnTheSendersSession() async throws {
        let server = try await PostgresServer.shared()
        let url = server.url(database: try await server.createDatabase("nodes"))
        let sink = try await WebhookSinkProcess()
        defer { sink.stop() }
        let nodes = try await Self.startNodes(3, url: url, extra: Self.route(sink.url("/ok")))
        defer { nodes.forEach { $0.stop() } }
        let clients = try TestClients()
        let senders = nodes.enumerated().map { i, node in clients.client(node, address: "sip:sender\(i)@example.com") }
        for sender in senders { try await sender.open() }
        let perNode = 30
        for (i, sender) in senders.enumerated() {
            for m in 0..<perNode {
                #expect(try await sender.send("node \(i) message \(m)", to: "sip:ops@gw.example", messageID: "n\(i)m\(m)", imdn: []) == .accepted)
            }
        }
        let all = perNode * senders.count
        let delivered = await until(.seconds(120)) { Set(sink.records("/ok").compactMap { $0.payload?.data.text }).count == all }
        #expect(delivered, "\(Set(sink.records("/ok").compactMap { $0.payload?.data.text }).count) of \(all) messages delivered")
        var idsPerMessage: [String: Set<String>] = [:]
        for record in sink.records("/ok") { idsPerMessage[record.payload?.data.text ?? "", default: []].insert(record.webhook_id) }
        #expect(idsPerMessage.values.allSatisfy { $0.count == 1 }, "a message went out under two webhook-ids")
        #expect(sink.records.allSatisfy { $0.valid })

        for (i, sender) in senders.enumerated() {
            let reported = await sender.wait(timeout: .seconds(30)) { c in
                Set(c.allReports.filter { $0.headers.status?.code == 200 }.compactMap(\.headers.messageID)).count == perNode
            }
            #expect(reported, "node \(i)'s sender got \(Set(sender.allReports.compactMap(\.headers.messageID)).count) of \(perNode) REPORTs")
        }
        var perNodeDeliveries: [Int] = []
        for (node, sender) in zip(nodes, senders) { perNodeDeliveries.append(try await Self.deliveries(node, sender)) }
        #expect(perNodeDeliveries == Array(repeating: perNode, count: nodes.count), "\(perNodeDeliveries)")
        // No REPORT was leased by a node without the session.
        for sender in senders {
            let (_, metrics, _) = try await sender.call("GET", "/metrics")
            let undeliverable = metrics.split(separator: "\n").filter { $0.hasPrefix("msrpgw_reports_undeliverable_total") && !$0.hasSuffix(" 0") }
            #expect(undeliverable.isEmpty, "\(undeliverable)")
        }
        await clients.shutdown()
    }

    /// The API answers on any node for the whole cluster: sessions are listed
    /// with the node holding them; a message for another node's session is
    /// accepted and delivered on it; a peer's messages go to the node it is
    /// connected to, both those that waited while it was offline and those
    /// sent through another node while it is connected; a session is closed
    /// only by its own node (409 elsewhere, naming it).
    @Test func anyNodeAnswersForTheWholeCluster() async throws {
        let server = try await PostgresServer.shared()
        let url = server.url(database: try await server.createDatabase("directory"))
        let nodes = try await Self.startNodes(3, url: url, extra: """
            [routes]
            "sip:bob@gw.example" = ["sip:bob@example.com"]
            """)
        defer { nodes.forEach { $0.stop() } }
        let clients = try TestClients()
        let api = nodes.map { clients.client($0, address: "sip:ops@example.com") }
        func post(_ node: Int, _ json: String) async throws -> Int { try await api[node].call("POST", "/v1/messages", body: json).0 }

        #expect(try await post(0, #"{"to": "sip:bob@example.com", "text": "while offline"}"#) == 202)
        let bob = clients.client(nodes[1], address: "sip:bob@example.com")
        try await bob.open()
        let id = try #require(bob.sessionID)
        #expect(id.hasPrefix("n2-"), "\(id)")
        #expect(await bob.wait(timeout: .seconds(20)) { $0.allReceived.contains { $0.text == "while offline" } },
                "a message that waited for the peer did not follow it to the node it connected to")

        let listed = await until(.seconds(20)) {
            guard let (status, body, _) = try? await api[2].call("GET", "/v1/sessions"), status == 200 else { return false }
            return body.contains(#""id":"\#(id)""#) && body.contains(#""node":2"#)
        }
        #expect(listed, "node 3 does not list node 2's session")
        let (shown, view, _) = try await api[2].call("GET", "/v1/sessions/\(id)")
        #expect(shown == 200 && view.contains(#""node":2"#) && view.contains("sip:bob@example.com"), "\(shown) \(view)")
        // Ids no node could have made are no session (the directory is not asked).
        for hostile in ["%00", "n2-%0D%0Ax", String(repeating: "n", count: 5000), "n2-%27%3B%20DROP%20TABLE%20event"] {
            #expect(try await api[2].call("GET", "/v1/sessions/\(hostile)").0 == 404, "\(hostile.prefix(40))")
            #expect(try await api[2].call("DELETE", "/v1/sessions/\(hostile)").0 == 404, "\(hostile.prefix(40))")
        }
        let (closed, refusal, _) = try await api[2].call("DELETE", "/v1/sessions/\(id)")
        #expect(closed == 409 && refusal.contains("node 2") && refusal.contains("api=http:"), "\(closed) \(refusal)")

        #expect(try await post(2, #"{"session": "\#(id)", "text": "to the session"}"#) == 202)
        #expect(try await post(0, #"{"to": "sip:bob@example.com", "text": "to the address"}"#) == 202)
        #expect(try await post(2, #"{"to": "sip:bob@example.com", "text": "to the address again"}"#) == 202)
        let all = ["to the session", "to the address", "to the address again"]
        // Bounds a loaded full run can meet (each returns as soon as it holds).
        #expect(await bob.wait(timeout: .seconds(60)) { c in all.allSatisfy { t in c.allReceived.contains { $0.text == t } } },
                "got \(bob.allReceived.map(\.text))")
        #expect(try await post(0, #"{"session": "n9-nothing", "text": "x"}"#) == 404)
        // An MSRP sender on node 1 to Bob on node 2: node 2 delivers, and the
        // success REPORT it owes goes out on the sender's session, by node 1.
        let carol = clients.client(nodes[0], address: "sip:carol@example.com")
        try await carol.open()
        #expect(try await carol.send("from carol", to: "sip:bob@gw.example", messageID: "carol-1", imdn: []) == .accepted)
        #expect(await bob.wait(timeout: .seconds(60)) { $0.allReceived.contains { $0.text == "from carol" } })
        #expect(await carol.wait(timeout: .seconds(60)) { c in
            c.allReports.contains { $0.headers.messageID == "carol-1" && $0.headers.status?.code == 200 }
        }, "no success REPORT for a message another node delivered")
        #expect(bob.allReceived.count == 5, "a message came twice: \(bob.allReceived.map(\.text))")
        await clients.shutdown()
    }

    /// The receiver down while the messages come in, on every node: each node's
    /// circuit opens and it tells the events it leased to wait (long, but for
    /// one probe candidate per back-off). Another node may lease and deliver a
    /// candidate; that delivery makes the events waiting for the endpoint due,
    /// and a node whose candidate does not come back makes its waiters due
    /// itself. So once the receiver is up, everything is delivered in seconds,
    /// with the default breaker settings (before, a node whose candidate another
    /// node delivered left its waiters for 600 s: 35 of 90 came in 120 s).
    @Test func eventsWaitingForAnotherNodesOpenCircuitAreDeliveredWhenTheReceiverComesBack() async throws {
        let server = try await PostgresServer.shared()
        let url = server.url(database: try await server.createDatabase("circuits"))
        let port = try freePort()
        let nodes = try await Self.startNodes(3, url: url, extra: Self.route("http://127.0.0.1:\(port)/ok"), breakerSettings: false)
        defer { nodes.forEach { $0.stop() } }
        let clients = try TestClients()
        let senders = nodes.enumerated().map { i, node in clients.client(node, address: "sip:sender\(i)@example.com") }
        for sender in senders { try await sender.open() }
        let perNode = 20
        for m in 0..<perNode {
            for (i, sender) in senders.enumerated() {
                #expect(try await sender.send("node \(i) message \(m)", to: "sip:ops@gw.example", messageID: "w\(i)m\(m)", imdn: []) == .accepted)
            }
        }
        let all = perNode * senders.count
        // Every node has found the receiver down (its circuit opened).
        for (node, sender) in zip(nodes, senders) {
            let opened = await until(.seconds(30)) {
                guard let (_, metrics, _) = try? await sender.call("GET", "/metrics") else { return false }
                return metrics.split(separator: "\n").contains { $0.hasPrefix("msrpgw_endpoint_circuits_open") && !$0.hasSuffix(" 0") }
            }
            #expect(opened, "node \(node.ports.api) never opened its circuit")
        }
        // Down for a while longer: failed probes back off, candidates come due
        // and are leased by whichever node leases first.
        try await Task.sleep(for: .seconds(12))
        let sink = try await WebhookSinkProcess(port: port)
        defer { sink.stop() }
        let started = ContinuousClock.now
        // Within the longest back-off of the default settings (60 s: a loaded
        // run's slow sends keep the receiver down long enough to reach it; one
        // delivered nothing within 30 s) and a probe's grace, far from the 600 s
        // an event told to wait long may wait. Unloaded: 2-3 s.
        let delivered = await until(.seconds(80)) { Set(sink.records("/ok").compactMap { $0.payload?.data.text }).count == all }
        #expect(delivered, "\(Set(sink.records("/ok").compactMap { $0.payload?.data.text }).count) of \(all) messages delivered")
        if delivered { print("all \(all) delivered \(ContinuousClock.now - started) after the receiver came up") }
        var idsPerMessage: [String: Set<String>] = [:]
        for record in sink.records("/ok") { idsPerMessage[record.payload?.data.text ?? "", default: []].insert(record.webhook_id) }
        #expect(idsPerMessage.values.allSatisfy { $0.count == 1 }, "a message went out under two webhook-ids")
        await clients.shutdown()
    }

    /// A node dies with messages it received still undelivered, one of them
    /// above `inline_body_limit` (a spooled file on one node: in the database
    /// on PostgreSQL), while its circuit for the receiver is open: the other
    /// node takes them once the dead one's heartbeat lapses and delivers both,
    /// the large one byte for byte.
    @Test func aDeadNodesMessagesLargeOnesIncludedAreDeliveredByAnother() async throws {
        let server = try await PostgresServer.shared()
        let url = server.url(database: try await server.createDatabase("bodies"))
        let port = try freePort()
        let nodes = try await Self.startNodes(2, url: url, extra: Self.route("http://127.0.0.1:\(port)/ok"))
        defer { nodes.forEach { $0.stop() } }
        let clients = try TestClients()
        let sender = clients.client(nodes[0], address: "sip:big@example.com")
        try await sender.open()
        let large = "large " + String((0..<300_000).map { i in Character(UnicodeScalar(UInt8(97 + i % 26))) })
        #expect(try await sender.send("small", to: "sip:ops@gw.example", messageID: "body-small", successReport: false, imdn: []) == .accepted)
        #expect(try await sender.send(large, to: "sip:ops@gw.example", messageID: "body-large", successReport: false, imdn: []) == .accepted)
        let opened = await until(.seconds(30)) {
            guard let (_, metrics, _) = try? await sender.call("GET", "/metrics") else { return false }
            return metrics.split(separator: "\n").contains { $0.hasPrefix("msrpgw_endpoint_circuits_open") && !$0.hasSuffix(" 0") }
        }
        #expect(opened, "node 1 never found the receiver down")
        nodes[0].process.signal(SIGKILL)
        _ = try await nodes[0].process.wait()
        let sink = try await WebhookSinkProcess(port: port)
        defer { sink.stop() }
        let delivered = await until(.seconds(60)) { Set(sink.records("/ok").compactMap { $0.payload?.data.text }).count == 2 }
        let texts = sink.records("/ok").compactMap { $0.payload?.data.text }
        #expect(delivered, "delivered \(texts.map { $0.prefix(20) })")
        #expect(texts.contains(large), "the large body did not arrive whole")
        await clients.shutdown()
    }

    /// One node SIGKILLed again and again while the others take messages:
    /// nothing acknowledged is lost, no message goes out under two webhook-ids,
    /// and the killed node's leases are taken over within the node time-out.
    @Test func killingANodeRepeatedlyLosesNothingAcknowledged() async throws {
        let server = try await PostgresServer.shared()
        let database = try await server.createDatabase("kills")
        let url = server.url(database: database)
        let sink = try await WebhookSinkProcess()
        defer { sink.stop() }
        let nodes = try await Self.startNodes(3, url: url, extra: Self.route(sink.url("/ok")))
        defer { nodes.forEach { $0.stop() } }
        let clients = try TestClients()
        // Load on every node, the one killed too: what it acknowledged is its
        // own to deliver (a session's messages stay on its node) until it dies
        // for good, and then the others'.
        let senders = [clients.client(nodes[0], address: "sip:a@example.com"), clients.client(nodes[1], address: "sip:b@example.com"),
                       clients.client(nodes[2], address: "sip:c@example.com")]
        for sender in senders { try await sender.open() }
        let accepted = AcceptedMessages()
        let load = Task {
            var n = 0
            var reopenAt = ContinuousClock.now
            while !Task.isCancelled, n < 3000 {
                let sender = senders[n % 3]
                let text = "load \(n)"
                if (try? await sender.send(text, to: "sip:ops@gw.example", messageID: "kill-\(n)", successReport: false, imdn: [])) == .accepted {
                    await accepted.add(text)
                } else if n % 3 == 0, ContinuousClock.now >= reopenAt {
                    // Node 1 was killed with the session: a new one once it is back.
                    reopenAt = ContinuousClock.now + .milliseconds(200)
                    try? await senders[0].open()
                }
                n += 1
            }
        }
        var rng = SystemRandomNumberGenerator()
        let kills = 10
        for _ in 0..<kills {
            try await Task.sleep(for: .milliseconds(Int.random(in: 200...700, using: &rng)))
            nodes[0].process.signal(SIGKILL)
            _ = try await nodes[0].process.wait()
            try await nodes[0].restart()
        }
        // The last kill stays down: the others take its leases within the node time-out.
        try await Task.sleep(for: .milliseconds(300))
        nodes[0].process.signal(SIGKILL)
        _ = try await nodes[0].process.wait()
        let killedAt = ContinuousClock.now
        let held = try await server.psql(
            "SELECT count(*) FROM event WHERE state IN ('queued', 'leased') AND (node = 1 OR lease_owner LIKE 'node-1/%')", database: database)
        print("node 1 died holding or owning \(held) undelivered events")
        let takenOver = await until(.seconds(15)) {
            (try? await server.psql("SELECT count(*) FROM event WHERE state = 'leased' AND lease_owner LIKE 'node-1/%'", database: database)) == "0"
        }
        let takeover = ContinuousClock.now - killedAt
        // Timed from the test process, whose awaits a full run delays by seconds
        // (each poll here is a psql process too): 10 s tells "within a few node
        // time-outs" from "never" (the wait above gives up at 15 s).
        #expect(takenOver && takeover < .seconds(10), "node 1's leases were still held \(takeover) after it died (node_timeout 3s)")
        load.cancel()
        _ = await load.value
        let sent = await accepted.texts
        // (A loaded full run got 99 through in the time of the ten kills.)
        #expect(sent.count > 30, "too little load to prove anything: \(sent.count)")
        let byKilledNode = sent.filter { (Int($0.dropFirst(5)) ?? 1) % 3 == 0 }.count
        #expect(byKilledNode > 0, "the killed node acknowledged nothing: the test proves nothing about its messages")
        let allDelivered = await until(.seconds(90)) { sent.isSubset(of: Set(sink.records("/ok").compactMap { $0.payload?.data.text })) }
        let missing = sent.subtracting(Set(sink.records("/ok").compactMap { $0.payload?.data.text }))
        #expect(allDelivered, "\(missing.count) acknowledged messages never delivered, e.g. \(missing.prefix(5))")
        var idsPerMessage: [String: Set<String>] = [:]
        for record in sink.records("/ok") { idsPerMessage[record.payload?.data.text ?? "", default: []].insert(record.webhook_id) }
        let doubled = idsPerMessage.filter { $0.value.count > 1 }
        #expect(doubled.isEmpty, "messages under two webhook-ids: \(doubled.prefix(3))")
        await clients.shutdown()
    }

    /// PostgreSQL stopped for 10 s under load: the node refuses what it cannot
    /// store (never a 200 for it), says so on /healthz, keeps the MSRP session
    /// up, and once the server is back takes messages again without a restart;
    /// every message it acknowledged is delivered.
    @Test func postgresStoppedUnderLoadAcknowledgesOnlyWhatIsStored() async throws {
        let server = try await PostgresServer.start()
        let url = server.url(database: try await server.createDatabase("outage"))
        let sink = try await WebhookSinkProcess()
        defer { sink.stop() }
        let queue = Self.queueSection(url).replacingOccurrences(of: "timeout = \"10s\"", with: "timeout = \"2s\"")
        let node = try await GatewayProcess(extra: Self.route(sink.url("/ok")), queue: queue, environment: Self.environment(node: 1))
        defer { node.stop() }
        let clients = try TestClients()
        let sender = clients.client(node, address: "sip:steady@example.com")
        try await sender.open()
        let accepted = AcceptedMessages()
        let refused = AcceptedMessages()
        let load = Task {
            var n = 0
            while !Task.isCancelled, n < 5000 {
                let text = "steady \(n)"
                switch try? await sender.send(text, to: "sip:ops@gw.example", messageID: "steady-\(n)", successReport: false, imdn: []) {
                case .accepted: await accepted.add(text)
                case .rejected?: await refused.add(text)
                default: break
                }
                n += 1
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        #expect(await until(.seconds(20)) { await accepted.texts.count >= 20 })
        try await server.stop()
        let stoppedAt = ContinuousClock.now
        // Refusals come within the time-out; the health check says why.
        #expect(await until(.seconds(10)) { await refused.texts.count >= 1 }, "nothing was refused with PostgreSQL down")
        let (health, _, _) = try await sender.call("GET", "/healthz")
        #expect(health == 503, "/healthz answered \(health) with the queue down")
        try await Task.sleep(until: stoppedAt + .seconds(10))
        let acceptedBefore = await accepted.texts.count
        try await server.start()
        // The same session takes messages again, no restart of anything.
        #expect(await until(.seconds(30)) { await accepted.texts.count >= acceptedBefore + 20 }, "no message accepted after PostgreSQL came back")
        load.cancel()
        _ = await load.value
        let sent = await accepted.texts
        let allDelivered = await until(.seconds(60)) { sent.isSubset(of: Set(sink.records("/ok").compactMap { $0.payload?.data.text })) }
        let missing = sent.subtracting(Set(sink.records("/ok").compactMap { $0.payload?.data.text }))
        #expect(allDelivered, "\(missing.count) acknowledged messages never delivered, e.g. \(missing.prefix(5))")
        #expect(await refused.texts.isDisjoint(with: sent))
        await clients.shutdown()
        try await server.stop()
    }

    actor AcceptedMessages {
        var texts = Set<String>()
        func add(_ text: String) { texts.insert(text) }
    }
}
