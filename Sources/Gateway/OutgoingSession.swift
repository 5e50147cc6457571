import Foundation
import MSRP
import MSRPTransport
import SDP

/// A session the gateway offers (it places the call): the MSRP side exists and
/// listens for nothing yet; it joins the live sessions once the answer comes.
public struct OutgoingSession: Sendable {
    public let msrp: MSRPSession
    public let peer: String
    /// Our relay's path (RFC 4976) at the time of the offer: first in our
    /// `a=path`, and first in the To-Path of what we send.
    public let relayPath: [MSRPURI]
    /// The SDP offer: our path, what we accept, `a=setup:active` (we connect,
    /// as RFC 4975 §5.4 has the offerer do).
    public let offer: SessionDescription
}

extension Gateway {
    /// Whoever can place a call is told each peer a message waits for that has no
    /// live session; it calls `offerSession` and then `completeSession`.
    public func onPeerNeedsSession(_ dial: @escaping @Sendable (String) -> Void) {
        dialer.withLockedValue { $0 = dial }
    }

    /// Creates the MSRP side of a call we place to `peer` and its SDP offer.
    public func offerSession(peer: String) -> OutgoingSession {
        let events = SessionEvents(ingress: ingress, sessions: sessions, rooms: chatRooms, logger: logger) { [weak self] id in self?.sessionClosed(id) }
        let msrp = endpoint.createSession(id: configuration.newSessionID(), setup: .active, acceptTypes: configuration.acceptTypes.compactMap { try? MediaType($0) }, delegate: events)
        // Through a relay the peer reaches us at the relay's path, over the relay's
        // transport (TCP/TLS/MSRP for an msrps relay); we still connect (to the
        // relay, on the connection we AUTHed on) and send the first SEND.
        let relayPath = relay?.grant?.usePath ?? []
        let media = MSRPMedia(
            port: msrp.localURI.port ?? 2855, secure: relayPath.first?.isSecure ?? false,
            path: relayPath.map(\.description) + [msrp.localURI.description], acceptTypes: configuration.acceptTypes,
            acceptWrappedTypes: configuration.acceptWrappedTypes, maxSize: configuration.maxMessageBytes, setup: .active)
        let offer = MSRPOfferAnswer.answerDescription(
            media: media, host: endpoint.configuration.advertisedHost, sessionVersion: UInt64(Date().timeIntervalSince1970))
        return OutgoingSession(msrp: msrp, peer: peer, relayPath: relayPath, offer: offer)
    }

    /// The peer answered: take its path and types, connect to it, and let what
    /// waited for the peer go. Throws (and closes the session) when the answer
    /// cannot be used or the peer cannot be reached.
    public func completeSession(_ outgoing: OutgoingSession, answer: SessionDescription) async throws(SessionSetupError) -> GatewaySession {
        let msrp = outgoing.msrp
        do throws(SessionSetupError) {
            let media: MSRPMedia
            do { media = try answer.msrpMedia().media } catch { throw SessionSetupError(status: 400, "the answer: \(error.description)") }
            guard media.setup != .active else {
                throw SessionSetupError(status: 488, "the answer is a=setup:active to our active offer (RFC 4145 wants passive)")
            }
            // The answer's types against ours, the same way as an offer's.
            let (negotiation, path) = try negotiate(media)
            guard !path.isEmpty else { throw SessionSetupError(status: 400, "the answer has no a=path") }
            msrp.remotePath = outgoing.relayPath + path
            msrp.acceptTypes = negotiation.answer.acceptTypes.compactMap { try? MediaType($0) }
            let session = GatewaySession(msrp: msrp, peerAddress: outgoing.peer, route: nil, negotiation: negotiation, messageRate: configuration.sessionMessageRate)
            sessions.insert(session)
            sessionCreated(session.id)
            do {
                try await msrp.connect()
            } catch {
                let failure = SessionSetupError.unreachable((outgoing.relayPath + path).first, error)
                logger.info("cannot reach a peer's MSRP address", metadata: ["detail": "\(failure.detail ?? "")"])
                throw failure
            }
            logger.info("session created", metadata: [
                "session": "\(session.id)", "peer": "\(outgoing.peer)", "setup": "active", "direction": "outgoing",
                "relay": "\(outgoing.relayPath.first?.description ?? "-")",
            ])
            if let peer = RouteTable.normalize(outgoing.peer) { await peerConnected(peer) }
            return session
        } catch {
            msrp.close()
            throw error
        }
    }

    /// Messages still to be delivered to `peer` over MSRP.
    public func pendingMessages(for peer: String) async throws -> Int {
        try await queue.pendingCount(adapter: "msrp", target: RouteTable.normalize(peer) ?? peer)
    }
}
