import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing
@testable import SIP

/// Client transaction timers (RFC 3261 §17.1) on a test event loop whose clock
/// the test moves: what is sent when, and how the transaction ends. (The
/// async-safe test loop: the transaction runs in a task on another thread,
/// which an `EmbeddedEventLoop` may not be used from.)
struct ClientTransactionTests {
    final class Wire: @unchecked Sendable {
        let sent = NIOLockedValueBox<[(NIODeadline, String)]>([])
        let loop: NIOAsyncTestingEventLoop
        init(_ loop: NIOAsyncTestingEventLoop) { self.loop = loop }
        var send: @Sendable ([UInt8], SocketAddress) -> Bool {
            { [self] bytes, _ in
                let text = String(decoding: bytes, as: UTF8.self)
                self.sent.withLockedValue { $0.append((self.loop.now, String(text.split(separator: "\r\n", maxSplits: 1).first ?? ""))) }
                return true
            }
        }
        var lines: [String] { sent.withLockedValue { $0.map(\.1) } }
        /// Send times in ms from the start.
        func times(from start: NIODeadline) -> [Int64] { sent.withLockedValue { $0.map { ($0.0 - start).nanoseconds / 1_000_000 } } }
    }

    static func request(_ method: String, branch: String = "z9hG4bKtest1") -> SIPRequest {
        SIPRequest(method: method, uri: "sip:bob@127.0.0.1", headers: [
            SIPHeader("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=\(branch)"), SIPHeader("From", "<sip:gw@127.0.0.1>;tag=f1"),
            SIPHeader("To", "<sip:bob@127.0.0.1>"), SIPHeader("Call-ID", "ct1"), SIPHeader("CSeq", "1 \(method)"),
        ])
    }

    static func response(_ code: Int, to method: String, branch: String = "z9hG4bKtest1") -> SIPResponse {
        SIPResponse(code: code, reason: "R", headers: [
            SIPHeader("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=\(branch)"), SIPHeader("From", "<sip:gw@127.0.0.1>;tag=f1"),
            SIPHeader("To", "<sip:bob@127.0.0.1>;tag=t9"), SIPHeader("Call-ID", "ct1"), SIPHeader("CSeq", "1 \(method)"),
        ])
    }

    let destination = try! SocketAddress(ipAddress: "127.0.0.1", port: 5060)

    /// Starts a request in a task and lets it send its first copy.
    func begin(_ t: SIPClientTransactions, _ r: SIPRequest, loop: NIOAsyncTestingEventLoop) async -> Task<Result<SIPResponse, any Error>, Never> {
        let destination = self.destination
        let task = Task { () -> Result<SIPResponse, any Error> in
            do { return .success(try await t.start(r, to: destination)) } catch { return .failure(error) }
        }
        for _ in 0..<50 { await Task.yield() }
        await loop.run()
        return task
    }

    @Test func nonInviteRetransmitsDoublingToT2ThenTimesOut() async throws {
        let loop = NIOAsyncTestingEventLoop()
        let wire = Wire(loop)
        let t = SIPClientTransactions(loop: loop, t1: .milliseconds(500), t2: .seconds(4), send: wire.send)
        let start = loop.now
        let task = await begin(t, Self.request("MESSAGE"), loop: loop)
        await loop.advanceTime(by: .seconds(32))
        guard case .failure(let error) = await task.value else { Issue.record("a response out of nowhere"); return }
        #expect((error as? SIPClientError)?.kind == .timeout)
        // Timer E: 0.5, 1, 2, 4, then every 4 s (T2) until timer F at 64*T1 = 32 s.
        #expect(wire.times(from: start) == [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500])
    }

    @Test func inviteStopsRetransmittingOnAProvisionalAndAcksAFailure() async throws {
        let loop = NIOAsyncTestingEventLoop()
        let wire = Wire(loop)
        let t = SIPClientTransactions(loop: loop, t1: .milliseconds(500), t2: .seconds(4), send: wire.send)
        let task = await begin(t, Self.request("INVITE"), loop: loop)
        await loop.advanceTime(by: .milliseconds(1600))  // timer A: at 0.5 and 1.5 s
        #expect(t.receive(Self.response(100, to: "INVITE")))
        await loop.advanceTime(by: .seconds(10))
        #expect(wire.lines == ["INVITE sip:bob@127.0.0.1 SIP/2.0", "INVITE sip:bob@127.0.0.1 SIP/2.0", "INVITE sip:bob@127.0.0.1 SIP/2.0"])
        #expect(t.receive(Self.response(486, to: "INVITE")))
        guard case .success(let r) = await task.value else { Issue.record("no final response"); return }
        #expect(r.code == 486)
        #expect(wire.lines.last == "ACK sip:bob@127.0.0.1 SIP/2.0")
        // The 486 again (our ACK was lost): ACKed again, not handed to anyone.
        #expect(t.receive(Self.response(486, to: "INVITE")))
        #expect(wire.lines.filter { $0.hasPrefix("ACK") }.count == 2)
    }

    @Test func responsesMatchByBranchAndMethod() async throws {
        let loop = NIOAsyncTestingEventLoop()
        let wire = Wire(loop)
        let t = SIPClientTransactions(loop: loop, t1: .milliseconds(500), t2: .seconds(4), send: wire.send)
        let task = await begin(t, Self.request("REGISTER"), loop: loop)
        #expect(!t.receive(Self.response(200, to: "REGISTER", branch: "z9hG4bKother")))
        #expect(!t.receive(Self.response(200, to: "OPTIONS")))
        #expect(t.receive(Self.response(200, to: "REGISTER")))
        guard case .success(let r) = await task.value else { Issue.record("no final response"); return }
        #expect(r.code == 200)
        // A retransmitted 200 after the end matches nothing.
        #expect(!t.receive(Self.response(200, to: "REGISTER")))
    }
}
