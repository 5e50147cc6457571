import Admission
import NIOCore
import Testing
@testable import SIP

/// The UAS state machine driven with values: requests in, the call handler's
/// answers and timer ticks at times the test chooses, actions out. Timer values
/// are checked exactly (RFC 3261 §13.3.1.4, §17.2.1, RFC 6026).
struct ServerStateMachineTests {
    struct Peer: SIPReplyPath {
        var transport: String
        var isReliable: Bool { transport != "UDP" }
        var remote: SocketAddress? { try? SocketAddress(ipAddress: "127.0.0.1", port: 5070) }
        var description: String { "\(transport) peer" }
        static let udp = Peer(transport: "UDP")
        static let tcp = Peer(transport: "TCP")
    }

    typealias Machine = SIPServerStateMachine<Peer>

    /// The machine with a clock the test moves, and the timers it asked for.
    struct Harness {
        var machine = Machine(configuration: SIPServerConfiguration(contactHost: "127.0.0.1"))
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var now: NIODeadline
        /// Armed timers and when they fire.
        var timers: [Machine.Timer: NIODeadline] = [:]

        init() {
            now = start
            machine.ports = ["UDP": 5060, "TCP": 5060]
        }

        var elapsedMS: Int64 { (now - start).nanoseconds / 1_000_000 }

        /// Notes timer actions and returns all.
        mutating func note(_ actions: [Machine.Action]) -> [Machine.Action] {
            for a in actions {
                if case .schedule(let t, let d) = a { timers[t] = now + d }
                if case .cancelTimer(let t) = a { timers[t] = nil }
            }
            return actions
        }

        mutating func receive(_ r: SIPRequest, from peer: Peer = .udp) -> [Machine.Action] {
            note(machine.receive(r, from: peer, now: now))
        }

        /// Moves the clock to the earliest armed timer and fires it.
        mutating func fireNext() -> (ms: Int64, actions: [Machine.Action])? {
            guard let (timer, at) = timers.min(by: { $0.value < $1.value }) else { return nil }
            now = at
            timers[timer] = nil
            return (elapsedMS, note(machine.timerFired(timer, now: now)))
        }
    }

    static func request(_ method: String, branch: String = "z9hG4bKa1", toTag: String? = nil, cseq: Int = 1, sdp: Bool = true,
                        extra: [SIPHeader] = [], uri: String = "sip:gw@127.0.0.1") -> SIPRequest {
        var h: SIPHeaders = [
            SIPHeader("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=\(branch)"), SIPHeader("From", "<sip:alice@127.0.0.1>;tag=a1"),
            SIPHeader("To", "<sip:gw@127.0.0.1>" + (toTag.map { ";tag=\($0)" } ?? "")), SIPHeader("Call-ID", "call-1"),
            SIPHeader("CSeq", "\(cseq) \(method == "ACK" || method == "CANCEL" ? "INVITE" : method)"),
            SIPHeader("Contact", "<sip:alice@127.0.0.1:5070>"), SIPHeader("Max-Forwards", "70"),
        ]
        if method == "CANCEL" { h = SIPHeaders(h.fields.map { $0.name == "CSeq" ? SIPHeader("CSeq", "\(cseq) CANCEL") : $0 }) }
        for e in extra { h.add(e.name, e.value) }
        var body: [UInt8] = []
        if method == "INVITE", sdp {
            h.add("Content-Type", "application/sdp")
            body = Array("v=0\r\nm=message 9 TCP/MSRP *\r\n".utf8)
        }
        if method == "MESSAGE" {
            h.add("Content-Type", "text/plain")
            body = Array("hi".utf8)
        }
        return SIPRequest(method: method, uri: uri, headers: h, body: body)
    }

    /// One line per action: "send 200 OK", "offer", "schedule 500", "end s1 BYE"...
    static func summary(_ actions: [Machine.Action]) -> [String] {
        actions.map { a in
            switch a {
            case .send(let bytes, _): return "send " + status(bytes)
            case .offer: return "offer"
            case .update(_, let session, _, _): return "update \(session)"
            case .store: return "store"
            case .cancelWork: return "cancel work"
            case .schedule(_, let d): return "schedule \(d.nanoseconds / 1_000_000)"
            case .cancelTimer: return "cancel timer"
            case .endSession(let s, let reason): return "end \(s) \(reason)"
            case .bye(let r, let route):
                if case .connection = route { return "bye \(r.headers["CSeq"] ?? "") on the connection" }
                return "bye \(r.headers["CSeq"] ?? "") by transaction"
            case .log(_, let message, _): return "log \(message)"
            }
        }
    }

