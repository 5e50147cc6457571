import CPIM
import Foundation
import MSRPGatewayClient
import Testing
import TestPeers

/// MSRP and XMPP through `msrpgw serve` as a component (XEP-0114) of a real
/// Prosody, with a real XMPP client (slixmpp) as the user: messages both ways,
/// receipts turned into REPORTs and IMDNs and back, stanza errors into failure
/// REPORTs, no open relay, service discovery, a wrong secret.
@Suite(.serialized, .enabled(if: Peers.available("prosody"), "needs apt-get install prosody python3-slixmpp"))
struct XMPPBridgeTests {
    static func gateway(_ prosody: ProsodyInstance, secret: String? = nil, extra: String = "", routes: String = "") async throws -> GatewayProcess {
        try await gateway(componentPort: prosody.componentPort, secret: secret ?? prosody.secret, extra: extra, routes: routes)
    }

    static func gateway(componentPort: Int, secret: String, extra: String = "", routes: String = "") async throws -> GatewayProcess {
        try await GatewayProcess(extra: """
            [xmpp.local]
            host = "127.0.0.1"
            port = \(componentPort)
            domain = "msrp.localhost"
            secret = "\(secret)"
            msrp_domains = ["example.com"]
            receipt_wait = "5s"
            reconnect_min = "500ms"
            reconnect_max = "2s"
            \(extra)
            [routes]
            "sip:bob-xmpp@gw.example" = ["xmpp:bob@localhost"]
            \(routes)
            """, queue: "retry_schedule = [\"0s\", \"1s\"]\nmax_attempts = 30\njitter = false")
    }

    static let room = "sip:chat@gw.example"
    static let muc = "chat@conference.localhost"

    /// Prosody with its MUC, and a gateway whose room `room` is bridged to `muc`,
    /// once the bridge has joined it.
    static func bridgedRoom() async throws -> (ProsodyInstance, GatewayProcess) {
        let prosody = try await ProsodyInstance(muc: true)
        do {
            let gw = try await gateway(componentPort: prosody.componentPort, secret: prosody.secret, extra: """
                rooms = { "\(room)" = "\(muc)" }
                [rooms]
                "\(room)" = { nicknames = true }
                """, routes: "\"\(room)\" = [\"xmpp:\(muc)\"]")
            try await gw.process.waitFor("joined the MUC", in: \.stderr, timeout: .seconds(15))
            return (prosody, gw)
        } catch {
            await prosody.stop()
            throw error
        }
    }

    static func imdns(_ c: GatewayClient) -> [IMDNNotification] {
        c.allReceived.filter { $0.contentType.hasPrefix("message/imdn+xml") }.compactMap { try? IMDNNotification(xml: Array($0.text.utf8)) }
    }

    @Test func oneToOneBothWaysWithReceipts() async throws {
        let prosody = try await ProsodyInstance()
        defer { prosody.stop() }
        let gw = try await Self.gateway(prosody)
        defer { gw.stop() }
        try await gw.process.waitFor("XMPP component connected", in: \.stderr, timeout: .seconds(15))
        let bob = try await XMPPUser("bob", password: "bobpw", prosody: prosody)
        defer { bob.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open(route: "sip:bob-xmpp@gw.example")

        // MSRP → XMPP: from alice's escaped JID, with a receipt request and an origin-id;
        // bob's receipt is alice's success REPORT and IMDN delivered.
        let first = try await alice.send("hello XMPP ✓ <&>", to: "sip:bob-xmpp@gw.example", messageID: "xmpp-msg-1")
        #expect(first == .accepted, "\(first) \(gw.process.stderr.suffix(3000))")
        #expect(await until(.seconds(10)) { bob.messages.contains { $0.body == "hello XMPP ✓ <&>" } }, "\(bob.events)")
        let got = try #require(bob.messages.first { $0.body == "hello XMPP ✓ <&>" })
        #expect(got.from == "alice\\40example.com@msrp.localhost")
        #expect(got.receipt_request == true && got.origin_id?.hasPrefix("msrpgw-") == true && got.type == "chat")
        #expect(await alice.wait(timeout: .seconds(10)) { c in
            c.allReports.contains { $0.headers.messageID == "xmpp-msg-1" && $0.headers.status?.code == 200 }
        })
        #expect(await alice.wait(timeout: .seconds(10)) { c in Self.imdns(c).contains { $0.messageID == "imdn-xmpp-msg-1" && $0.status == "delivered" } })
        let (_, events, _) = try await alice.call("GET", "/v1/events?adapter=xmpp")
        #expect(events.contains("XMPP receipt from xmpp:bob@localhost"), "\(events)")

