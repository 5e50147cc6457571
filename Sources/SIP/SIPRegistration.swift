import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Keeps the gateway's Contact bound to its address of record at a registrar
/// (RFC 3261 §10.2): REGISTER with digest, refreshed before the granted expiry
/// with the same Call-ID and a growing CSeq, retried with backoff when refused
/// or unanswered, removed (Expires: 0) on stop.
public final class SIPRegistration: Sendable {
    public enum Status: Sendable, Hashable {
        case idle
        case registered(expires: Int, refreshes: Int)
        case failed(String)
    }

    private let client: SIPClient
    private let registrar: String
    private let account: SIPAccount
    private let expires: Int
    private let retry: ClosedRange<Duration>
    private let logger: Logger
    private let callID = SIPClient.makeCallID()
    private let fromTag = SIPUserAgentServer.makeTag()
    private let cseq = NIOLockedValueBox<UInt32>(1)
    private let _status = NIOLockedValueBox<Status>(.idle)

    /// - Parameters:
    ///   - registrar: the REGISTER Request-URI (`sip:example.com`).
    ///   - expires: what we ask for; the registrar may grant less (or more, 423 Min-Expires).
    ///   - retry: the backoff after a failure, doubling from the lower to the upper bound.
    public init(client: SIPClient, registrar: String, account: SIPAccount, expires: Int = 3600,
                retry: ClosedRange<Duration> = .seconds(5)...(.seconds(300)), logger: Logger = Logger(label: "msrpgw.sip")) {
        self.client = client
        self.registrar = registrar
        self.account = account
        self.expires = expires
        self.retry = retry
        self.logger = logger
    }

    public var status: Status { _status.withLockedValue { $0 } }

    /// Registers and refreshes until the task is cancelled, then unregisters.
    public func run() async {
        var asked = expires
        var delay = retry.lowerBound
        var refreshes = 0
        while !Task.isCancelled {
            var wait: Duration
            do {
                let r = try await register(expires: asked)
                switch r.response.code {
                case 200..<300:
                    let granted = grantedExpires(r.response) ?? asked
                    _status.withLockedValue { $0 = .registered(expires: granted, refreshes: refreshes) }
                    logger.info("SIP registered", metadata: ["aor": "\(account.aor)", "registrar": "\(registrar)", "expires": "\(granted)", "refresh": "\(refreshes)"])
                    refreshes += 1
                    delay = retry.lowerBound
                    // Refresh well before expiry: half-way for short registrations, a minute early for long ones.
                    wait = granted <= 120 ? .milliseconds(granted * 500) : .seconds(granted - 60)
                case 423:
                    // Interval Too Brief: ask again at once for the registrar's minimum.
                    if let min = r.response.headers["Min-Expires"].flatMap({ Int($0.trimmingCharacters(in: " \t")) }), min > asked {
                        asked = min
                        continue
                    }
                    fallthrough
                default:
                    throw SIPRegistrationError("\(r.response.code) \(r.response.reason)")
                }
            } catch {
                _status.withLockedValue { $0 = .failed("\(error)") }
                logger.warning("SIP registration failed", metadata: ["aor": "\(account.aor)", "registrar": "\(registrar)", "error": "\(error)", "retry-in": "\(delay)"])
                wait = delay
                delay = min(delay * 2, retry.upperBound)
            }
            do { try await Task.sleep(for: wait) } catch { break }
        }
        // Cancelled: take our binding away, best effort, so calls stop coming here.
        if case .registered = status {
            _ = try? await register(expires: 0)
            logger.info("SIP unregistered", metadata: ["aor": "\(account.aor)"])
        }
        _status.withLockedValue { $0 = .idle }
    }

    private func register(expires: Int) async throws -> SIPClient.Exchange {
        let first = cseq.withLockedValue { $0 }
        let aor = NameAddr(displayName: account.displayName, uri: account.aor)
        let exchange = try await client.send(
            method: "REGISTER", uri: registrar, from: NameAddr(displayName: account.displayName, uri: account.aor, parameters: [("tag", fromTag)]),
            to: aor, callID: callID, cseq: first, headers: [SIPHeader("Expires", String(expires))])
        let used = exchange.request.headers.cseq?.number ?? first
        cseq.withLockedValue { $0 = used + 1 }
        return exchange
    }

    /// The expiry granted to our Contact: its `expires` parameter in the 200, else the Expires header.
    private func grantedExpires(_ response: SIPResponse) -> Int? {
        let ours = client.contactURI
        for value in response.headers.values("Contact") {
            guard let contact = NameAddr(value), contact.uri == ours || contact.uri.hasPrefix(ours + ";") else { continue }
            if let e = contact.parameter("expires").flatMap({ Int($0) }) { return e }
        }
        return response.headers["Expires"].flatMap { Int($0.trimmingCharacters(in: " \t")) }
    }
}

public struct SIPRegistrationError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
