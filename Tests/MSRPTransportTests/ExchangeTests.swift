import Foundation
import Logging
import MSRP
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import TestPeers

@testable import MSRPTransport

/// Two endpoints on loopback, over TCP and TLS: a 10 MiB message in 2 KiB and in
/// 64 KiB chunks, interleaved with short messages, with success reports, and a
/// message abandoned half-way (sent with "#").
@Suite(.serialized) struct ExchangeTests {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    struct Pair {
        var sender: MSRPEndpoint
        var receiver: MSRPEndpoint
        var outgoing: MSRPSession
        var incoming: MSRPSession
        var delegate: RecordingDelegate
        var senderDelegate: RecordingDelegate
    }

    static func makePair(
        secure: Bool, chunkSize: Int, policy: RecordingDelegate.AckPolicy = .acceptNow, maxMessage: Int64 = 64 << 20
    ) async throws -> Pair {
        var serverConfig = MSRPTransportConfiguration(
            parserLimits: MSRPParserLimits(maxMessageBytes: maxMessage),
            assemblerLimits: ChunkAssemblerLimits(memoryThreshold: 1 << 20, maxMessageBytes: maxMessage, spoolDirectory: try Scratch.directory("spool")),
            chunkSize: chunkSize,
            // The connection binds at the first request after the connect; a loaded
            // run's first minute once starved that past the default 30 s.
            bindTimeout: .seconds(600))
        var clientConfig = MSRPTransportConfiguration(chunkSize: chunkSize, pieceSize: min(chunkSize, 16 * 1024))
        if secure {
            let certs = try await TestCertificates.make()
            serverConfig.tlsServer = try certs.serverTLS()
            clientConfig.tlsClient = try certs.clientTLS()
        }
        let receiver = try MSRPEndpoint(configuration: serverConfig, group: group)
        try await receiver.listen(host: "127.0.0.1", port: 0, secure: secure)
        let sender = try MSRPEndpoint(configuration: clientConfig, group: group)
        let delegate = RecordingDelegate(policy: policy)
        let senderDelegate = RecordingDelegate()
        let incoming = receiver.createSession(secure: secure, setup: .passive, delegate: delegate)
        let outgoing = sender.createSession(secure: secure, setup: .active, remotePath: [incoming.localURI], delegate: senderDelegate)
        incoming.remotePath = [outgoing.localURI]
        try await outgoing.connect()
        return Pair(sender: sender, receiver: receiver, outgoing: outgoing, incoming: incoming, delegate: delegate, senderDelegate: senderDelegate)
    }

