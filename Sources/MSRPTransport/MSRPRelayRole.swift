import Digest
import Foundation
import Logging
import MSRP
import NIOConcurrencyHelpers
import NIOCore

/// The endpoint as an MSRP relay for its clients (RFC 4976 §6-7): AUTH with
/// digest against configured users grants a path (`Use-Path` with a session
/// part) for a lifetime within bounds (423 otherwise); requests whose To-Path
/// starts with a granted path are forwarded, the relay's hop added to From-Path:
/// towards the client over the connection it AUTHed on, from it by the next
/// URI. SENDs are answered hop by hop, and a downstream failure or time-out
/// becomes a failure REPORT upstream; other requests get the downstream's
/// response (408 when none comes). A chunk over 2048 bytes goes out as
/// interruptible chunks, so it does not hold up small messages, and a large one
/// goes on in parts as it arrives; a client whose next hop falls behind is not
/// read for a while (back-pressure). Without a grant, forwarding is refused (403).
public final class MSRPRelayRole: Sendable {
    public struct Settings: Sendable {
        /// The relay's own URI (`msrps://relay.example.com:2855;tcp`): its AUTH target
        /// and, with a session part, the paths it grants.
        public var uri: MSRPURI
        public var realm: String
        /// Username → password.
        public var users: [String: String]
        public var expires: ClosedRange<Int64>

        public init(uri: MSRPURI, realm: String, users: [String: String], expires: ClosedRange<Int64> = 60...3600) {
            self.uri = uri
            self.realm = realm
            self.users = users
            self.expires = expires
        }
    }

    struct Grant {
        let connection: MSRPConnection
        let expiresAt: ContinuousClock.Instant
    }

    private struct State {
        var nonces: [String: ContinuousClock.Instant] = [:]
        var grants: [String: Grant] = [:]
    }

    public let settings: Settings
    private let state = NIOLockedValueBox(State())
    /// Who may AUTH (name → password): `settings.users` until a reload replaces them.
    private let users: NIOLockedValueBox<[String: String]>
    private let logger: Logger

    public init(settings: Settings, logger: Logger = Logger(label: "msrp.relay")) {
        self.settings = settings
        self.users = NIOLockedValueBox(settings.users)
        self.logger = logger
    }

    /// A configuration reload's users: the next AUTH is checked against them;
    /// paths granted before stay valid until they expire.
    public func replaceUsers(_ new: [String: String]) { users.withLockedValue { $0 = new } }

    /// What the relay does with a request arriving on `connection`.
    enum Decision {
        /// Not the relay's: the endpoint's own sessions handle it.
        case local
        case answer(code: Int, comment: String?, headers: MSRPHeaderFields)
        /// Through the path granted under this session part.
        case forward(sid: String, Grant)
    }

    func classify(_ request: MSRPRequestHead, on connection: MSRPConnection) -> Decision {
        guard let first = request.toPath.first else { return .local }
        // A browser AUTHs at the WebSocket server it is connected to (RFC 7977
        // §5.3: `msrps://host:443;ws`), which is this relay.
        if request.method == .auth, request.toPath.count == 1, first.sessionID == nil,
           sameAuthority(first, settings.uri) || (connection.overWebSocket && first.transport.lowercased() == "ws") {
            return authenticate(request, on: connection)
        }
        guard sameAuthority(first, settings.uri) else { return .local }
        guard let sid = first.sessionID else { return .answer(code: 403, comment: "Forbidden: AUTH first", headers: []) }
        guard let grant = grant(sid) else {
            // An id of the endpoint's own sessions is theirs; anything else is unauthenticated use.
            return request.toPath.count > 1 ? .answer(code: 403, comment: "Forbidden: no such relay session", headers: []) : .local
        }
        if request.toPath.count == 1 {
            return .answer(code: 200, comment: nil, headers: [])  // addressed to the relay session itself (a keep-alive)
        }
        return .forward(sid: sid, grant)
    }

    private func sameAuthority(_ a: MSRPURI, _ b: MSRPURI) -> Bool {
        a.scheme == b.scheme && a.host.address.lowercased() == b.host.address.lowercased() && a.port == b.port
    }

    func grant(_ sid: String) -> Grant? {
        state.withLockedValue { s in
            guard let g = s.grants[sid] else { return nil }
            if g.expiresAt < .now || !g.connection.channel.isActive {
                s.grants[sid] = nil
                return nil
            }
            return g
        }
    }

