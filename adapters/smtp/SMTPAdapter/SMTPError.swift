import SMTPWire

/// Why a conversation with the server failed, and where.
public struct SMTPError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        case connect(String)
        case tls(String)
        case timeout(stage: String)
        case closed(stage: String)
        case protocolError(SMTPProtocolError)
        /// The server refused `stage` with `reply` (greeting, EHLO, STARTTLS, AUTH).
        case refused(stage: String, reply: SMTPReply)
        /// STARTTLS required but not offered, or AUTH needed but not possible.
        case policy(String)
    }

    public var kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    /// Whether trying again later may help (everything but a permanent refusal
    /// and a policy the server will keep breaking).
    public var isTransient: Bool {
        switch kind {
        case .refused(_, let reply): return !reply.isPermanent
        case .policy: return false
        default: return true
        }
    }

    public var description: String {
        switch kind {
        case .connect(let s): return "cannot connect: \(s)"
        case .tls(let s): return "TLS failed: \(s)"
        case .timeout(let stage): return "no reply to \(stage) in time"
        case .closed(let stage): return "connection closed during \(stage)"
        case .protocolError(let e): return "server broke the protocol: \(e)"
        case .refused(let stage, let reply): return "\(stage) refused: \(reply)"
        case .policy(let s): return s
        }
    }
}
