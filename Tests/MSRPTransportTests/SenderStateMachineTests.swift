import MSRP
import NIOCore
import NIOEmbedded
import Testing

@testable import MSRPTransport

/// The outbound protocol of a connection: what it writes, when a send is done,
/// when a transaction times out. No sockets, no sleeps: time is a value.
@Suite struct SenderStateMachineTests {
    let loop = EmbeddedEventLoop()
    let allocator = ByteBufferAllocator()
    static let local = try! MSRPURI("msrp://gw.example:2855/local01;tcp")
    static let remote = try! MSRPURI("msrp://a.example:1/remote1;tcp")

    func machine(timeout: TimeAmount = .seconds(30), chunkSize: Int = 2048) -> MSRPSenderStateMachine {
        MSRPSenderStateMachine(pieceSize: 4096, chunkSize: chunkSize, transactionTimeout: timeout)
    }

    /// Writes everything that waits; returns the text written and what it settled.
    func drain(_ m: inout MSRPSenderStateMachine, now: NIODeadline = .uptimeNanoseconds(0)) -> (String, [MSRPSenderStateMachine.Completion], [NIODeadline]) {
        var text = ""
        var settled: [MSRPSenderStateMachine.Completion] = []
        var timers: [NIODeadline] = []
        while let w = m.nextWrite(allocator: allocator, now: now) {
            text += String(buffer: w.bytes)
            if let c = w.completion { settled.append(c) }
            if let t = w.armTimer { timers.append(t) }
        }
        return (text, settled, timers)
    }

    static func outcome(_ c: MSRPSenderStateMachine.Completion?) -> MSRPSendOutcome? {
        guard case .send(_, .success(let o))? = c else { return nil }
        return o
    }

    /// The transaction ids of the SEND chunks in `text`.
    static func transactions(_ text: String) -> [String] {
        text.split(separator: "\r\n").compactMap { line in
            let words = line.split(separator: " ")
            return words.count == 3 && words[0] == "MSRP" && words[2] == "SEND" ? String(words[1]) : nil
        }
    }

    @Test func aSendIsDoneWhenEveryChunkIsAnswered() {
        var m = machine()
        let p = loop.makePromise(of: MSRPSendOutcome.self)
        _ = m.send(MSRPOutgoingMessage(messageID: "msg00001", text: String(repeating: "x", count: 5000)), from: Self.local, to: [Self.remote], promise: p)
        let (text, settled, timers) = drain(&m)
        let tids = Self.transactions(text)
        #expect(tids.count == 3, "5000 bytes in chunks of 2048")
        #expect(settled.isEmpty, "not done before the responses")
        #expect(timers == [.uptimeNanoseconds(0) + .seconds(30)], "one timer, from the first chunk's last byte")
        for (i, tid) in tids.enumerated() {
            let c = m.response(MSRPResponseHead(transactionID: tid, code: 200, comment: "OK", toPath: [Self.local], fromPath: [Self.remote]))
            #expect((c == nil) == (i < tids.count - 1))
            if i == tids.count - 1 { #expect(Self.outcome(c) == .accepted) }
        }
        #expect(m.response(MSRPResponseHead(transactionID: tids[0], code: 200, comment: "OK", toPath: [], fromPath: [])) == nil, "a duplicate 200")
        p.succeed(.sent)
        #expect(m.isIdle)
    }

    @Test func failureReportNoIsDoneOnceWritten() {
        var m = machine()
        var message = MSRPOutgoingMessage(messageID: "sys00001", text: "maintenance at 22:00")
        message.failureReport = .no
        let p = loop.makePromise(of: MSRPSendOutcome.self)
        _ = m.send(message, from: Self.local, to: [Self.remote], promise: p)
        let (text, settled, timers) = drain(&m)
        #expect(text.contains("Failure-Report: no"))
        #expect(Self.outcome(settled.first) == .sent)
        #expect(timers.isEmpty)
        p.succeed(.sent)
    }

    @Test func anErrorResponseStopsTheMessageWithHash() {
        var m = machine(chunkSize: 64 * 1024)  // written in pieces of 4 KiB
        let p = loop.makePromise(of: MSRPSendOutcome.self)
        _ = m.send(MSRPOutgoingMessage(messageID: "big00001", text: String(repeating: "y", count: 64 * 1024)), from: Self.local, to: [Self.remote], promise: p)
        // The first chunk's head and first 4 KiB are out; the receiver refuses it.
        let first = m.nextWrite(allocator: allocator, now: .uptimeNanoseconds(0))
        let tid = Self.transactions(String(buffer: first?.bytes ?? ByteBuffer()))[0]
        let c = m.response(MSRPResponseHead(transactionID: tid, code: 413, comment: "too large", toPath: [], fromPath: []))
        #expect(Self.outcome(c) == .rejected(code: 413, comment: "too large"))
        let (rest, settled, _) = drain(&m)
        #expect(rest.hasSuffix("-------\(tid)#\r\n"), "the chunk in flight ends with #")
        #expect(settled.isEmpty)
        #expect(m.isIdle)
        p.succeed(.sent)
    }

    @Test func aRequestWithoutAnswerGetsALocal408AtItsDeadline() {
        var m = machine(timeout: .seconds(2))
        let p = loop.makePromise(of: MSRPResponseHead.self)
        let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
        let timer = m.request(ByteBuffer(string: "MSRP nick0001 NICKNAME\r\n"), transactionID: "nick0001", promise: p, now: t0)
        #expect(timer == t0 + .seconds(2))
        #expect(m.timerFired(now: t0 + .seconds(1)).expired.isEmpty)
        let (expired, next) = m.timerFired(now: t0 + .seconds(2))
        #expect(next == nil)
        guard case .request(_, .success(let r))? = expired.first?.completion else {
            Issue.record("\(expired)")
            return
        }
        #expect(r.code == 408)
        p.succeed(r)
    }

    @Test func closingFailsEverythingWaiting() {
        var m = machine()
        let s = loop.makePromise(of: MSRPSendOutcome.self)
        let r = loop.makePromise(of: MSRPResponseHead.self)
        _ = m.send(MSRPOutgoingMessage(messageID: "msg00002", text: "hi"), from: Self.local, to: [Self.remote], promise: s)
        _ = m.request(ByteBuffer(string: "x"), transactionID: "req00001", promise: r, now: .uptimeNanoseconds(0))
        let failed = m.close(MSRPSendError(reason: .connectionLost, detail: "gone"))
        #expect(failed.count == 2)
        #expect(m.isIdle)
        s.succeed(.sent)
        r.succeed(MSRPSenderStateMachine.timeoutResponse("req00001"))
    }
}
