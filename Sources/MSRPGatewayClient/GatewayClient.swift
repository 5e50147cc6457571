import AsyncHTTPClient
import CPIM
import Foundation
import MSRP
import MSRPTransport
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import SDP

/// An MSRP chat client of the gateway, as a script or the demo uses it: it
/// offers a session through the HTTP API, connects to the answered path, sends
/// CPIM messages and keeps what comes back (REPORTs, IMDNs, messages).
public final class GatewayClient: MSRPSessionDelegate, @unchecked Sendable {
    public struct Received: Sendable {
        public var contentType: String
        public var text: String
        public var cpim: CPIMMessage?
        /// Sent as a system message (`Failure-Report: no`).
        public var system: Bool
    }

    public enum Failure: Error, CustomStringConvertible {
        case api(String)
        public var description: String { if case .api(let s) = self { return s } else { return "" } }
    }

    public let name: String
    public let address: String
    private let endpoint: MSRPEndpoint
    private let http: HTTPClient
    private let api: String
    private let token: String?
    private let lock = NIOLock()
    private var reports: [MSRPRequestHead] = []
    private var received: [Received] = []
    private var onEvent: @Sendable (String) -> Void
    public private(set) var session: MSRPSession?
    /// Whether it answers `Success-Report: yes` with a success REPORT once it
    /// has a message (as RFC 4975 §7.1.2 says a client must; off to play one that does not).
    public var sendsSuccessReports = true
    /// Content types it takes inside CPIM besides text and IMDNs (an image, to
    /// play a client that shows pictures).
    public var moreWrappedTypes: [String] = []
    public private(set) var sessionID: String?

    public init(name: String, address: String, endpoint: MSRPEndpoint, http: HTTPClient, api: String, token: String?,
         onEvent: @escaping @Sendable (String) -> Void = { _ in }) {
        self.name = name
        self.address = address
        self.endpoint = endpoint
        self.http = http
        self.api = api
        self.token = token
        self.onEvent = onEvent
    }

