import MSRP
import NIOCore

/// A message to send on a session. The session fills in To-Path, From-Path,
/// transaction ids and Byte-Range.
public struct MSRPOutgoingMessage: Sendable {
    public var messageID: String
    public var contentType: MediaType
    public var body: any MSRPBodySource
    public var successReport: SuccessReport
    public var failureReport: FailureReport
    /// Extra headers (Content-Disposition, extension headers, ...).
    public var headers: [MSRPHeader]

    public init(
        messageID: String = MSRPIdentifier.make(), contentType: MediaType, body: any MSRPBodySource,
        successReport: SuccessReport = .no, failureReport: FailureReport = .yes, headers: [MSRPHeader] = []
    ) {
        self.messageID = messageID
        self.contentType = contentType
        self.body = body
        self.successReport = successReport
        self.failureReport = failureReport
        self.headers = headers
    }

    public init(
        messageID: String = MSRPIdentifier.make(), contentType: MediaType = .textPlain, text: String,
        successReport: SuccessReport = .no, failureReport: FailureReport = .yes
    ) {
        self.init(
            messageID: messageID, contentType: contentType, body: MemoryBodySource(ByteBuffer(string: text)),
            successReport: successReport, failureReport: failureReport)
    }

    /// A system message (§11.5): no responses and no reports, ever.
    public static func system(_ text: String) -> MSRPOutgoingMessage {
        MSRPOutgoingMessage(text: text, successReport: .no, failureReport: .no)
    }
}

/// How a send ended, as far as the transaction layer can tell.
public enum MSRPSendOutcome: Sendable, Hashable {
    /// Every chunk got a 200 (Failure-Report `yes`).
    case accepted
    /// Written in full; with Failure-Report `partial` or `no` nothing more is known.
    case sent
    /// A chunk got an error response (or a 408, which is a timeout, §7.1.1 / RFC 4976).
    case rejected(code: Int, comment: String?)
    /// No response within the transaction timeout.
    case timedOut
}

public struct MSRPSendError: Error, Sendable, CustomStringConvertible {
    public enum Reason: Sendable {
        case sessionClosed
        case notConnected
        case connectionLost
        case bodyUnreadable
    }
    public var reason: Reason
    public var detail: String
    public var description: String { "send failed (\(reason)): \(detail)" }
}

/// A complete message received on a session, waiting for the receiver's verdict.
///
/// The response to the chunk that completed the message is deferred until
/// `accept()` or `reject(code:)`: the gateway calls `accept()` only once the
/// message is durable, so a 200 means "committed". With Failure-Report `partial`
/// accepting sends nothing and rejecting sends the error; with `no`, neither
/// sends anything (§7.1.4).
public struct MSRPIncomingMessage: Sendable {
    public var message: AssembledMessage
    public var acknowledgement: MSRPAcknowledgement

    public var head: MSRPRequestHead { message.head }
    public var successReport: SuccessReport { message.head.headers.successReport }
    public var failureReport: FailureReport { message.head.headers.failureReport }
}

/// The deferred response to the last chunk of a received message. Answering twice
/// is harmless: only the first answer is sent.
public struct MSRPAcknowledgement: Sendable {
    let respond: @Sendable (_ code: Int, _ comment: String?) -> Void

    public func accept() { respond(200, nil) }
    public func reject(code: Int, comment: String? = nil) { respond(code, comment) }
}

/// How to answer a request that is not SEND or REPORT (AUTH, NICKNAME, extensions).
public enum MSRPRequestDecision: Sendable {
    case respond(code: Int, comment: String?, headers: MSRPHeaderFields)
    /// The owner does not handle this method: answered 501 (RFC 4975 §7.2).
    case unknownMethod
}

/// What happens on a session, told to whoever owns it. Called on the
/// connection's event loop: return quickly and hop elsewhere for slow work.
public protocol MSRPSessionDelegate: AnyObject, Sendable {
    func session(_ session: MSRPSession, didReceive message: MSRPIncomingMessage)
    func session(_ session: MSRPSession, didReceiveReport report: MSRPRequestHead)
    func session(_ session: MSRPSession, didReceiveRequest request: MSRPRequestHead) -> MSRPRequestDecision
    func sessionDidClose(_ session: MSRPSession, reason: MSRPSessionCloseReason)
}

extension MSRPSessionDelegate {
    public func session(_ session: MSRPSession, didReceiveReport report: MSRPRequestHead) {}
    public func session(_ session: MSRPSession, didReceiveRequest request: MSRPRequestHead) -> MSRPRequestDecision {
        .unknownMethod
    }
    public func sessionDidClose(_ session: MSRPSession, reason: MSRPSessionCloseReason) {}
}

public enum MSRPSessionCloseReason: Sendable, Hashable {
    /// Closed by our side (`MSRPSession.close()`, endpoint shutdown).
    case local
    /// The connection it was bound to went away.
    case connectionLost
}
