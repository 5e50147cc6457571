import NIOConcurrencyHelpers
import NIOCore

/// Why a request we sent got no final response.
public struct SIPClientError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// Timer B or F fired: no final response within 64*T1 (RFC 3261 §17.1).
        case timeout
        /// No UDP socket to send from (the UA is not listening on UDP).
        case noTransport
        /// The UA shut down while the request was pending.
        case shutDown
        /// A request without a top Via branch cannot be matched to its responses.
        case invalidRequest
    }

    public var kind: Kind
    public var detail: String

    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { "\(kind.rawValue): \(detail)" }
}

/// Client transactions (RFC 3261 §17.1) over UDP: retransmission with timers
/// A/E, time-out with timers B/F, responses matched by the top Via's branch and
/// the CSeq method (§17.1.3), the ACK for a non-2xx final response to an INVITE
/// sent here (§17.1.1.3), and retransmitted 2xx answered by re-sending the ACK
/// its dialog sent (§13.2.2.4).
final class SIPClientTransactions: @unchecked Sendable {
    private struct Key: Hashable {
        var branch: String
        var method: String
    }

    private struct Pending {
        var request: SIPRequest
        var bytes: [UInt8]
        var destination: SocketAddress
        var continuation: CheckedContinuation<SIPResponse, any Error>?
        var provisional = false
        var retransmit: Scheduled<Void>?
        var timeout: Scheduled<Void>?
    }

    private let loop: any EventLoop
    private let t1: TimeAmount
    private let t2: TimeAmount
    private let state = NIOLockedValueBox<[Key: Pending]>([:])
    /// The ACKs of answered INVITEs, by Call-ID and CSeq number, kept for 64*T1
    /// to answer retransmitted 2xx.
    private let acks = NIOLockedValueBox<[String: (bytes: [UInt8], destination: SocketAddress, expires: NIODeadline)]>([:])
    private let send: @Sendable ([UInt8], SocketAddress) -> Bool

    init(loop: any EventLoop, t1: TimeAmount, t2: TimeAmount, send: @escaping @Sendable ([UInt8], SocketAddress) -> Bool) {
        self.loop = loop
        self.t1 = t1
        self.t2 = t2
        self.send = send
    }

    /// Sends `request` (its top Via carries the branch) and returns its final
    /// response; provisional responses only stop INVITE retransmissions.
    func start(_ request: SIPRequest, to destination: SocketAddress) async throws -> SIPResponse {
        guard let branch = request.headers.vias.first?.branch else {
            throw SIPClientError(.invalidRequest, "\(request.method) has no Via branch to match responses by")
        }
        let key = Key(branch: branch, method: request.method)
        let bytes = SIPMessage.request(request).serialized
        return try await withCheckedThrowingContinuation { continuation in
            state.withLockedValue { s in
                s[key] = Pending(request: request, bytes: bytes, destination: destination, continuation: continuation)
            }
            guard send(bytes, destination) else {
                finish(key, with: .failure(SIPClientError(.noTransport, "no UDP listener to send \(request.method) from")))
                return
            }
            let t1 = self.t1
            let timeout = loop.scheduleTask(in: t1 * 64) { [weak self] () -> Void in
                guard let self else { return }
                self.finish(key, with: .failure(SIPClientError(.timeout, "no final response to \(request.method) \(request.uri) in \((t1 * 64).nanoseconds / 1_000_000) ms")))
            }
            state.withLockedValue { s in s[key]?.timeout = timeout }
            scheduleRetransmit(key, interval: t1)
        }
    }