        // Display notifications: two markable messages; bob's marker for the second
        // covers both (XEP-0333 markers are cumulative): an IMDN displayed for each.
        for n in 3...4 {
            #expect(try await alice.send("shown \(n)", to: "sip:bob-xmpp@gw.example", messageID: "xmpp-msg-\(n)",
                                         imdn: [.positiveDelivery, .negativeDelivery, .display]) == .accepted)
        }
        #expect(await until(.seconds(10)) { bob.messages.filter { $0.body?.hasPrefix("shown") == true && $0.markable == true }.count == 2 }, "\(bob.messages)")
        #expect(await alice.wait(timeout: .seconds(10)) { c in
            Self.imdns(c).filter { ["imdn-xmpp-msg-3", "imdn-xmpp-msg-4"].contains($0.messageID) && $0.status == "delivered" }.count == 2
        })
        let shown = try #require(bob.messages.first { $0.body == "shown 4" }?.id)
        try bob.marker(displayed: shown, to: "alice\\40example.com@msrp.localhost")
        #expect(await alice.wait(timeout: .seconds(10)) { c in
            Set(Self.imdns(c).filter { $0.status == "displayed" }.map(\.messageID)) == ["imdn-xmpp-msg-3", "imdn-xmpp-msg-4"]
        }, "\(Self.imdns(alice).map { "\($0.messageID) \($0.status)" })")
        #expect(!bob.messages.contains { $0.body == "hello XMPP ✓ <&>" && $0.markable == true }, "no display asked: not markable")

        // XMPP → MSRP: bob writes to alice's JID; she gets it from bob's xmpp: URI, and
        // bob's receipt comes once her client took it.
        try bob.send("hi from XMPP ✓", to: "alice\\40example.com@msrp.localhost", id: "b-1")
        #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "hi from XMPP ✓" } })
        let fromXMPP = try #require(alice.allReceived.first { $0.text == "hi from XMPP ✓" })
        #expect(fromXMPP.cpim?.from?.uri == "xmpp:bob@localhost")
        #expect(await until(.seconds(10)) { bob.events.contains { $0.event == "receipt" && $0.id == "b-1" } }, "\(bob.events)")
        #expect(bob.events.first { $0.event == "receipt" && $0.id == "b-1" }?.from == "alice\\40example.com@msrp.localhost")

        // Bob's markable message: alice's IMDN displayed comes back to him as a chat marker.
        try bob.send("mark me", to: "alice\\40example.com@msrp.localhost", id: "b-mark-1", markable: true)
        #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "mark me" } })
        let markable = try #require(alice.allReceived.first { $0.text == "mark me" })
        #expect(try await alice.notifyDisplayed(markable) == .accepted)
        #expect(await until(.seconds(10)) { bob.events.contains { $0.event == "displayed" && $0.id == "b-mark-1" } }, "\(bob.events.suffix(5))")
        #expect(bob.events.first { $0.event == "displayed" }?.from?.hasPrefix("alice\\40example.com@msrp.localhost") == true)

        // An MSRP client that sends no success REPORT: its 200 is only the next hop's
        // word, so bob gets no receipt (the message is still delivered).
        let dave = GatewayClient(name: "Dave", address: "sip:dave@example.com", endpoint: clients.endpoint, http: clients.http, api: gw.api, token: GatewayProcess.token)
        dave.sendsSuccessReports = false
        try await dave.open()
        try bob.send("no receipt for this one", to: "dave\\40example.com@msrp.localhost", id: "b-3")
        #expect(await dave.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "no receipt for this one" } })

        // A recipient that refuses with a stanza error: alice's failure REPORT (403) and IMDN failed.
        #expect(try await alice.send("please refuse this", to: "sip:bob-xmpp@gw.example", messageID: "xmpp-msg-2") == .accepted)
        #expect(await alice.wait(timeout: .seconds(10)) { c in
            c.allReports.contains { $0.headers.messageID == "xmpp-msg-2" && $0.headers.status?.code == 403 }
        }, "\(alice.allReports.map { "\($0.headers.messageID ?? "") \($0.headers.status?.code ?? 0)" })")
        #expect(await alice.wait(timeout: .seconds(10)) { c in Self.imdns(c).contains { $0.messageID == "imdn-xmpp-msg-2" && $0.status == "failed" } })

        // No open relay: a peer of a domain not configured is not there for XMPP users.
        try bob.send("spam", to: "mallory\\40evil.example@msrp.localhost", id: "b-2")
        #expect(await until(.seconds(10)) { bob.events.contains { $0.event == "error" && $0.id == "b-2" } }, "\(bob.events)")
        #expect(bob.events.first { $0.event == "error" && $0.id == "b-2" }?.condition == "item-not-found")

        // Service discovery of the component and of one of its users.
        try bob.query("<query xmlns='http://jabber.org/protocol/disco#info'/>", to: "msrp.localhost")
        #expect(await until(.seconds(10)) { bob.events.contains { $0.event == "iq" && $0.xml?.contains("category=\"gateway\"") == true } }, "\(bob.events)")
        try bob.query("<query xmlns='jabber:iq:version'/>", to: "msrp.localhost")
        #expect(await until(.seconds(10)) { bob.events.contains { $0.event == "iq" && $0.xml?.contains("<name>msrpgw</name>") == true } }, "\(bob.events)")
        try bob.query("<query xmlns='urn:example:unknown'/>", to: "msrp.localhost")
        #expect(await until(.seconds(10)) { bob.events.contains { $0.event == "iq" && $0.type == "error" && $0.xml?.contains("service-unavailable") == true } })
        #expect(await until(.seconds(20)) {
            let (_, events, _) = (try? await alice.call("GET", "/v1/events?adapter=msrp&state=delivered")) ?? (0, "", [:])
            return events.contains("no success REPORT")
        }, "dave's message is delivered on its 200 after the REPORT wait")
        #expect(!bob.events.contains { $0.event == "receipt" && $0.id == "b-3" })
        await clients.shutdown()
    }

    /// A recipient whose client sends no receipts waits out `receipt_wait` for
    /// each message: only its own. Another recipient's message, sent after,
    /// is reported first.
    @Test func aRecipientWithoutReceiptsHoldsUpOnlyItself() async throws {
        let prosody = try await ProsodyInstance(users: [("bob", "bobpw"), ("carol", "carolpw")])
        defer { prosody.stop() }
        let gw = try await Self.gateway(prosody, routes: "\"sip:carol-xmpp@gw.example\" = [\"xmpp:carol@localhost\"]")
        defer { gw.stop() }
        try await gw.process.waitFor("XMPP component connected", in: \.stderr, timeout: .seconds(15))
        let bob = try await XMPPUser("bob", password: "bobpw", prosody: prosody)
        defer { bob.stop() }
        let carol = try await XMPPUser("carol", password: "carolpw", prosody: prosody, receipts: false)
        defer { carol.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open()
        #expect(try await alice.send("to carol", to: "sip:carol-xmpp@gw.example", messageID: "slow-msg-1") == .accepted)
        #expect(await until(.seconds(10)) { carol.messages.contains { $0.body == "to carol" } })
        #expect(try await alice.send("to bob", to: "sip:bob-xmpp@gw.example", messageID: "fast-msg-1") == .accepted)
        #expect(await alice.wait(timeout: .seconds(20)) { c in
            c.allReports.contains { $0.headers.messageID == "slow-msg-1" } && c.allReports.contains { $0.headers.messageID == "fast-msg-1" }
        })
        let order = alice.allReports.compactMap(\.headers.messageID).filter { $0 == "slow-msg-1" || $0 == "fast-msg-1" }
        #expect(order == ["fast-msg-1", "slow-msg-1"], "bob's REPORT waited for carol's receipt time-out: \(order)")
        await clients.shutdown()
    }

    /// Prosody stops while messages flow both ways and comes back: every
    /// message acknowledged on either side arrives once.
    @Test func aServerRestartLosesAndDoublesNothing() async throws {
        let prosody = try await ProsodyInstance()
        defer { prosody.stop() }
        let gw = try await Self.gateway(prosody)
        defer { gw.stop() }
        try await gw.process.waitFor("XMPP component connected", in: \.stderr, timeout: .seconds(15))
        let firstBob = try await XMPPUser("bob", password: "bobpw", prosody: prosody)
        var bob = firstBob
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open(route: "sip:bob-xmpp@gw.example")

        let count = 30
        var acknowledged: [String] = []
        for i in 1...count {
            if i == 11 {
                await prosody.stop()
                await bob.stop()
            }
            if i == 21 {
                try await prosody.start()
                bob = try await XMPPUser("bob", password: "bobpw", prosody: prosody)
                // Until the component is back the server bounces what bob sends it.
                #expect(await until(.seconds(15)) { gw.process.stderr.components(separatedBy: "XMPP component connected").count > 2 })
            }
            if i <= 10 || i > 20 { try bob.send("from xmpp \(i)", to: "alice\\40example.com@msrp.localhost", id: "restart-\(i)") }
            if try await alice.send("from msrp \(i)", to: "sip:bob-xmpp@gw.example", messageID: "restart-msg-\(i)") == .accepted {
                acknowledged.append("from msrp \(i)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(acknowledged.count == count)
        // Messages for bob while the server was away waited in the queue; those the
        // server took while he was away waited in its offline store.
        let current = bob
        func seenByBob() -> [String] { (firstBob.messages + current.messages).compactMap(\.body) }
        #expect(await until(.seconds(60)) { Set(seenByBob()).isSuperset(of: acknowledged) },
                "missing: \(Set(acknowledged).subtracting(seenByBob()).sorted())")
        // XMPP → MSRP: what the server bounced (the component was not back yet) bob
        // was told of; everything else reaches alice, and bob gets its receipt.
        let sent = (Array(1...10) + Array(21...30)).map { "restart-\($0)" }
        func bounced() -> Set<String> { Set((firstBob.events + current.events).filter { $0.event == "error" }.compactMap(\.id)) }
        func receipted() -> Set<String> { Set((firstBob.events + current.events).filter { $0.event == "receipt" }.compactMap(\.id)) }
        #expect(await until(.seconds(20)) { Set(sent).subtracting(bounced()).isSubset(of: receipted()) },
                "neither bounced nor receipted: \(Set(sent).subtracting(bounced()).subtracting(receipted()).sorted())")
        try await Task.sleep(for: .seconds(2))
        // Before the restart bob was another process: both together saw each message once.
        #expect(Dictionary(grouping: seenByBob(), by: { $0 }).filter { $0.value.count > 1 }.isEmpty, "doubled: \(seenByBob().sorted())")
        let seenByAlice = alice.allReceived.map(\.text).filter { $0.hasPrefix("from xmpp") }
        let expected = Set(sent).subtracting(bounced()).map { "from xmpp " + $0.dropFirst(8) }
        #expect(Set(seenByAlice) == Set(expected) && seenByAlice.count == expected.count, "\(seenByAlice.sorted()) bounced: \(bounced().sorted())")
        #expect(bounced().isEmpty, "bob wrote while the component was up: \(bounced().sorted())")
        await bob.stop()
        await clients.shutdown()
    }

    /// Not only Prosody's dialect: the handshake and a message each way, with
    /// receipts, through ejabberd.
    @Test(.enabled(if: Peers.available("ejabberdctl"), "needs apt-get install ejabberd"))
    func ejabberdToo() async throws {
        let ejabberd = try await EjabberdInstance()
        defer { ejabberd.stop() }
        let gw = try await Self.gateway(componentPort: ejabberd.componentPort, secret: ejabberd.secret)
        defer { gw.stop() }
        try await gw.process.waitFor("XMPP component connected", in: \.stderr, timeout: .seconds(15))
        let bob = try await XMPPUser("bob", password: "bobpw", domain: ejabberd.domain, c2sPort: ejabberd.c2sPort)
        defer { bob.stop() }
        let clients = try TestClients()
        let alice = clients.client(gw)
        try await alice.open(route: "sip:bob-xmpp@gw.example")
        #expect(try await alice.send("hello ejabberd", to: "sip:bob-xmpp@gw.example", messageID: "ejabberd-msg-1") == .accepted)
        #expect(await until(.seconds(10)) { bob.messages.contains { $0.body == "hello ejabberd" && $0.from == "alice\\40example.com@msrp.localhost" } },
                "\(bob.events)")
        #expect(await alice.wait(timeout: .seconds(10)) { c in
            c.allReports.contains { $0.headers.messageID == "ejabberd-msg-1" && $0.headers.status?.code == 200 }
        })
        try bob.send("hi from ejabberd", to: "alice\\40example.com@msrp.localhost", id: "ej-1")
        #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "hi from ejabberd" && $0.cpim?.from?.uri == "xmpp:bob@localhost" } })
        #expect(await until(.seconds(10)) { bob.events.contains { $0.event == "receipt" && $0.id == "ej-1" } }, "\(bob.events)")
        await clients.shutdown()
    }

    /// An RFC 7701 room bridged to a MUC: two MSRP participants and an XMPP
    /// occupant, both ways, nothing echoed back or doubled; joins and leaves as
    /// system messages; a private message to one participant's occupant.
    @Test func aRoomBridgedToAMUC() async throws {
        let (prosody, gw) = try await Self.bridgedRoom()
        defer {
            gw.stop()
            prosody.stop()
        }
        let (room, muc) = (Self.room, Self.muc)
        let clients = try TestClients()
        let alice = clients.client(gw, address: "sip:alice@example.com")
        let carol = GatewayClient(name: "Carol", address: "sip:carol@example.com", endpoint: clients.endpoint, http: clients.http, api: gw.api, token: GatewayProcess.token)
        try await alice.open(route: room)
        try await carol.open(route: room)
        let bob = try await XMPPUser("bob", password: "bobpw", prosody: prosody)
        defer { bob.stop() }
        try bob.join(muc, as: "bob")
        // Bob sees the participants as occupants; they hear that he joined.
        #expect(await until(.seconds(10)) {
            let present = Set(bob.events.filter { $0.event == "presence" && $0.type != "unavailable" }.compactMap(\.from))
            return present.isSuperset(of: ["\(muc)/alice", "\(muc)/carol"])
        }, "\(bob.events.filter { $0.event == "presence" })")
        #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.system && $0.text == "bob joined" } })

        // MSRP → MUC: from alice's occupant; carol has it once, from the MSRP room; alice not back.
        #expect(try await alice.send("hello MUC", to: room, messageID: "muc-msg-1") == .accepted)
        #expect(await until(.seconds(10)) { bob.messages.contains { $0.body == "hello MUC" && $0.type == "groupchat" && $0.from == "\(muc)/alice" } },
                "\(bob.messages)")
        #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReports.contains { $0.headers.messageID == "muc-msg-1" && $0.headers.status?.code == 200 } })

        // MUC → MSRP: bob's line reaches both participants once, from his occupant address.
        try bob.groupchat("hi from the MUC", in: muc, id: "muc-b-1")
        #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "hi from the MUC" } })
        #expect(await carol.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "hi from the MUC" } })
        #expect(alice.allReceived.first { $0.text == "hi from the MUC" }?.cpim?.from?.uri == "xmpp:\(muc)/bob")

        // A private message to alice's occupant: alice alone.
        try bob.send("psst alice", to: "\(muc)/alice", id: "muc-b-2", receipt: false)
        #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.text == "psst alice" } })

        // And back: alice writes privately to bob's occupant, from her own.
        #expect(try await alice.send("psst bob", to: "xmpp:\(muc)/bob", messageID: "muc-msg-2") == .accepted)
        #expect(await until(.seconds(10)) { bob.messages.contains { $0.body == "psst bob" && $0.from == "\(muc)/alice" && $0.type == "chat" } },
                "\(bob.messages)")

        try await Task.sleep(for: .seconds(1))
        #expect(!carol.allReceived.contains { $0.text == "psst bob" })
        #expect(bob.messages.filter { $0.body == "hello MUC" }.count == 1, "\(bob.messages)")
        #expect(carol.allReceived.filter { $0.text == "hello MUC" }.count == 1)
        #expect(!alice.allReceived.contains { $0.text == "hello MUC" })
        #expect(alice.allReceived.filter { $0.text == "hi from the MUC" }.count == 1 && carol.allReceived.filter { $0.text == "hi from the MUC" }.count == 1)
        #expect(!carol.allReceived.contains { $0.text == "psst alice" })

        // Carol's session ends: her occupant leaves. Bob leaves: alice hears it.
        let (ended, _, _) = try await carol.call("DELETE", "/v1/sessions/\(carol.sessionID ?? "-")")
        #expect(ended == 204 || ended == 200, "DELETE answered \(ended)")
        #expect(await until(.seconds(10)) { bob.events.contains { $0.event == "presence" && $0.type == "unavailable" && $0.from == "\(muc)/carol" } })
        try bob.leave(muc, as: "bob")
        #expect(await alice.wait(timeout: .seconds(10)) { c in c.allReceived.contains { $0.system && $0.text == "bob left" } })
        await clients.shutdown()
    }

    /// Sessions of a bridged room come and go by the hundred: each participant's
    /// occupant joins and leaves the MUC with it, and the daemon keeps nothing
    /// of them (RSS after the last round within a small bound of the first).
    @Test func roomParticipantsComeAndGoWithoutATrace() async throws {
        let (prosody, gw) = try await Self.bridgedRoom()
        defer {
            gw.stop()
            prosody.stop()
        }
        let (room, muc) = (Self.room, Self.muc)
        let bob = try await XMPPUser("bob", password: "bobpw", prosody: prosody)
        defer { bob.stop() }
        try bob.join(muc, as: "bob")
        // In before the participants (the bridge has taken his join): no news to any of them.
        try await gw.process.waitFor("news=bob joined", in: \.stderr, timeout: .seconds(10))
        let clients = try TestClients()
        let api = clients.client(gw)
        let (rounds, perRound, concurrency) = (3, 200, 16)
        let rss = try await DaemonMemoryTests.connectionRounds(
            rounds, of: perRound, concurrency: concurrency, api: api, gateway: gw, group: clients.group,
            peer: { round, i in "sip:u\(round)x\(i)@churn.example" }, route: room)
        // Every occupant that came left again: bob saw as many leave as join.
        func occupants(_ type: String?) -> Set<String> {
            Set(bob.events.filter { $0.event == "presence" && $0.type == type && ($0.from?.contains("/u") ?? false) }.compactMap(\.from))
        }
        // (The bridge follows the sessions as they change, changes coalesced: a
        // session that ended before it looked never joined, and owes no leave. A
        // full run saw 599 of 600 join. So: all but a few join, all leave.)
        #expect(await until(.seconds(60)) {
            occupants("available").count >= rounds * perRound * 9 / 10 && occupants("unavailable") == occupants("available")
        }, "joined \(occupants("available").count), left \(occupants("unavailable").count) of \(rounds * perRound)")
        // Their comings and goings are not news to the room (they were its own):
        // no system message was made (bob was there before them all).
        let (_, systemEvents, _) = try await api.call("GET", "/v1/events?kind=system&limit=1000")
        #expect(!systemEvents.contains("\"kind\":\"system\""), "\(systemEvents.prefix(500))")
        print("msrpgw RSS after each round of \(perRound) room sessions (KiB): \(rss)")
        #expect(rss[rounds - 1] - rss[0] < 4 * 1024, "RSS by round (KiB): \(rss)")
        await clients.shutdown()
    }

    @Test func aWrongSecretIsSaidAndRetried() async throws {
        let prosody = try await ProsodyInstance()
        defer { prosody.stop() }
        let gw = try await Self.gateway(prosody, secret: "not-the-secret")
        defer { gw.stop() }
        #expect(await until(.seconds(15)) {
            gw.process.stderr.components(separatedBy: "refused the component secret for msrp.localhost").count > 2
        }, "\(gw.process.stderr.suffix(2000))")
    }
}
