import MSRP
import NIOCore
import NIOPosix
import Testing

@testable import MSRPTransport

/// The inbound protocol of a connection, fed bytes, checked by the actions it
/// returns: no sockets, no sleeps. (The loopback tests run the same code
/// through the NIO handler.)
@Suite struct ConnectionStateMachineTests {
    static let endpoint = try! MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: MultiThreadedEventLoopGroup.singleton)

    /// Sessions as a table: which ids exist, which are bound elsewhere.
    struct Table: MSRPConnectionEnvironment {
        var sessions: [String: MSRPSession] = [:]
        var elsewhere: Set<String> = []
        func lookup(sessionID: String, fromPath: [MSRPURI]) -> MSRPConnectionStateMachine.SessionLookup {
            if elsewhere.contains(sessionID) { return .boundElsewhere }
            return sessions[sessionID].map { .found($0) } ?? .unknown
        }
        func relayDecision(for request: MSRPRequestHead) -> MSRPRelayRole.Decision? { nil }
    }

    /// A machine with one session ("s1"), accepting text/plain only.
    struct Fixture {
        var machine = MSRPConnectionStateMachine(
            parserLimits: MSRPParserLimits(maxMessageBytes: 1 << 20), assemblerLimits: ChunkAssemblerLimits(), chunkSize: 2048)
        var table = Table()
        let session: MSRPSession

        init() {
            session = ConnectionStateMachineTests.endpoint.createSession(id: "s1", acceptTypes: [.textPlain], delegate: nil)
            table.sessions["s1"] = session
            table.elsewhere = ["s2"]
        }

        /// Every action the bytes lead to, in order.
        mutating func feed(_ text: String) -> [MSRPConnectionStateMachine.Action] {
            var buffer = ByteBuffer(string: text.replacingOccurrences(of: "\n", with: "\r\n"))
            var out: [MSRPConnectionStateMachine.Action] = []
            while let a = machine.next(&buffer, environment: table) { out.append(a) }
            return out
        }
    }

    static func send(
        _ tid: String, to sid: String = "s1", headers: String = "Message-ID: msg0001\nContent-Type: text/plain", body: String? = "hello",
        flag: String = "$"
    ) -> String {
        var s = "MSRP \(tid) SEND\nTo-Path: msrp://gw.example:2855/\(sid);tcp\nFrom-Path: msrp://a.example:1/x;tcp\n\(headers)\n"
        if let body { s += "\n\(body)\n" }
        return s + "-------\(tid)\(flag)\n"
    }

    /// The status of every response written, in order.
    static func statuses(_ actions: [MSRPConnectionStateMachine.Action]) -> [Int] {
        actions.compactMap {
            switch $0 {
            case .write(let r): return r.code
            case .refused(_, let r?): return r.code
            default: return nil
            }
        }
    }

    @Test func statusesOfRefusals() {
        let cases: [(String, String, [Int])] = [
            ("unknown session", Self.send("tid0001", to: "nosuch"), [481]),
            ("bound to another connection", Self.send("tid0002", to: "s2"), [506]),
            ("SEND without Message-ID", Self.send("tid0003", headers: "Content-Type: text/plain"), [400]),
            ("unacceptable content", Self.send("tid0004", headers: "Message-ID: msg0004\nContent-Type: image/png"), [415]),
            ("message over the limit", Self.send("tid0005", headers: "Message-ID: msg0005\nByte-Range: 1-5/2000000\nContent-Type: text/plain"), [413]),
            ("Failure-Report: no, unknown session", Self.send("tid0006", to: "nosuch", headers: "Message-ID: msg0006\nFailure-Report: no\nContent-Type: text/plain"), []),
            ("Failure-Report: partial, unknown session", Self.send("tid0007", to: "nosuch", headers: "Message-ID: msg0007\nFailure-Report: partial\nContent-Type: text/plain"), [481]),
            ("bodiless SEND binds", Self.send("tid0008", headers: "Message-ID: msg0008", body: nil), [200]),
        ]
        for (name, bytes, expected) in cases {
            var f = Fixture()
            #expect(Self.statuses(f.feed(bytes)) == expected, "\(name)")
        }
    }

    @Test func aMessageInTwoChunksIsDeliveredOnceWholeAndItsLastChunkWaits() {
        var f = Fixture()
        let first = f.feed(Self.send("cid0001", headers: "Message-ID: bigmessage\nByte-Range: 1-5/10\nContent-Type: text/plain", body: "hello", flag: "+"))
        #expect(Self.statuses(first) == [200])
        let last = f.feed(Self.send("cid0002", headers: "Message-ID: bigmessage\nByte-Range: 6-10/10\nContent-Type: text/plain", body: "world"))
        #expect(Self.statuses(last).isEmpty, "the last chunk's 200 waits for the owner")
        guard case .deliver(let session, let message, let head)? = last.first else {
            Issue.record("no delivery: \(last)")
            return
        }
        #expect(session === f.session)
        #expect(message.messageID == "bigmessage")
        #expect(message.size == 10)
        #expect(head.transactionID == "cid0002")
        // Failure-Report: partial means the owner's 200 is never written; an error is.
        #expect(MSRPConnectionStateMachine.response(to: head, code: 200, session: session)?.code == 200)
        var partial = head
        partial.headers.append(.failureReport(.partial))
        #expect(MSRPConnectionStateMachine.response(to: partial, code: 200) == nil)
        #expect(MSRPConnectionStateMachine.response(to: partial, code: 403)?.code == 403)
    }

    @Test func reportsAreNeverAnsweredAndOtherMethodsAskTheSession() {
        var f = Fixture()
        let report = f.feed("MSRP rid0001 REPORT\nTo-Path: msrp://gw.example:2855/s1;tcp\nFrom-Path: msrp://a.example:1/x;tcp\nMessage-ID: msg0001\nStatus: 000 200 OK\n-------rid0001$\n")
        guard case .report(_, let head)? = report.first, report.count == 1 else {
            Issue.record("\(report)")
            return
        }
        #expect(MSRPConnectionStateMachine.response(to: head, code: 400) == nil)
        let nick = f.feed("MSRP nid0001 NICKNAME\nTo-Path: msrp://gw.example:2855/s1;tcp\nFrom-Path: msrp://a.example:1/x;tcp\nUse-Nickname: \"bob\"\n-------nid0001$\n")
        guard case .ask(let session, let request)? = nick.first else {
            Issue.record("\(nick)")
            return
        }
        #expect(MSRPConnectionStateMachine.answer(request, decision: .unknownMethod, session: session)?.code == 501)
        #expect(MSRPConnectionStateMachine.answer(request, decision: .respond(code: 425, comment: "taken", headers: []), session: session)?.code == 425)
    }

    @Test func responsesGoToTheSenderSide() {
        var f = Fixture()
        let actions = f.feed("MSRP xid0001 200 OK\nTo-Path: msrp://a.example:1/x;tcp\nFrom-Path: msrp://gw.example:2855/s1;tcp\n-------xid0001$\n")
        guard case .response(let r)? = actions.first else {
            Issue.record("\(actions)")
            return
        }
        #expect(r.transactionID == "xid0001")
    }

    @Test func garbageClosesTheConnectionOnce() {
        var f = Fixture()
        let actions = f.feed("HELLO THERE\n\n")
        guard case .close? = actions.first else {
            Issue.record("\(actions)")
            return
        }
        #expect(f.machine.isClosed)
        #expect(f.feed(Self.send("tid0001")).isEmpty)
    }

    @Test func closingTellsEveryBoundSession() {
        var f = Fixture()
        _ = f.feed(Self.send("bid0001", headers: "Message-ID: msg0008", body: nil))
        #expect(f.machine.sessions.keys.sorted() == ["s1"])
        #expect(f.machine.close().map(\.id) == ["s1"])
        #expect(f.machine.sessions.isEmpty)
    }
}
