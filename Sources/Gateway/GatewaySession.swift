import Admission
import Foundation
import MSRPTransport
import NIOConcurrencyHelpers
import NIOCore
import SDP

/// An MSRP session the gateway terminates, with what was negotiated for it.
public final class GatewaySession: Sendable {
    public let msrp: MSRPSession
    /// Who the peer is (`sip:alice@example.com`), when whoever set the session up
    /// said so: its CPIM `From` must match, and messages routed to this address
    /// reach this session.
    public let peerAddress: String?
    /// The route address for its messages that have no CPIM `To`.
    public let route: String?
    public let peerAcceptTypes: [String]
    public let peerAcceptWrappedTypes: [String]
    public let peerMaxSize: Int64?
    public let createdAt: Date
    /// Closes the session if nobody connects to it in time; cancelled when it
    /// ends, so that a closed session is freed at once (a task sleeping out the
    /// time-out kept ~4 KiB per session for a minute).
    let bindTimer = NIOLockedValueBox<Scheduled<Void>?>(nil)
    /// What the peer may still send now (`sessionMessageRate`), if limited.
    let inbound: NIOLockedValueBox<TokenBucket>?
    /// Success REPORTs awaited for messages sent on this session.
    let reports = ReportWaiters()

    public var id: String { msrp.id }

    init(msrp: MSRPSession, peerAddress: String?, route: String?, negotiation: MSRPNegotiation, messageRate: RateLimit? = nil,
         createdAt: Date = Date()) {
        self.msrp = msrp
        self.inbound = messageRate.map { NIOLockedValueBox(TokenBucket($0)) }
        self.peerAddress = peerAddress
        self.route = route
        self.peerAcceptTypes = negotiation.peerAcceptTypes
        self.peerAcceptWrappedTypes = negotiation.peerAcceptWrappedTypes
        self.peerMaxSize = negotiation.peerMaxSize
        self.createdAt = createdAt
    }

    /// Whether the peer takes `type` as a message body.
    public func peerAccepts(_ type: String) -> Bool {
        peerAcceptTypes.contains { MSRPOfferAnswer.matches($0, type) }
    }

    /// Whether the peer takes `type` wrapped in message/cpim.
    public func peerAcceptsWrapped(_ type: String) -> Bool {
        peerAccepts("message/cpim") && peerAcceptWrappedTypes.contains { MSRPOfferAnswer.matches($0, type) }
    }
}

/// The live sessions, by id and by peer address.
final class SessionDirectory: Sendable {
    private struct State {
        var byID: [String: GatewaySession] = [:]
        var byPeer: [String: [String]] = [:]
    }

    private let state = NIOLockedValueBox(State())

    func insert(_ s: GatewaySession) {
        state.withLockedValue { st in
            st.byID[s.id] = s
            if let peer = s.peerAddress.flatMap(RouteTable.normalize) { st.byPeer[peer, default: []].append(s.id) }
        }
    }

    @discardableResult
    func remove(_ id: String) -> GatewaySession? {
        state.withLockedValue { st in
            guard let s = st.byID.removeValue(forKey: id) else { return nil }
            if let peer = s.peerAddress.flatMap(RouteTable.normalize) {
                st.byPeer[peer]?.removeAll { $0 == id }
                if st.byPeer[peer]?.isEmpty == true { st.byPeer[peer] = nil }
            }
            return s
        }
    }

    func session(_ id: String) -> GatewaySession? { state.withLockedValue { $0.byID[id] } }

    func sessions(of peer: String) -> [GatewaySession] {
        guard let key = RouteTable.normalize(peer) else { return [] }
        return state.withLockedValue { st in (st.byPeer[key] ?? []).compactMap { st.byID[$0] } }
    }

    var all: [GatewaySession] { state.withLockedValue { Array($0.byID.values) } }
    var count: Int { state.withLockedValue { $0.byID.count } }
}