    /// Offers a session (we connect: setup active), connects and binds it.
    public func open(route: String? = nil) async throws {
        let local = endpoint.createSession(setup: .active, acceptTypes: [.messageCPIM, .textPlain], delegate: self)
        let media = MSRPMedia(
            port: local.localURI.port ?? 9, path: [local.localURI.description], acceptTypes: ["message/cpim", "text/plain"],
            acceptWrappedTypes: ["text/plain", "message/imdn+xml"] + moreWrappedTypes, setup: .active)
        let offer = MSRPOfferAnswer.answerDescription(media: media, host: "127.0.0.1", sessionVersion: 1)
        var query = "?peer=\(address.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"
        if let route { query += "&route=\(route.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
        let (status, body, headers) = try await call("POST", "/v1/sessions" + query, body: offer.text, contentType: "application/sdp")
        guard status == 201 else { throw Failure.api("POST /v1/sessions answered \(status): \(body)") }
        let answer = try SDPParser().parse(body).msrpMedia().media
        local.remotePath = try answer.path.map { try MSRPURI($0) }
        try await local.connect()
        session = local
        sessionID = headers["Msrpgw-Session-Id"].first
    }

    /// Sends a CPIM message to `to` and returns the transaction outcome.
    public func send(_ text: String, to: String, messageID: String = MSRPIdentifier.make(), successReport: Bool = true,
              failureReport: FailureReport = .yes, imdn: [IMDNDisposition] = [.positiveDelivery, .negativeDelivery],
              contentType: String = "text/plain;charset=UTF-8", subject: String? = nil) async throws -> MSRPSendOutcome {
        guard let session else { throw Failure.api("no session") }
        var extra: [CPIMHeader] = []
        var namespaces: [(prefix: String, uri: String)] = []
        if !imdn.isEmpty {
            namespaces.append(("imdn", IMDN.namespace))
            extra = IMDNRequest(messageID: "imdn-" + messageID, dispositions: imdn).headers
        }
        let cpim = CPIMMessage.make(
            from: CPIMAddress(displayName: name, uri: address), to: [CPIMAddress(uri: to)], dateTime: ISO8601DateFormatter().string(from: Date()),
            subject: subject.map { CPIMSubject($0) }, namespaces: namespaces, extraHeaders: extra, contentType: contentType, content: Array(text.utf8))
        let message = MSRPOutgoingMessage(
            messageID: messageID, contentType: .messageCPIM, body: MemoryBodySource(ByteBuffer(bytes: cpim.serialized)),
            successReport: successReport ? .yes : .no, failureReport: failureReport)
        return try await session.send(message)
    }

    /// Answers a received message's IMDN request (RFC 5438): a `displayed`
    /// notification (kind display) to its sender, when it asked for one.
    public func notifyDisplayed(_ received: Received, messageID: String = MSRPIdentifier.make()) async throws -> MSRPSendOutcome? {
        guard let session, let original = received.cpim, let request = IMDNRequest(original), request.dispositions.contains(.display),
              let sender = original.from else { return nil }
        let now = ISO8601DateFormatter().string(from: Date())
        let notification = IMDNNotification(messageID: request.messageID, dateTime: original.dateTime ?? now, recipientURI: address,
                                            kind: .display, status: "displayed")
        let cpim = notification.cpim(from: CPIMAddress(displayName: name, uri: address), to: sender, notificationID: MSRPIdentifier.make(length: 20), dateTime: now)
        let message = MSRPOutgoingMessage(
            messageID: messageID, contentType: .messageCPIM, body: MemoryBodySource(ByteBuffer(bytes: cpim.serialized)), successReport: .no, failureReport: .yes)
        return try await session.send(message)
    }

    /// Calls the API; returns status, body and headers.
    public func call(_ method: String, _ path: String, body: String? = nil, contentType: String = "application/json") async throws -> (Int, String, HTTPHeaders) {
        var request = HTTPClientRequest(url: api + path)
        request.method = .init(rawValue: method)
        if let token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "content-type", value: contentType)
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await http.execute(request, timeout: .seconds(10))
        let data = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: data), response.headers)
    }

    // MARK: - What came back

    public var allReports: [MSRPRequestHead] { lock.withLock { reports } }
    public var allReceived: [Received] { lock.withLock { received } }

    /// Waits until `condition` holds or `timeout` passes; returns whether it held.
    public func wait(timeout: Duration, until condition: @Sendable (GatewayClient) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(self) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition(self)
    }

    public func session(_ session: MSRPSession, didReceive message: MSRPIncomingMessage) {
        var bytes: [UInt8] = []
        if case .memory(let b) = message.message.body { bytes = Array(b.readableBytesView) }
        let type = message.head.headers.contentType?.essence ?? "text/plain"
        var item = Received(contentType: type, text: String(decoding: bytes, as: UTF8.self), cpim: nil, system: message.failureReport == .no)
        if type == "message/cpim", let cpim = try? CPIMParser().parse(bytes) {
            item.cpim = cpim
            item.contentType = cpim.contentType ?? "?"
            item.text = String(decoding: cpim.content, as: UTF8.self)
        }
        lock.withLock { received.append(item) }
        message.acknowledgement.accept()
        // The whole message is here: the sender asked to be told (RFC 4975 §7.1.2).
        if message.successReport == .yes, sendsSuccessReports {
            let report = MSRPReportBuilder(reportingOn: message.head, local: session.localURI).success(range: .whole(Int64(bytes.count)))
            try? session.sendReport(report, body: nil)
        }
        if item.contentType.hasPrefix("message/imdn+xml"), let n = try? IMDNNotification(xml: Array(item.text.utf8)) {
            onEvent("IMDN \(n.status) for \(n.messageID)")
        } else {
            onEvent("message (\(item.contentType)\(item.system ? ", system" : "")): \(item.text)")
        }
    }

    public func session(_ session: MSRPSession, didReceiveReport report: MSRPRequestHead) {
        lock.withLock { reports.append(report) }
        onEvent("REPORT for \(report.headers.messageID ?? "?"): \(report.headers.status?.description ?? "no status")")
    }
}
