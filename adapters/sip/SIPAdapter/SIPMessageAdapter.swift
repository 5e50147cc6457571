import Events
import Gateway
import Logging
import NIOConcurrencyHelpers
import SIP

/// The `sip-message` adapter: what the gateway owes senders of page-mode
/// messages (SIP MESSAGE), sent back as page-mode messages: the IMDN
/// `delivered`/`failed` an RCS-style sender asked for, through the outbound
/// proxy (or to the sender's host). It is created before the SIP user agent
/// (the gateway needs its adapters first), so the client arrives later.
public final class SIPMessageAdapter: Adapter {
    public let name = "sip-message"
    /// None: routes never name it; only follow-ups of page-mode messages come here.
    public let schemes: [String] = []
    public let concurrency = 32
    private let identity: String
    private let logger: Logger
    private let client = NIOLockedValueBox<SIPClient?>(nil)

    public init(identity: String, logger: Logger) {
        self.identity = identity
        self.logger = logger
    }

    public func attach(_ client: SIPClient) { self.client.withLockedValue { $0 = client } }

    public func deliver(_ event: QueuedEvent) async -> DeliveryOutcome {
        guard let client = client.withLockedValue({ $0 }) else { return .retry(after: .seconds(5), reason: "the SIP user agent is not running yet") }
        guard event.kind == .imdn else { return .permanentFailure(code: 415, reason: "sip-message carries only IMDNs of page-mode messages") }
        guard let cpim = IMDNFollowUp.cpim(for: event, identity: identity, sender: event.target) else {
            return .permanentFailure(code: 400, reason: "IMDN owed without an imdn.Message-ID")
        }
        let from = NameAddr(uri: client.account?.aor ?? identity, parameters: [("tag", SIPUserAgentServer.makeTag())])
        do {
            let exchange = try await client.send(
                method: "MESSAGE", uri: event.target, from: from, to: NameAddr(uri: event.target), callID: SIPClient.makeCallID(), cseq: 1,
                headers: [SIPHeader("Content-Type", "message/cpim")], body: cpim.serialized)
            let r = exchange.response
            switch r.code {
            case 200..<300: return .delivered(proof: "SIP \(r.code) \(r.reason)")
            case 408, 480, 500, 503, 504: return .retry(after: nil, reason: "SIP \(r.code) \(r.reason)")
            default: return .permanentFailure(code: r.code == 404 ? 404 : 403, reason: "SIP \(r.code) \(r.reason)")
            }
        } catch let error as SIPClientError where error.kind == .noTransport {
            // Not a SIP URI, or a host name with no outbound proxy to resolve it:
            // nothing will ever reach this sender. Undeliverable now, not retried
            // until the maximum age.
            return .permanentFailure(code: 404, reason: "the sender cannot be reached: \(error)")
        } catch {
            return .retry(after: nil, reason: "\(error)")
        }
    }
}