    static func status(_ bytes: [UInt8]) -> String {
        let line = String(decoding: bytes, as: UTF8.self).split(separator: "\r\n").first.map(String.init) ?? ""
        return line.hasPrefix("SIP/2.0 ") ? String(line.dropFirst(8)) : line
    }

    static func sent(_ actions: [Machine.Action]) -> [String] {
        actions.compactMap { if case .send(let b, _) = $0 { return String(decoding: b, as: UTF8.self) } else { return nil } }
    }

    /// The key of the transaction an `.offer`/`.store` was asked for.
    static func workKey(_ actions: [Machine.Action]) -> SIPServerTransactionKey? {
        for a in actions {
            switch a {
            case .offer(let k, _, _), .store(let k, _), .update(let k, _, _, _): return k
            default: continue
            }
        }
        return nil
    }

    static func toTag(_ response: String) -> String? {
        guard let to = response.split(separator: "\r\n").first(where: { $0.hasPrefix("To:") }) else { return nil }
        return NameAddr(String(to.dropFirst(3).drop(while: { $0 == " " })))?.tag
    }

    /// An INVITE answered with a 200: returns the dialog's local tag.
    static func answeredCall(_ h: inout Harness, from peer: Peer = .udp) throws -> String {
        let invite = h.receive(request("INVITE"), from: peer)
        #expect(summary(invite) == ["send 100 Trying", "offer"])
        let key = try #require(workKey(invite))
        let ok = h.note(h.machine.offerAnswered(key, .success((session: "s1", answer: "v=0\r\n")), now: h.now))
        #expect(summary(ok) == (peer.isReliable ? ["send 200 OK"] : ["send 200 OK", "schedule 500"]))
        let response = try #require(sent(ok).first)
        #expect(response.contains("Contact: <sip:msrpgw@127.0.0.1:5060;transport=\(peer.transport.lowercased())>"))
        #expect(response.contains("Content-Type: application/sdp"))
        return try #require(toTag(response))
    }

    // MARK: - INVITE

    @Test func okIsResentDoublingToT2UntilTheAckThenStops() throws {
        var h = Harness()
        let tag = try Self.answeredCall(&h)
        var times: [Int64] = []
        for _ in 0..<3 {
            let next = h.fireNext()
            let fired = try #require(next)
            #expect(Self.summary(fired.actions).first == "send 200 OK")
            times.append(fired.ms)
        }
        #expect(times == [500, 1500, 3500])
        let ack = h.receive(Self.request("ACK", toTag: tag))
        #expect(Self.summary(ack) == ["cancel timer"])
        #expect(h.timers.isEmpty)
        #expect(h.machine.dialogCount == 1)
    }

    @Test func noAckFor64T1EndsTheCallWithABye() throws {
        var h = Harness()
        _ = try Self.answeredCall(&h)
        var resent: [Int64] = []
        while let fired = h.fireNext() {
            if Self.summary(fired.actions).first == "send 200 OK" { resent.append(fired.ms); continue }
            // Timer H's equivalent for the 2xx: exactly 64*T1 after it was first sent.
            #expect(fired.ms == 32_000)
            #expect(Self.summary(fired.actions) == ["log no ACK for the 200: call ended", "bye 1 BYE by transaction", "end s1 no ACK"])
        }
        #expect(resent == [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500])
        #expect(h.machine.dialogCount == 0)
    }

    @Test func aRetransmittedInviteGetsTheTryingAgainThenIsAbsorbedOnceAnswered() throws {
        var h = Harness()
        let first = h.receive(Self.request("INVITE"))
        #expect(Self.summary(h.receive(Self.request("INVITE"))) == ["send 100 Trying"])
        let key = try #require(Self.workKey(first))
        _ = h.note(h.machine.offerAnswered(key, .success((session: "s1", answer: "v=0\r\n")), now: h.now))
        // RFC 6026 §7.1: in Accepted, the 2xx has its own retransmission.
        #expect(h.receive(Self.request("INVITE")).isEmpty)
    }

