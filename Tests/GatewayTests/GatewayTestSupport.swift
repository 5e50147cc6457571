import CPIM
import Events
import Foundation
import Logging
import MSRP
import MSRPTransport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Queue
import SDP
import GatewayTesting
import Testing
import TestPeers

@testable import Gateway

/// An MSRP peer of the gateway: an endpoint with one session, offered to the
/// gateway as SDP and connected; keeps the REPORTs, responses and messages it gets.
final class TestPeer: MSRPSessionDelegate, @unchecked Sendable {
    let endpoint: MSRPEndpoint
    private(set) var session: MSRPSession!
    private let lock = NSLock()
    private var reportsStore: [MSRPRequestHead] = []
    private var messagesStore: [(head: MSRPRequestHead, body: [UInt8])] = []

    var reports: [MSRPRequestHead] { lock.withLock { reportsStore } }
    var messages: [(head: MSRPRequestHead, body: [UInt8])] { lock.withLock { messagesStore } }

    init(group: any EventLoopGroup) throws {
        endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(chunkSize: 4096), group: group)
    }

    /// Offers a session to `gateway` and connects to its answer.
    func join(_ gateway: Gateway, peer: String? = "sip:alice@example.com", route: String? = nil,
              acceptWrapped: [String] = ["text/plain", "message/imdn+xml"]) async throws -> GatewaySession {
        let local = endpoint.createSession(setup: .active, acceptTypes: [.messageCPIM, .textPlain], delegate: self)
        session = local
        let offer = MSRPOfferAnswer.answerDescription(
            media: MSRPMedia(port: 9, path: [local.localURI.description], acceptTypes: ["message/cpim", "text/plain"],
                             acceptWrappedTypes: acceptWrapped, setup: .active),
            host: "127.0.0.1", sessionVersion: 1)
        let (gs, answer) = try await gateway.createSession(offer: offer, peer: peer, route: route)
        local.remotePath = try answer.msrpMedia().media.path.map { try MSRPURI($0) }
        try await local.connect()
        return gs
    }

    func send(cpim: String, id: String = MSRPIdentifier.make(), successReport: SuccessReport = .yes, failureReport: FailureReport = .yes) async throws -> MSRPSendOutcome {
        let body = Array(cpim.replacingOccurrences(of: "\n", with: "\r\n").utf8)
        return try await session.send(MSRPOutgoingMessage(
            messageID: id, contentType: .messageCPIM, body: MemoryBodySource(ByteBuffer(bytes: body)),
            successReport: successReport, failureReport: failureReport))
    }

    /// NICKNAME (RFC 7701) with `Use-Nickname: "name"`; the response code.
    func nickname(_ name: String) async throws -> Int {
        try await session.request(MSRPRequestHead(
            transactionID: MSRPIdentifier.make(), method: .nickname, toPath: session.remotePath, fromPath: [session.localURI],
            headers: [.useNickname("\"\(name)\"")]), body: nil).code
    }

    func session(_ session: MSRPSession, didReceive message: MSRPIncomingMessage) {
        var bytes: [UInt8] = []
        if case .memory(let b) = message.message.body { bytes = Array(b.readableBytesView) }
        lock.withLock { messagesStore.append((message.head, bytes)) }
        message.acknowledgement.accept()
    }

    func session(_ session: MSRPSession, didReceiveReport report: MSRPRequestHead) {
        lock.withLock { reportsStore.append(report) }
    }

    /// IMDN notifications received (CPIM-wrapped message/imdn+xml).
    var imdns: [IMDNNotification] {
        messages.compactMap { m in
            guard let cpim = try? CPIMParser().parse(m.body), cpim.contentType == IMDN.contentType else { return nil }
            return try? IMDNNotification(xml: cpim.content)
        }
    }
}

/// Waits for `condition`, polling; fails the test with `what` on timeout. The
/// default bound is generous: the whole suite runs in parallel on two cores in CI,
/// where a delivery and its REPORT once took over 5 s (a few ms alone), and over
/// 20 s in the first minute of a full run with a core loaded.
func eventually(_ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async rethrows {
    let held = try await until(timeout, condition)
    #expect(held, "timed out waiting for \(what)")
}

func cpim(from: String = "sip:alice@example.com", to: String = "sip:ops@gw.example", imdn: String? = "positive-delivery, negative-delivery",
          type: String = "text/plain", body: String = "hello") -> String {
    var s = "From: Alice <\(from)>\nTo: <\(to)>\nDateTime: 2026-11-24T10:00:00Z\n"
    if let imdn { s += "NS: imdn <urn:ietf:params:imdn>\nimdn.Message-ID: imdn-1\nimdn.Disposition-Notification: \(imdn)\n" }
    return s + "\nContent-Type: \(type)\n\n" + body
}