    /// Forgets the grants made on a connection that closed.
    func connectionClosed(_ connection: MSRPConnection) {
        state.withLockedValue { s in s.grants = s.grants.filter { $0.value.connection !== connection } }
    }

    // MARK: - AUTH (RFC 4976 §6)

    private func authenticate(_ request: MSRPRequestHead, on connection: MSRPConnection) -> Decision {
        let now = ContinuousClock.now
        // Authenticated at the WebSocket handshake by a token: no digest needed.
        if let user = connection.authenticatedAs { return grant(to: user, asked: request.headers.expires, on: connection, now: now) }
        guard let auth = request.headers.authorization else { return challenge(now) }
        var p: [String: String] = [:]
        for parameter in auth.parameters { p[parameter.name.lowercased()] = parameter.value }
        let fresh = state.withLockedValue { s -> Bool in
            s.nonces = s.nonces.filter { $0.value > now }
            return p["nonce"].map { s.nonces[$0] != nil } ?? false
        }
        guard fresh else { return challenge(now) }
        guard let user = p["username"], let password = users.withLockedValue({ $0[user] }), p["realm"] == settings.realm,
              DigestVerifier.verify(p, password: password, method: "AUTH")
        else {
            logger.info("relay AUTH refused", metadata: ["user": "\(p["username"] ?? "-")"])
            return challenge(now)
        }
        return grant(to: user, asked: request.headers.expires, on: connection, now: now)
    }

    /// A path for `user` for the lifetime asked (within bounds, 423 otherwise).
    private func grant(to user: String, asked: Int64?, on connection: MSRPConnection, now: ContinuousClock.Instant) -> Decision {
        let asked = asked ?? settings.expires.upperBound
        if asked < settings.expires.lowerBound {
            return .answer(code: 423, comment: "Interval Out-of-Bounds", headers: [.minExpires(settings.expires.lowerBound)])
        }
        if asked > settings.expires.upperBound {
            return .answer(code: 423, comment: "Interval Out-of-Bounds", headers: [.maxExpires(settings.expires.upperBound)])
        }
        let sid = MSRPIdentifier.make(length: 20)
        state.withLockedValue { $0.grants[sid] = Grant(connection: connection, expiresAt: now + .seconds(asked)) }
        var path = settings.uri
        path.sessionID = sid
        logger.info("relay path granted", metadata: ["user": "\(user)", "path": "\(path)", "expires": "\(asked)"])
        return .answer(code: 200, comment: nil, headers: [.usePath([path]), .expires(asked)])
    }

    private func challenge(_ now: ContinuousClock.Instant) -> Decision {
        let nonce = MSRPIdentifier.make(length: 24)
        state.withLockedValue { $0.nonces[nonce] = now + .seconds(300) }
        var headers: MSRPHeaderFields = []
        for algorithm in ["SHA-256", "MD5"] {
            headers.append(.wwwAuthenticate(AuthParameters(scheme: "Digest", parameters: [
                .init(name: "realm", value: settings.realm), .init(name: "nonce", value: nonce),
                .init(name: "qop", value: "auth"), .init(name: "algorithm", value: algorithm, quoted: false),
            ])))
        }
        return .answer(code: 401, comment: "Unauthorized", headers: headers)
    }

    // MARK: - Forwarding (RFC 4976 §7)

    /// Which part of a received chunk is going on: all of it, or (for a large SEND
    /// chunk, sent on as it arrives) a part that starts this many bytes into it.
    enum Part {
        case whole
        case middle(Int64)
        case last(Int64)
    }

