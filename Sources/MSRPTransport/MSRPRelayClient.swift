import Digest
import Logging
import MSRP
import NIOConcurrencyHelpers
import NIOCore

/// What a relay granted after AUTH (RFC 4976 §5.1): the path to put before our
/// own URI in `a=path` (its `Use-Path`), and for how long.
public struct MSRPRelayGrant: Sendable, Hashable {
    public var usePath: [MSRPURI]
    public var expires: Duration
    public var obtainedAt: ContinuousClock.Instant

    /// When to AUTH again: a minute before expiry, or half-way for short grants.
    public var refreshAt: ContinuousClock.Instant {
        obtainedAt + (expires > .seconds(120) ? expires - .seconds(60) : expires / 2)
    }
}

/// Why AUTH with a relay did not end in a grant.
public struct MSRPRelayError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// AUTH with an MSRP relay (RFC 4976 §5.1, §6): over the connection we keep to
/// it (the relay reaches us back on it), answering its digest challenge (MD5 or
/// SHA-256; HA2 is `AUTH:<relay URI>`), adjusting `Expires` to a 423's
/// Min-/Max-Expires, and AUTHing again before the grant runs out.
public final class MSRPRelayClient: Sendable {
    public let relay: MSRPURI
    private let username: String
    private let password: String
    private let requestedExpires: Int64?
    private let logger: Logger
    /// The client's own URI towards the relay (From-Path of its AUTHs).
    private let session: MSRPSession
    private let current = NIOLockedValueBox<MSRPRelayGrant?>(nil)

    /// - Parameter expires: the lifetime to ask for (seconds); nil lets the relay choose.
    public init(endpoint: MSRPEndpoint, relay: MSRPURI, username: String, password: String, expires: Int64? = nil,
                logger: Logger = Logger(label: "msrpgw.relay")) {
        self.relay = relay
        self.username = username
        self.password = password
        self.requestedExpires = expires
        self.logger = logger
        session = endpoint.createSession(secure: relay.scheme == .msrps, setup: .active, remotePath: [relay], delegate: nil)
    }

    /// The grant in force, if any.
    public var grant: MSRPRelayGrant? { current.withLockedValue { $0 } }

    /// AUTHs until the relay grants a path: one answer to each fresh challenge,
    /// one retry after a 423. Throws with the relay's last answer otherwise.
    @discardableResult
    public func authenticate() async throws(MSRPRelayError) -> MSRPRelayGrant {
        do {
            try await session.attachToConnection()
        } catch {
            throw MSRPRelayError("cannot reach the relay \(relay): \(error)")
        }
        var expires = requestedExpires
        var challenge: DigestChallenge?
        var nonceCount: UInt32 = 0
        var adjusted = false
        for _ in 0..<4 {
            var headers: MSRPHeaderFields = []
            if let challenge {
                nonceCount += 1
                let value = challenge.authorization(
                    username: username, password: password, method: "AUTH", uri: relay.description,
                    cnonce: DigestChallenge.makeCnonce(), nonceCount: nonceCount)
                guard let parameters = try? AuthParameters(value, hasScheme: true, header: "Authorization") else {
                    throw MSRPRelayError("could not form the Authorization header")
                }
                headers.append(.authorization(parameters))
            }
            if let expires { headers.append(.expires(expires)) }
            let head = MSRPRequestHead(transactionID: MSRPIdentifier.make(), method: .auth, toPath: [relay], fromPath: [session.localURI], headers: headers)
            let response: MSRPResponseHead
            do {
                response = try await session.request(head, body: nil)
            } catch {
                throw MSRPRelayError("AUTH to \(relay) failed: \(error)")
            }
            switch response.code {
            case 200:
                guard let usePath = response.headers.usePath, !usePath.isEmpty else {
                    throw MSRPRelayError("the relay's 200 to AUTH has no Use-Path")
                }
                let granted = MSRPRelayGrant(usePath: usePath, expires: .seconds(response.headers.expires ?? expires ?? 3600), obtainedAt: .now)
                current.withLockedValue { $0 = granted }
                logger.info("relay granted a path", metadata: ["relay": "\(relay)", "use-path": "\(usePath.map(\.description).joined(separator: " "))", "expires": "\(granted.expires)"])
                return granted
            case 401:
                let offered = response.headers.wwwAuthenticate.map(\.description)
                guard let next = DigestChallenge.preferred(offered) else {
                    throw MSRPRelayError("the relay's 401 has no digest challenge we can answer: \(offered)")
                }
                // Challenged again after answering, and not for a stale nonce: wrong credentials.
                if challenge != nil, !next.stale {
                    throw MSRPRelayError("the relay refused the credentials of \(username) (401)")
                }
                (challenge, nonceCount) = (next, 0)
            case 423 where !adjusted:
                adjusted = true
                if let min = response.headers.minExpires { expires = min }
                if let max = response.headers.maxExpires { expires = max }
                guard expires != requestedExpires else { throw MSRPRelayError("423 from the relay without Min-Expires or Max-Expires") }
            default:
                throw MSRPRelayError("the relay answered AUTH with \(response.code) \(response.comment ?? "")")
            }
        }
        throw MSRPRelayError("AUTH with \(relay) did not settle")
    }

    /// Keeps a grant: AUTHs again before each expiry (backing off after a
    /// failure) until the task is cancelled.
    public func run() async {
        var backoff = Duration.seconds(1)
        while !Task.isCancelled {
            if let g = grant, ContinuousClock.now < g.refreshAt {
                try? await Task.sleep(until: g.refreshAt, clock: .continuous)
                continue
            }
            do {
                try await authenticate()
                backoff = .seconds(1)
            } catch {
                current.withLockedValue { $0 = nil }
                logger.warning("relay AUTH failed", metadata: ["relay": "\(relay)", "error": "\(error)", "retry-in": "\(backoff)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(60))
            }
        }
    }

    /// The URI the relay knows us by (the From-Path of our AUTHs).
    public var localURI: MSRPURI { session.localURI }

    public func close() { session.close() }
}

extension MSRPSession {
    /// Binds to a connection to the first hop without the bodiless SEND of
    /// `connect()`: AUTH to a relay is not addressed to a peer.
    func attachToConnection() async throws {
        if connection != nil { return }
        guard let first = remotePath.first else { throw MSRPSendError(reason: .notConnected, detail: "no path to connect to") }
        let conn = try await endpoint.connection(to: first)
        guard bind(to: conn) else { throw MSRPSendError(reason: .notConnected, detail: "session is bound to another connection or closed") }
        try await conn.withHandler { [self] in $0.attach(self) }.get()
    }
}