    private func scheduleRetransmit(_ key: Key, interval: TimeAmount) {
        let t2 = self.t2
        let task = loop.scheduleTask(in: interval) { [weak self] in
            guard let self else { return }
            let found: ([UInt8], SocketAddress, Bool)? = self.state.withLockedValue { s in
                s[key].map { ($0.bytes, $0.destination, $0.provisional) }
            }
            guard let (bytes, destination, provisional) = found else { return }
            if key.method == "INVITE" {
                guard !provisional else { return }  // Timer A stops at the first provisional response
                _ = self.send(bytes, destination)
                self.scheduleRetransmit(key, interval: interval * 2)
            } else {
                _ = self.send(bytes, destination)
                // Timer E: doubling up to T2; after a provisional response, every T2.
                self.scheduleRetransmit(key, interval: provisional ? t2 : min(interval * 2, t2))
            }
        }
        state.withLockedValue { s in s[key]?.retransmit = task }
    }

    /// A response from the network; false when no transaction of ours matches it.
    func receive(_ response: SIPResponse) -> Bool {
        guard let branch = response.headers.vias.first?.branch, let method = response.headers.cseq?.method else { return false }
        let key = Key(branch: branch, method: method)
        if response.code < 200 {
            return state.withLockedValue { s in
                guard s[key] != nil else { return false }
                s[key]?.provisional = true
                return true
            }
        }
        guard let pending = state.withLockedValue({ $0[key] }) else {
            // A retransmitted final response to an INVITE whose transaction is over:
            // its ACK again (timer D for failures, §13.2.2.4 for 2xx).
            if method == "INVITE", let ack = ackFor(response) { _ = send(ack.bytes, ack.destination) }
            return method == "INVITE"
        }
        if method == "INVITE", response.code >= 300 {
            let ack = Self.ack(for: pending.request, response: response)
            _ = send(ack, pending.destination)
            rememberAck(ack, callID: response.headers.callID ?? "", cseq: response.headers.cseq?.number ?? 0, destination: pending.destination)
        }
        finish(key, with: .success(response))
        return true
    }

    /// Records the ACK a dialog sent for a 2xx, to repeat it for retransmissions.
    func rememberAck(_ ack: [UInt8], callID: String, cseq: UInt32, destination: SocketAddress) {
        let expires = NIODeadline.now() + t1 * 64
        acks.withLockedValue { a in
            let now = NIODeadline.now()
            a = a.filter { $0.value.expires > now }
            a["\(callID) \(cseq)"] = (ack, destination, expires)
        }
    }

    private func ackFor(_ response: SIPResponse) -> (bytes: [UInt8], destination: SocketAddress)? {
        guard let callID = response.headers.callID, let cseq = response.headers.cseq else { return nil }
        return acks.withLockedValue { a in a["\(callID) \(cseq.number)"].map { ($0.bytes, $0.destination) } }
    }

    /// Fails every pending request (shutdown).
    func cancelAll() {
        for key in state.withLockedValue({ Array($0.keys) }) {
            finish(key, with: .failure(SIPClientError(.shutDown, "the user agent stopped")))
        }
    }

    private func finish(_ key: Key, with result: Result<SIPResponse, any Error>) {
        guard let pending = state.withLockedValue({ $0.removeValue(forKey: key) }) else { return }
        pending.retransmit?.cancel()
        pending.timeout?.cancel()
        pending.continuation?.resume(with: result)
    }

    /// The ACK for a non-2xx final response (§17.1.1.3): same Request-URI, branch,
    /// Call-ID, From and Route; the response's To; CSeq method ACK.
    static func ack(for invite: SIPRequest, response: SIPResponse) -> [UInt8] {
        var h = SIPHeaders()
        if let via = invite.headers["Via"] { h.add("Via", via) }
        if let from = invite.headers["From"] { h.add("From", from) }
        if let to = response.headers["To"] { h.add("To", to) }
        if let callID = invite.headers.callID { h.add("Call-ID", callID) }
        h.add("CSeq", "\(invite.headers.cseq?.number ?? 1) ACK")
        for route in invite.headers.values("Route") { h.add("Route", route) }
        h.add("Max-Forwards", "70")
        return SIPMessage.request(SIPRequest(method: "ACK", uri: invite.uri, headers: h)).serialized
    }
}