    @Test(arguments: [false, true], [2048, 65536])
    func largeMessageInterleavedWithShortOnes(secure: Bool, chunkSize: Int) async throws {
        let pair = try await Self.makePair(secure: secure, chunkSize: chunkSize)
        defer { Task { await pair.sender.shutdown(); await pair.receiver.shutdown() } }
        let big = PatternBody(size: 10 << 20)
        let bigMessage = MSRPOutgoingMessage(
            messageID: "big0message", contentType: .init(type: "application", subtype: "octet-stream"), body: big,
            successReport: .yes)
        async let bigOutcome = pair.outgoing.send(bigMessage)
        let shortOutcomes = try await withThrowingTaskGroup(of: MSRPSendOutcome.self) { group in
            for i in 0..<20 {
                group.addTask { try await pair.outgoing.send(MSRPOutgoingMessage(messageID: "short\(i)x", text: "short message \(i)")) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(try await bigOutcome == .accepted)
        #expect(shortOutcomes.allSatisfy { $0 == .accepted })

        let messages = await pair.delegate.waitMessages(21)
        #expect(messages.count == 21)
        let bigReceived = try #require(messages.first { $0.message.messageID == "big0message" })
        #expect(bigReceived.message.size == big.size)
        #expect(try bodyBytes(bigReceived.message) == big.bytes)
        for i in 0..<20 {
            let m = try #require(messages.first { $0.message.messageID == "short\(i)x" })
            #expect(try bodyBytes(m.message) == Array("short message \(i)".utf8))
        }
        // The success report for the big message covers all of it.
        let reports = await pair.senderDelegate.waitReports(1)
        #expect(reports.first?.headers.messageID == "big0message")
        #expect(reports.first?.headers.status?.code == 200)
        #expect(reports.first?.headers.byteRange == ByteRange(start: 1, end: 10 << 20, total: 10 << 20))
    }

    @Test(arguments: [false, true])
    func abandonedMessageIsAbortedAndTheSessionGoesOn(secure: Bool) async throws {
        let pair = try await Self.makePair(secure: secure, chunkSize: 65536, maxMessage: 4 << 30)
        defer { Task { await pair.sender.shutdown(); await pair.receiver.shutdown() } }
        let readUpTo = NIOLockedValueBox<Int64>(0)
        let task = Task {
            try await pair.outgoing.send(MSRPOutgoingMessage(
                messageID: "abandoned1", contentType: .textPlain, body: PatternBody(size: 3 << 30, readUpTo: readUpTo)))
        }
        // Abandoned once it is on its way (a few chunks read), not before.
        #expect(await until(.seconds(20)) { readUpTo.withLockedValue { $0 } > 256 * 1024 })
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        // The session still works, and the abandoned message never arrives.
        #expect(try await pair.outgoing.send(MSRPOutgoingMessage(messageID: "after0abort", text: "still here")) == .accepted)
        let messages = await pair.delegate.waitMessages(1)
        #expect(messages.map(\.message.messageID) == ["after0abort"])
    }

    /// The receiver refuses the first chunk while it is still being written: the
    /// sender stops at once (the chunk ends with "#") and reports the 413.
    @Test func earlyErrorResponseStopsTheMessage() async throws {
        let pair = try await Self.makePair(secure: false, chunkSize: 1 << 20, maxMessage: 1 << 20)
        defer { Task { await pair.sender.shutdown(); await pair.receiver.shutdown() } }
        let taken = NIOLockedValueBox<Int64>(0)
        let outcome = try await pair.outgoing.send(MSRPOutgoingMessage(
            messageID: "toolarge01", contentType: .textPlain, body: PatternBody(size: 1 << 30, readUpTo: taken)))
        guard case .rejected(code: 413, _) = outcome else {
            Issue.record("expected a 413, got \(outcome)")
            return
        }
        // Measured in bytes, not seconds (a busy machine made a time bound flaky):
        // the sender stopped within a few socket buffers of the receiver's 1 MiB.
        let read = taken.withLockedValue { $0 }
        #expect(read < 64 << 20, "the sender kept sending after the 413: \(read) of 1 GiB read")
        #expect(try await pair.outgoing.send(MSRPOutgoingMessage(messageID: "small00001", text: "fits")) == .accepted)
    }

    @Test func sessionsShareOneConnection() async throws {
        let pair = try await Self.makePair(secure: false, chunkSize: 2048)
        defer { Task { await pair.sender.shutdown(); await pair.receiver.shutdown() } }
        let second = RecordingDelegate()
        let inbox2 = pair.receiver.createSession(delegate: second)
        let out2 = pair.sender.createSession(setup: .active, remotePath: [inbox2.localURI], delegate: nil)
        try await out2.connect()
        #expect(pair.sender.connectionCount == 1)
        #expect(out2.connection === pair.outgoing.connection)
        #expect(try await out2.send(MSRPOutgoingMessage(messageID: "toSecond1", text: "two")) == .accepted)
        #expect(try await pair.outgoing.send(MSRPOutgoingMessage(messageID: "toFirst01", text: "one")) == .accepted)
        #expect(await second.waitMessages(1).map(\.message.messageID) == ["toSecond1"])
        #expect(await pair.delegate.waitMessages(1).map(\.message.messageID) == ["toFirst01"])
    }

    @Test func deferredAcknowledgementHoldsThe200() async throws {
        let pair = try await Self.makePair(secure: false, chunkSize: 2048, policy: .hold)
        defer { Task { await pair.sender.shutdown(); await pair.receiver.shutdown() } }
        let done = NIOLockedValueBox(false)
        let send = Task {
            defer { done.withLockedValue { $0 = true } }
            return try await pair.outgoing.send(MSRPOutgoingMessage(messageID: "held00001", text: String(repeating: "x", count: 5000)))
        }
        let messages = await pair.delegate.waitMessages(1)
        #expect(messages.count == 1)
        try await Task.sleep(for: .milliseconds(300))
        // Not answered yet: the message is not "durable" until the owner says so.
        #expect(done.withLockedValue { $0 } == false)
        messages[0].acknowledgement.accept()
        messages[0].acknowledgement.reject(code: 400)  // a second answer is ignored
        #expect(try await send.value == .accepted)
    }

    @Test func rejectionReachesTheSender() async throws {
        let pair = try await Self.makePair(secure: false, chunkSize: 2048, policy: .reject(413))
        defer { Task { await pair.sender.shutdown(); await pair.receiver.shutdown() } }
        let outcome = try await pair.outgoing.send(MSRPOutgoingMessage(messageID: "rejected1", text: "nope"))
        #expect(outcome == .rejected(code: 413, comment: "test rejects"))
    }

    @Test func systemMessageGetsNoResponse() async throws {
        let pair = try await Self.makePair(secure: false, chunkSize: 2048, policy: .hold)
        defer { Task { await pair.sender.shutdown(); await pair.receiver.shutdown() } }
        // Failure-Report: no resolves as soon as it is written; nothing ever comes back.
        #expect(try await pair.outgoing.send(.system("This conference will end in 5 minutes")) == .sent)
        let messages = await pair.delegate.waitMessages(1)
        #expect(messages.first?.failureReport == .no)
        messages.first?.acknowledgement.reject(code: 500)
    }

    @Test func closingTheConnectionEndsTheSession() async throws {
        let pair = try await Self.makePair(secure: false, chunkSize: 2048)
        defer { Task { await pair.sender.shutdown(); await pair.receiver.shutdown() } }
        pair.outgoing.connection?.close()
        _ = await until(.seconds(15), every: .milliseconds(5)) { !pair.delegate.closedReasons.isEmpty }
        #expect(pair.delegate.closedReasons == [.connectionLost])
        #expect(pair.receiver.session(id: pair.incoming.id) == nil)
    }
}
