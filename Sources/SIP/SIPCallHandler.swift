/// Why a call is refused: the SIP status and a reason for the Warning header.
public struct SIPRejection: Error, Sendable, CustomStringConvertible {
    public var code: Int
    public var reason: String

    public init(code: Int, reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code) \(reason)" }
}

/// What the user agent asks of whoever owns the calls (the gateway): answer an
/// SDP offer by creating a session, update it on a re-INVITE, end it on BYE.
public protocol SIPCallHandler: Sendable {
    /// An INVITE's offer: returns the session it created and the SDP answer.
    func offer(_ invite: SIPRequest, sdp: String) async throws(SIPRejection) -> (session: String, answer: String)
    /// A re-INVITE's offer for an existing session.
    func update(session: String, invite: SIPRequest, sdp: String) async throws(SIPRejection) -> String
    /// The call ended (BYE, or no ACK for the 200).
    func end(session: String, reason: String)
    /// A page-mode MESSAGE (RFC 3428): returns once it is stored (we answer 202), or refuses.
    func message(_ request: SIPRequest) async throws(SIPRejection)
}
