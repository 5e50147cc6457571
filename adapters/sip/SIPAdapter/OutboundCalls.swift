import Foundation
import Gateway
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SDP
import SIP

/// Calls out to deliver what waits for a SIP peer with no live session (an ops
/// alert to `sip:oncall@example.com`): INVITE with an MSRP offer through the
/// outbound proxy (digest answered by `SIPClient`), ACK, the MSRP session
/// connected and the waiting messages let go, then BYE once nothing is left for
/// that peer for `hangupAfter`. One call per peer at a time; after a failed call
/// the peer is not called again for `redialAfter` (its messages keep waiting,
/// until their age runs out and the senders get a failure report).
public final class OutboundCalls: Sendable {
    public struct Configuration: Sendable {
        public var hangupAfter: Duration = .seconds(2)
        public var redialAfter: Duration = .seconds(60)
        /// Who we are in From (the registered AOR, else the gateway identity).
        public var identity: String

        public init(hangupAfter: Duration = .seconds(2), redialAfter: Duration = .seconds(60), identity: String) {
            self.hangupAfter = hangupAfter
            self.redialAfter = redialAfter
            self.identity = identity
        }
    }

    /// What a live call needs for its in-dialog requests (RFC 3261 §12.2.1.1).
    private struct Call {
        var peer: String
        var callID: String
        var from: NameAddr
        var to: NameAddr
        var remoteTarget: String
        var routes: [String]
        var cseq: UInt32
        var destination: SocketAddress
    }

    private struct State {
        var dialing: Set<String> = []
        var failedAt: [String: ContinuousClock.Instant] = [:]
        var calls: [String: Call] = [:]
    }

    private let gateway: Gateway
    private let client: SIPClient
    private let configuration: Configuration
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    public init(gateway: Gateway, client: SIPClient, configuration: Configuration, logger: Logger) {
        self.gateway = gateway
        self.client = client
        self.configuration = configuration
        self.logger = logger
    }

    /// Calls live now (for tests and the API).
    public var liveCalls: Int { state.withLockedValue { $0.calls.count } }

    /// A message waits for `peer`: call it, unless a call is under way or failed lately.
    public func dial(_ peer: String) {
        guard let address = SIPAddress(peer), address.user != nil else { return }  // sip:/sips: users only
        let redial = configuration.redialAfter
        let go: Bool = state.withLockedValue { s in
            if s.dialing.contains(peer) || s.calls.values.contains(where: { $0.peer == peer }) { return false }
            if let failed = s.failedAt[peer], ContinuousClock.now - failed < redial { return false }
            s.dialing.insert(peer)
            return true
        }
        guard go else { return }
        Task { await self.place(peer) }
    }

    private func place(_ peer: String) async {
        let outgoing = gateway.offerSession(peer: peer)
        let callID = SIPClient.makeCallID()
        let from = NameAddr(uri: client.account?.aor ?? configuration.identity, parameters: [("tag", SIPUserAgentServer.makeTag())])
        let log = logger.with(["peer": "\(peer)", "call-id": "\(callID)"])
        do {
            let exchange = try await client.send(
                method: "INVITE", uri: peer, from: from, to: NameAddr(uri: peer), callID: callID, cseq: 1,
                headers: [SIPHeader("Content-Type", "application/sdp")], body: Array(outgoing.offer.text.utf8))
            let r = exchange.response
            guard (200..<300).contains(r.code) else { throw OutboundCallError("INVITE answered \(r.code) \(r.reason)") }
            guard let to = r.headers.to, let remoteTag = to.tag, let contact = r.headers.values("Contact").first.flatMap(NameAddr.init) else {
                throw OutboundCallError("the 200 has no To tag or Contact")
            }
            // The route set is the 2xx's Record-Route, reversed (§12.1.2); in-dialog
            // requests go to its first hop, or to the peer's Contact.
            let routes = Array(r.headers.values("Record-Route").reversed())
            let destination = try routes.first.flatMap(NameAddr.init).map { try client.destination(forHop: $0.uri) } ?? client.destination(for: contact.uri)
            let cseq = exchange.request.headers.cseq?.number ?? 1
            let call = Call(peer: peer, callID: callID, from: from, to: to, remoteTarget: contact.uri, routes: routes, cseq: cseq, destination: destination)
            sendAck(call)
            client.ua.addDialog(callID: callID, localTag: from.tag ?? "", remoteTag: remoteTag, session: outgoing.msrp.id)
            state.withLockedValue { s in
                s.calls[outgoing.msrp.id] = call
                s.dialing.remove(peer)
            }
            let answer: SessionDescription
            do { answer = try SDPParser().parse(String(decoding: r.body, as: UTF8.self)) } catch {
                throw OutboundCallError("the 200's SDP: \(error)")
            }
            do {
                let session = try await gateway.completeSession(outgoing, answer: answer)
                log.info("outbound call connected", metadata: ["session": "\(session.id)"])
                await hangUpWhenDone(session: session.id, peer: peer)
            } catch {
                // completeSession closed the session: its closure sends the BYE.
                throw OutboundCallError("\(error)")
            }
        } catch {
            log.warning("outbound call failed", metadata: ["error": "\(error)", "redial-after": "\(configuration.redialAfter)"])
            outgoing.msrp.close()
            state.withLockedValue { s in
                s.dialing.remove(peer)
                s.failedAt[peer] = .now
            }
        }
    }

    /// The ACK for the 2xx: its own Via branch, the INVITE's CSeq number.
    private func sendAck(_ call: Call) {
        let ack = client.build(
            method: "ACK", uri: call.remoteTarget, from: call.from, to: call.to, callID: call.callID, cseq: call.cseq,
            headers: call.routes.map { SIPHeader("Route", $0) }, body: [])
        client.ua.sendAck(ack, to: call.destination)
    }

    /// Waits until nothing is left for the peer for `hangupAfter`, then ends the session (and so the call).
    private func hangUpWhenDone(session: String, peer: String) async {
        let step = Duration.milliseconds(250)
        var idle = Duration.zero
        while gateway.session(session) != nil {
            try? await Task.sleep(for: step)
            let pending = (try? await gateway.pendingMessages(for: peer)) ?? 1
            idle = pending == 0 ? idle + step : .zero
            if idle >= configuration.hangupAfter {
                logger.info("outbound call done: nothing left for the peer", metadata: ["peer": "\(peer)", "session": "\(session)"])
                gateway.closeSession(session)
                return
            }
        }
    }

    /// The session of a call ended. `dialogOpen` is false when the peer's BYE ended it.
    public func sessionEnded(_ session: String, dialogOpen: Bool) {
        guard var call = state.withLockedValue({ $0.calls.removeValue(forKey: session) }), dialogOpen else { return }
        call.cseq += 1
        let c = call
        Task {
            do {
                let r = try await client.send(
                    method: "BYE", uri: c.remoteTarget, from: c.from, to: c.to, callID: c.callID, cseq: c.cseq,
                    headers: c.routes.map { SIPHeader("Route", $0) }, destination: c.destination)
                logger.info("outbound call ended", metadata: ["peer": "\(c.peer)", "bye": "\(r.response.code)"])
            } catch {
                logger.warning("BYE of an outbound call got no answer", metadata: ["peer": "\(c.peer)", "error": "\(error)"])
            }
        }
    }
}

struct OutboundCallError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Logger {
    func with(_ metadata: Logger.Metadata) -> Logger {
        var l = self
        for (k, v) in metadata { l[metadataKey: k] = v }
        return l
    }
}
