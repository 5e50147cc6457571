/// What our side can do, for answering MSRP offers (RFC 4975 §8.6, RFC 4145).
public struct MSRPCapabilities: Sendable, Hashable {
    /// Types we accept, in preference order: a gateway lists `message/cpim` first.
    public var acceptTypes: [String]
    /// Types we accept inside CPIM.
    public var acceptWrappedTypes: [String]
    public var maxSize: Int64?

    public init(acceptTypes: [String], acceptWrappedTypes: [String], maxSize: Int64? = nil) {
        self.acceptTypes = acceptTypes
        self.acceptWrappedTypes = acceptWrappedTypes
        self.maxSize = maxSize
    }
}

/// The outcome of negotiating an offer.
public struct MSRPNegotiation: Sendable, Hashable {
    /// Our side of the session, for the answer (fill in `path` once the session exists).
    public var answer: MSRPMedia
    /// Whether we connect (active) or wait for the peer (passive).
    public var weAreActive: Bool
    /// What the peer accepts, for what we may send it.
    public var peerAcceptTypes: [String]
    public var peerAcceptWrappedTypes: [String]
    /// The largest message the peer takes (its `a=max-size`).
    public var peerMaxSize: Int64?
}

public enum MSRPOfferAnswer {
    /// Whether a pattern (`*`, `text/*`, `text/plain`, maybe with parameters) accepts `type`.
    public static func matches(_ pattern: String, _ type: String) -> Bool {
        let p = essence(pattern), t = essence(type)
        if p == "*" { return true }
        let pp = p.split(separator: "/", maxSplits: 1), tp = t.split(separator: "/", maxSplits: 1)
        guard pp.count == 2, tp.count == 2, pp[0] == tp[0] || pp[0] == "*" else { return false }
        return pp[1] == "*" || pp[1] == tp[1]
    }

    static func essence(_ s: String) -> String {
        String(s.split(separator: ";", maxSplits: 1).first ?? "").trimmingCharacters(in: " ").lowercased()
    }

    /// Answers `offer` with `capabilities`: the accept-types are ours that the
    /// offer accepts, in our order; wildcards on either side count. Throws when
    /// nothing is acceptable (SIP 488, API 415 semantics) or the offer cannot be
    /// answered (inactive, holdconn).
    public static func negotiate(offer: MSRPMedia, capabilities: MSRPCapabilities) throws(SDPError) -> MSRPNegotiation {
        guard offer.direction != .inactive, offer.setup != .holdconn else {
            throw SDPError("the offer's MSRP media is inactive")
        }
        var types: [String] = []
        for ours in capabilities.acceptTypes where offer.acceptTypes.contains(where: { matches($0, ours) || matches(ours, $0) }) {
            // Our wildcard against their concrete type: answer with theirs.
            if ours.contains("*") {
                for theirs in offer.acceptTypes where matches(ours, theirs) && !types.contains(theirs) { types.append(theirs) }
            } else if !types.contains(ours) {
                types.append(ours)
            }
        }
        guard !types.isEmpty else {
            throw SDPError("no acceptable content type: offered \(offer.acceptTypes.joined(separator: " ")), we accept \(capabilities.acceptTypes.joined(separator: " "))")
        }
        var wrapped = capabilities.acceptWrappedTypes
        if !offer.acceptWrappedTypes.isEmpty {
            wrapped = wrapped.filter { ours in offer.acceptWrappedTypes.contains { matches($0, ours) || matches(ours, $0) } }
        }
        // RFC 4145: the answerer of actpass picks; an offer without a=setup means
        // the offerer connects (RFC 4975 §8.1 default). We prefer passive: the
        // client connects to us, which works through its NAT.
        let weAreActive = offer.setup == .passive
        let answer = MSRPMedia(
            port: 0, secure: offer.secure, webSocket: offer.webSocket, path: [], acceptTypes: types,
            acceptWrappedTypes: types.contains(where: { matches($0, "message/cpim") }) ? wrapped : [],
            maxSize: capabilities.maxSize, setup: weAreActive ? .active : .passive,
            chatroom: nil, direction: offer.direction == .sendonly ? .recvonly : (offer.direction == .recvonly ? .sendonly : .sendrecv))
        return MSRPNegotiation(
            answer: answer, weAreActive: weAreActive, peerAcceptTypes: offer.acceptTypes,
            peerAcceptWrappedTypes: offer.acceptWrappedTypes, peerMaxSize: offer.maxSize)
    }

    /// A whole SDP answer around `media` (with its path filled in).
    public static func answerDescription(media: MSRPMedia, host: String, sessionVersion: UInt64) -> SessionDescription {
        let addrType = host.contains(":") ? "IP6" : "IP4"
        return SessionDescription(
            origin: "msrpgw \(sessionVersion) \(sessionVersion) IN \(addrType) \(host)", sessionName: "-",
            connection: "IN \(addrType) \(host)", otherLines: ["t=0 0"], media: [media.mediaDescription])
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}