    @Test func aRejectedOfferIsResentUntilItsAckThenAbsorbedForT4() throws {
        var h = Harness()
        let invite = h.receive(Self.request("INVITE"))
        let key = try #require(Self.workKey(invite))
        let rejected = h.note(h.machine.offerAnswered(key, .failure(SIPRejection(code: 486, reason: "busy \"now\"")), now: h.now))
        #expect(Self.summary(rejected) == ["send 486 Busy Here", "schedule 500"])
        #expect(Self.sent(rejected).first?.contains("Warning: 399 127.0.0.1 \"busy 'now'\"") == true)
        var times: [Int64] = []
        for _ in 0..<4 {
            let next = h.fireNext()
            times.append(try #require(next).ms)
        }
        #expect(times == [500, 1500, 3500, 7500])
        #expect(Self.summary(h.receive(Self.request("ACK", toTag: "x"))) == ["cancel timer"])
        // Confirmed: a late copy of the INVITE is answered from the transaction, not offered again.
        #expect(Self.summary(h.receive(Self.request("INVITE"))) == ["send 486 Busy Here"])
        h.now = h.now + .seconds(5)
        _ = h.machine.expire(now: h.now)
        #expect(h.machine.transactionCount == 0)
    }

    @Test func timerHEndsAFailureNobodyAcknowledges() throws {
        var h = Harness()
        let invite = h.receive(Self.request("INVITE"))
        _ = h.note(h.machine.offerAnswered(try #require(Self.workKey(invite)), .failure(SIPRejection(code: 480, reason: "away")), now: h.now))
        var last: (ms: Int64, actions: [Machine.Action])?
        var resends = 0
        while let fired = h.fireNext() {
            last = fired
            if Self.summary(fired.actions).first == "send 480 Temporarily Unavailable" { resends += 1 }
        }
        #expect(resends == 10)
        #expect(last?.ms == 32_000)
        #expect(Self.summary(last?.actions ?? []) == ["log no ACK for a final response"])
        #expect(h.machine.transactionCount == 0)
    }

    @Test func anInviteWithoutSDPIsRefusedWith488() {
        var h = Harness()
        let actions = h.receive(Self.request("INVITE", sdp: false))
        #expect(Self.summary(actions) == ["send 100 Trying", "send 488 Not Acceptable Here", "schedule 500"])
    }

    @Test func overTCPNothingIsResent() throws {
        var h = Harness()
        _ = try Self.answeredCall(&h, from: .tcp)
        #expect(h.timers.isEmpty)
        let invite = h.receive(Self.request("INVITE", branch: "z9hG4bKb2"), from: .tcp)
        let rejected = h.note(h.machine.offerAnswered(try #require(Self.workKey(invite)), .failure(SIPRejection(code: 403, reason: "no")), now: h.now))
        #expect(Self.summary(rejected) == ["send 403 Forbidden"])
        #expect(h.timers.isEmpty)
    }

    // MARK: - CANCEL, BYE, re-INVITE

    @Test func cancelWhileTheOfferIsPendingAnswers487AndEndsTheLateSession() throws {
        var h = Harness()
        let invite = h.receive(Self.request("INVITE"))
        let key = try #require(Self.workKey(invite))
        let cancel = h.receive(Self.request("CANCEL"))
        #expect(Self.summary(cancel) == ["send 200 OK", "cancel work", "send 487 Request Terminated", "schedule 500"])
        let late = h.machine.offerAnswered(key, .success((session: "s9", answer: "v=0\r\n")), now: h.now)
        #expect(Self.summary(late) == ["end s9 INVITE transaction ended before the answer"])
        #expect(h.machine.dialogCount == 0)
    }

    @Test func cancelOfNothingIs481() {
        var h = Harness()
        #expect(Self.summary(h.receive(Self.request("CANCEL"))) == ["send 481 Call/Transaction Does Not Exist"])
    }

    @Test func byeEndsTheSessionAndTheDialog() throws {
        var h = Harness()
        let tag = try Self.answeredCall(&h)
        _ = h.receive(Self.request("ACK", toTag: tag))
        let bye = h.receive(Self.request("BYE", branch: "z9hG4bKbye", toTag: tag, cseq: 2))
        #expect(Self.summary(bye) == ["end s1 BYE", "send 200 OK"])
        #expect(h.machine.dialogCount == 0)
        // Its retransmission gets the same answer, and ends nothing twice.
        #expect(Self.summary(h.receive(Self.request("BYE", branch: "z9hG4bKbye", toTag: tag, cseq: 2))) == ["send 200 OK"])
        #expect(Self.summary(h.receive(Self.request("BYE", branch: "z9hG4bKother", toTag: tag, cseq: 3))) == ["send 481 Call/Transaction Does Not Exist"])
    }

    @Test func byeBeforeTheAckStopsTheRetransmission() throws {
        var h = Harness()
        let tag = try Self.answeredCall(&h)
        let bye = h.receive(Self.request("BYE", branch: "z9hG4bKbye", toTag: tag, cseq: 2))
        #expect(Self.summary(bye) == ["cancel timer", "end s1 BYE", "send 200 OK"])
        #expect(h.timers.isEmpty)
    }

    @Test func reInviteUpdatesTheSessionOfItsDialog() throws {
        var h = Harness()
        let tag = try Self.answeredCall(&h)
        _ = h.receive(Self.request("ACK", toTag: tag))
        let reinvite = h.receive(Self.request("INVITE", branch: "z9hG4bKre", toTag: tag, cseq: 2))
        #expect(Self.summary(reinvite) == ["send 100 Trying", "update s1"])
        let ok = h.note(h.machine.updateAnswered(try #require(Self.workKey(reinvite)), session: "s1", .success("v=0\r\n"), now: h.now))
        #expect(Self.summary(ok) == ["send 200 OK", "schedule 500"])
        #expect(Self.toTag(Self.sent(ok)[0]) == tag)
        #expect(Self.summary(h.receive(Self.request("ACK", branch: "z9hG4bKre", toTag: tag, cseq: 2))) == ["cancel timer"])
        let stranger = h.receive(Self.request("INVITE", branch: "z9hG4bKre2", toTag: "nope", cseq: 3))
        #expect(Self.summary(stranger) == ["send 100 Trying", "send 481 Call/Transaction Does Not Exist", "schedule 500"])
    }

    // MARK: - Our side ends the session

    @Test func aSessionEndedBeforeTheAckIsHungUpWhenTheAckComes() throws {
        var h = Harness()
        let tag = try Self.answeredCall(&h)
        let ended = h.machine.sessionEnded("s1")
        #expect(!ended.hadDialog && ended.actions.isEmpty)
        let ack = h.receive(Self.request("ACK", toTag: tag))
        #expect(Self.summary(ack) == ["cancel timer", "bye 1 BYE by transaction"])
        #expect(h.machine.dialogCount == 0)
    }

    @Test func aSessionEndedBeforeItsAnswerIsHungUpAtOnceOverTCP() throws {
        var h = Harness()
        let invite = h.receive(Self.request("INVITE"), from: .tcp)
        _ = h.machine.sessionEnded("s1")
        let ok = h.machine.offerAnswered(try #require(Self.workKey(invite)), .success((session: "s1", answer: "v=0\r\n")), now: h.now)
        #expect(Self.summary(ok) == ["send 200 OK", "bye 1 BYE on the connection"])
        #expect(h.machine.dialogCount == 0)
    }

    @Test func anAcknowledgedCallEndedOnOurSideSendsAByeAlongItsRoute() throws {
        var h = Harness()
        let invite = h.receive(Self.request("INVITE", extra: [SIPHeader("Record-Route", "<sip:10.0.0.9:5080;lr>")]))
        let ok = h.note(h.machine.offerAnswered(try #require(Self.workKey(invite)), .success((session: "s1", answer: "v=0\r\n")), now: h.now))
        let tag = try #require(Self.toTag(Self.sent(ok)[0]))
        #expect(Self.sent(ok)[0].contains("Record-Route: <sip:10.0.0.9:5080;lr>"))
        _ = h.receive(Self.request("ACK", toTag: tag))
        let ended = h.machine.sessionEnded("s1")
        #expect(ended.hadDialog)
        guard case .bye(let bye, .transaction(let destination)) = try #require(ended.actions.first) else {
            Issue.record("expected a BYE by transaction, got \(Self.summary(ended.actions))")
            return
        }
        #expect(destination.port == 5080 && destination.ipAddress == "10.0.0.9")
        #expect(bye.uri == "sip:alice@127.0.0.1:5070")
        #expect(bye.headers["Route"] == "<sip:10.0.0.9:5080;lr>")
        #expect(bye.headers.from?.tag == tag)
        #expect(bye.headers.to?.tag == "a1")
        #expect(!h.machine.sessionEnded("s1").hadDialog)
    }

    @Test func aPlacedCallsDialogEndsItsSessionOnBye() {
        var h = Harness()
        h.machine.addDialog(callID: "call-1", localTag: "mine", remoteTag: "a1", session: "s5")
        #expect(Self.summary(h.receive(Self.request("BYE", toTag: "mine"))) == ["end s5 BYE", "send 200 OK"])
    }

    // MARK: - Page mode

    @Test func pageModeAnswers202OnceStoredAndRepeatsItForRetransmissions() throws {
        var h = Harness()
        let message = h.receive(Self.request("MESSAGE"))
        #expect(Self.summary(message) == ["store"])
        #expect(h.receive(Self.request("MESSAGE")).isEmpty)
        let stored = h.machine.messageStored(try #require(Self.workKey(message)), .success(()), now: h.now)
        #expect(Self.summary(stored) == ["send 202 Accepted"])
        #expect(Self.summary(h.receive(Self.request("MESSAGE"))) == ["send 202 Accepted"])
        // Timer J: 64*T1 over UDP.
        _ = h.machine.expire(now: h.now + .milliseconds(31_999))
        #expect(h.machine.transactionCount == 1)
        _ = h.machine.expire(now: h.now + .seconds(32))
        #expect(h.machine.transactionCount == 0)
    }

    @Test func aRefusedPageModeMessageSaysWhatIsAccepted() throws {
        var h = Harness()
        let message = h.receive(Self.request("MESSAGE"), from: .tcp)
        let refused = h.machine.messageStored(try #require(Self.workKey(message)), .failure(SIPRejection(code: 415, reason: "no")), now: h.now)
        #expect(Self.summary(refused) == ["send 415 Unsupported Media Type"])
        #expect(Self.sent(refused)[0].contains("Accept: message/cpim, text/plain"))
        _ = h.machine.expire(now: h.now)
        #expect(h.machine.transactionCount == 0)
    }

    // MARK: - Checks every request passes

    @Test(arguments: [
        (request("OPTIONS"), "200 OK"),
        (request("OPTIONS", uri: "tel:+15551234"), "416 Unsupported URI Scheme"),
        (request("INVITE", extra: [SIPHeader("Require", "100rel")]), "420 Bad Extension"),
        (request("REGISTER"), "405 Method Not Allowed"),
        (request("FROB"), "501 Not Implemented"),
    ])
    func requestChecks(_ request: SIPRequest, _ expected: String) throws {
        var h = Harness()
        var actions = h.receive(request)
        if let key = Self.workKey(actions) { actions = h.machine.messageStored(key, .success(()), now: h.now) }
        #expect(Self.summary(actions).first == "send \(expected)")
    }

    @Test func maxForwardsZeroIsTooManyHops() {
        var h = Harness()
        let request = SIPRequest(method: "MESSAGE", uri: "sip:gw@127.0.0.1", headers: [
            SIPHeader("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKmf"), SIPHeader("From", "<sip:a@b>;tag=1"),
            SIPHeader("To", "<sip:gw@127.0.0.1>"), SIPHeader("Call-ID", "mf"), SIPHeader("CSeq", "1 MESSAGE"), SIPHeader("Max-Forwards", "0"),
        ])
        #expect(Self.summary(h.receive(request)) == ["send 483 Too Many Hops"])
    }

    @Test func optionsAdvertisesWhatWeServe() throws {
        var h = Harness()
        let response = try #require(Self.sent(h.receive(Self.request("OPTIONS"))).first)
        #expect(response.contains("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE"))
        #expect(response.contains("Accept: application/sdp, message/cpim, text/plain"))
    }
}

/// New requests per source address: beyond the rate, 503 with Retry-After
/// (RFC 3261 §21.5.4); another address is not held back; a retransmission of
/// an answered request is answered as before, not counted.
struct SIPRequestRateTests {
    struct From: SIPReplyPath {
        var address: String
        var transport: String { "UDP" }
        var isReliable: Bool { false }
        var remote: SocketAddress? { try? SocketAddress(ipAddress: address, port: 5070) }
        var description: String { address }
    }

    @Test func aSourceOverItsRateGets503() {
        var machine = SIPServerStateMachine<From>(configuration: SIPServerConfiguration(
            contactHost: "127.0.0.1", requestRate: RateLimit(rate: 1, burst: 2)))
        machine.ports = ["UDP": 5060]
        let now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        func answer(_ branch: String, from address: String = "127.0.0.1") -> String {
            let actions = machine.receive(ServerStateMachineTests.request("OPTIONS", branch: branch, sdp: false), from: From(address: address), now: now)
            return actions.compactMap { if case .send(let b, _) = $0 { return String(decoding: b, as: UTF8.self) } else { return nil } }.first ?? "-"
        }
        let firsts = ["z9hG4bKr0", "z9hG4bKr1", "z9hG4bKr2"].map { String(answer($0).prefix(11)) }
        #expect(firsts == ["SIP/2.0 200", "SIP/2.0 200", "SIP/2.0 503"], "\(firsts)")
        let refused = answer("z9hG4bKr9")
        #expect(refused.contains("Retry-After: 1") && refused.contains("too many requests"), "\(refused)")
        // A retransmission of an answered request: answered again as before.
        #expect(answer("z9hG4bKr0").hasPrefix("SIP/2.0 200"))
        // Another address is not held back.
        #expect(answer("z9hG4bKo1", from: "192.0.2.9").hasPrefix("SIP/2.0 200"))
    }
}