    /// Sends `head` (with `body` and `flag`) on towards its next hop.
    func forward(
        _ head: MSRPRequestHead, body: ByteBuffer?, flag: ContinuationFlag, sid: String, grant: Grant, from upstream: MSRPConnection,
        endpoint: MSRPEndpoint, part: Part = .whole
    ) {
        let hop = { var h = settings.uri; h.sessionID = sid; return h }()
        // A part says where its bytes sit in the message (and so does a failure
        // REPORT about it).
        let streamed: Bool
        let partHead: MSRPRequestHead
        switch part {
        case .whole:
            (streamed, partHead) = (false, head)
        case .middle(let offset), .last(let offset):
            var h = head
            let range = head.headers.byteRange
            h.headers.set(.byteRange(ByteRange(start: (range?.start ?? 1) + offset, end: nil, total: range?.total ?? nil)))
            (streamed, partHead) = (true, h)
        }
        let out = { var o = partHead; o.toPath = Array(head.toPath.dropFirst()); o.fromPath = [hop] + head.fromPath; return o }()
        // Hop by hop (§7.2): the SEND is ours to answer, once it has all arrived;
        // what goes wrong further on comes back as a failure REPORT.
        let allArrived = if case .middle = part { false } else { true }
        if head.method == .send, allArrived { upstream.onHandler { $0.respond(to: head, code: 200, comment: nil) } }
        // Towards the client its connection is known. From the client, the next
        // hop's connection may need opening: its future runs what is queued on it
        // in order (the parts of a chunk), on the event loops, without a task.
        if upstream !== grant.connection {
            Self.send(out, body: body, flag: flag, on: grant.connection, for: partHead, hop: hop, upstream: upstream, streamed: streamed)
            return
        }
        let logger = self.logger
        endpoint.connectionFuture(to: out.toPath[0]).whenComplete { result in
            switch result {
            case .success(let next):
                Self.send(out, body: body, flag: flag, on: next, for: partHead, hop: hop, upstream: upstream, streamed: streamed)
            case .failure(let error):
                logger.info("relay cannot reach the next hop", metadata: ["to": "\(out.toPath[0])", "error": "\(error)"])
                Self.failed(partHead, code: 503, hop: hop, upstream: upstream)
            }
        }
    }

    /// Writes the forwarded request on `next` and deals with its outcome: a SEND's
    /// failure as a REPORT upstream, another request's response passed back.
    private static func send(
        _ out: MSRPRequestHead, body: ByteBuffer?, flag: ContinuationFlag, on next: MSRPConnection,
        for head: MSRPRequestHead, hop: MSRPURI, upstream: MSRPConnection, streamed: Bool = false
    ) {
        guard head.method != .report else {
            next.onHandler { $0.enqueueRequest(out, body: body, flag: flag, promise: nil); $0.holdBackIfFull(upstream) }
            return
        }
        // A large chunk is re-chunked on the way out, so small messages pass it; the
        // parts of a chunk sent on as it arrives all go that way, to keep their order.
        if head.method == .send, let body, streamed || (flag != .aborted && body.readableBytes > MSRPChunker.uninterruptibleLimit) {
            let promise = next.eventLoop.makePromise(of: MSRPSendOutcome.self)
            next.onHandler { $0.enqueueForwarded(out, body: body, flag: flag, promise: promise); $0.holdBackIfFull(upstream) }
            promise.futureResult.whenComplete { result in
                let code: Int = switch result {
                case .success(.accepted), .success(.sent): 200
                case .success(.rejected(let code, _)): code
                case .success(.timedOut): 408
                case .failure: 503
                }
                if code != 200 { failed(head, code: code, hop: hop, upstream: upstream) }
            }
            return
        }
        let promise = next.eventLoop.makePromise(of: MSRPResponseHead.self)
        next.onHandler { $0.enqueueRequest(out, body: body, flag: flag, promise: promise); $0.holdBackIfFull(upstream) }
        promise.futureResult.whenComplete { result in
            let (code, comment): (Int, String?) = switch result {
            case .success(let response): (response.code, response.comment)
            case .failure: (503, "the next hop went away")
            }
            if head.method == .send {
                if code != 200 { failed(head, code: code, hop: hop, upstream: upstream) }
            } else {
                upstream.onHandler { $0.respond(to: head, code: code, comment: comment) }
            }
        }
    }

    /// A failure REPORT upstream for a SEND that failed further on (if it wants one).
    private static func failed(_ head: MSRPRequestHead, code: Int, hop: MSRPURI, upstream: MSRPConnection) {
        guard head.method == .send else {
            upstream.onHandler { $0.respond(to: head, code: code, comment: nil) }
            return
        }
        guard head.headers.failureReport.wantsFailures, let messageID = head.headers.messageID else { return }
        var headers: MSRPHeaderFields = [.messageID(messageID), .status(MSRPStatus(code: code))]
        if let range = head.headers.byteRange { headers.append(.byteRange(range)) }
        let report = MSRPRequestHead(transactionID: MSRPIdentifier.make(), method: .report, toPath: head.fromPath, fromPath: [hop], headers: headers)
        upstream.onHandler { $0.enqueueRequest(report, body: nil, promise: nil) }
    }
}
