import CPIM
import Events
import Foundation
import Logging
import MSRP
import MSRPTransport
import NIOConcurrencyHelpers
import NIOCore
import Queue
import SDP

/// Why the gateway could not be set up from its configuration.
public struct GatewaySetupError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Why a session could not be created; `status` is the HTTP status for the API
/// (400 bad offer, 403 unknown route, 415 nothing acceptable, 502 peer unreachable).
public struct SessionSetupError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    /// What the caller is told.
    public var description: String
    /// Our side, for the log only (a socket error, an address).
    public var detail: String?
    public init(status: Int, _ description: String, detail: String? = nil) {
        self.status = status
        self.description = description
        self.detail = detail
    }

    /// The peer's MSRP address could not be reached. One phrase whatever the
    /// socket said (refused, timed out, reset): the words would let a caller
    /// map which ports answer.
    static func unreachable(_ address: MSRPURI?, _ error: any Error) -> SessionSetupError {
        SessionSetupError(status: 502, "cannot reach the peer's MSRP address", detail: "\(address?.description ?? "?"): \(error)")
    }
}

/// Something to send from outside MSRP (the HTTP API, Alertmanager).
public struct OutboundMessage: Sendable {
    public enum Destination: Sendable, Hashable {
        /// One live session, by id.
        case session(String)
        /// A configured route address, or a peer address (`sip:...`): every live
        /// session of that peer, as soon as one exists.
        case address(String)
    }

    public var to: Destination
    public var body: [UInt8]
    public var contentType: String
    /// A system message (`Failure-Report: no`, §11.5) rather than a chat message.
    public var system: Bool
    public var from: String?
    public var subject: String?
    /// Makes a repeated submission one event (Alertmanager retries, HTTP clients
    /// with an Idempotency-Key).
    public var idempotencyKey: String?
    /// When it was said (RFC 3339), if not now: an IRC line's server-time, say.
    public var dateTime: String?
    /// What its sender on another network asked to be told, and where (an
    /// XMPP user's receipt request: `pageModeSender` is its `xmpp:` address);
    /// nil when nobody is owed anything.
    public var origin: EventOrigin?

    public init(to: Destination, text: String, contentType: String = "text/plain", system: Bool = false, from: String? = nil,
                subject: String? = nil, idempotencyKey: String? = nil, dateTime: String? = nil, origin: EventOrigin? = nil) {
        self.dateTime = dateTime
        self.origin = origin
        self.to = to
        self.body = Array(text.utf8)
        self.contentType = Self.declaringUTF8(contentType)
        self.system = system
        self.from = from
        self.subject = subject
        self.idempotencyKey = idempotencyKey
    }
}

extension OutboundMessage {
    /// A text type given without a charset gets `charset=UTF-8`: the body is a
    /// Swift string's UTF-8, and a receiver reading `text/plain` without one may
    /// take it as US-ASCII (RFC 2046 §4.1.2) and mangle anything else.
    static func declaringUTF8(_ contentType: String) -> String {
        guard var type = try? MediaType(contentType), type.type.lowercased() == "text",
              !type.parameters.contains(where: { $0.name.lowercased() == "charset" })
        else { return contentType }
        type.parameters.append(MediaType.Parameter(name: "charset", value: "UTF-8"))
        return type.description
    }
}

/// The gateway: MSRP sessions in, events through the queue, adapters out, and
/// the REPORTs and IMDNs back. The daemon builds one with its adapters and runs it.
public final class Gateway: Sendable {
    public let configuration: GatewayConfiguration
    public let queue: any EventQueue
    public let endpoint: MSRPEndpoint
    public let metrics = GatewayMetrics()

    /// Set while messages cannot be made durable (what a health check reports):
    /// the queue or the body files failed to write, and either that was in the
    /// last minute or the disk still has no room for a message of the largest
    /// size. (A failure is cleared by the next message stored; with no traffic
    /// the free space decides, so that a freed disk reads healthy again.)
    public var storageFailure: StorageFailure? {
        let failure = queue.writeFailure.map { StorageFailure(since: $0.since, reason: "the queue cannot write: \($0.error.kind.rawValue)") }
            ?? ingress.bodyWrites.current.map { StorageFailure(since: $0.since, reason: $0.failure) }
        guard let failure else { return nil }
        if Date().timeIntervalSince(failure.since) < 60 { return failure }
        let free = freeBytes(at: configuration.bodyDirectory)
        return free.map { $0 < configuration.maxMessageBytes } ?? true ? failure : nil
    }
    let sessions = SessionDirectory()
    let routes: LiveRoutes
    let adapters: AdapterRegistry
    let dispatcher: Dispatcher
    let ingress: MessageIngress
    let chatRooms: ChatRooms
    let logger: Logger
    /// Who places a call when a message waits for a peer with no live session.
    let dialer = NIOLockedValueBox<(@Sendable (String) -> Void)?>(nil)
    private let closureObservers = NIOLockedValueBox<[@Sendable (String) -> Void]>([])
    private let creationObservers = NIOLockedValueBox<[@Sendable (String) -> Void]>([])
    /// Publishes this node's sessions where other nodes share the queue.
    private let publisher: ClusterSessionPublisher?

    /// The queue, when other nodes share it (and its directory of their sessions).
    public let sharedQueue: (any SharedQueue)?

    /// - Parameter routes: route address → target URIs, checked here: every target
    ///   needs an adapter that accepts it.
    /// The MSRP relay our sessions go through (RFC 4976), if one is configured.
    public let relay: MSRPRelayClient?

    /// - Parameter relay: an MSRP relay (AUTHed by its owner, kept fresh by its
    ///   `run()`): sessions answered while it holds a grant go through it.
    public init(
        configuration: GatewayConfiguration, queue: any EventQueue, endpoint: MSRPEndpoint, adapters: [any Adapter],
        routes: [String: [String]], relay: MSRPRelayClient? = nil, logger: Logger = Logger(label: "msrpgw.gateway")
    ) throws(GatewaySetupError) {
        self.configuration = configuration
        self.queue = queue
        self.endpoint = endpoint
        self.relay = relay
        self.logger = logger
        var registry = AdapterRegistry(adapters)
        let dialer = self.dialer
        let shared = queue as? any SharedQueue
        sharedQueue = shared
        let sessions = sessions
        let handOff = shared.map { PeerHandOff(queue: $0, logger: logger) }
        registry.register(MSRPSessionAdapter(
            sessions: sessions, identity: configuration.identity, metrics: metrics, logger: logger,
            needsSession: { peer in dialer.withLockedValue { $0 }?(peer) },
            connectedElsewhere: { peer in await handOff?.handOff(peer) }))
        self.adapters = registry
        metrics.declare(adapters: registry.adapters.keys.sorted())
        let table: RouteTable
        do { table = try RouteTable.build(routes, adapters: registry) } catch { throw GatewaySetupError(error.reason) }
        if let d = configuration.defaultRoute, !table.contains(d) {
            throw GatewaySetupError("the default route \(d) is not a configured route")
        }
        let live = LiveRoutes(table)
        self.routes = live
        let bodies: BodyStore
        do { bodies = try BodyStore(directory: configuration.bodyDirectory, inlineLimit: configuration.inlineBodyLimit) } catch {
            throw GatewaySetupError("cannot create the body directory \(configuration.bodyDirectory): \(error)")
        }
        let dispatcher = Dispatcher(queue: queue, adapters: registry, configuration: configuration, metrics: metrics, logger: logger)
        // Other nodes sharing the queue store events this node may deliver.
        shared?.onNewEvents { [weak dispatcher] adapters in dispatcher?.wake(adapters) }
        self.dispatcher = dispatcher
        let publisher = shared.map { shared in
            ClusterSessionPublisher(queue: shared, logger: logger) { sessions.all.map { $0.directoryEntry(node: shared.node) } }
        }
        self.publisher = publisher
        let chatRooms = ChatRooms(rooms: configuration.rooms)
        self.chatRooms = chatRooms
        self.ingress = MessageIngress(
            configuration: configuration, routes: live, queue: queue, sessions: sessions, bodies: bodies, rooms: chatRooms, metrics: metrics,
            logger: logger, dispatcher: dispatcher, wake: { dispatcher.wake($0) },
            notificationTarget: { [registry] address in
                registry.adapter(for: address).flatMap { $0.takesNotifications(to: address) ? RouteTarget(adapter: $0.name, target: address) : nil }
            })
    }

    /// The adapters' names, `msrp` included.
    public var adapterNames: [String] { adapters.adapters.keys.sorted() }

    // MARK: - Running

    /// Takes back what a previous run of this node held, then works the queue
    /// until `stop()` and the deliveries in flight are done.
    public func run() async {
        do {
            let n = try await queue.releaseLeases(ownerPrefix: configuration.leaseOwnerPrefix)
            if n > 0 { logger.notice("took back deliveries a previous run left unfinished", metadata: ["count": "\(n)"]) }
        } catch {
            logger.error("cannot take back earlier leases; they come back when they expire", metadata: ["error": "\(error)"])
        }
        let publishing = publisher.map { p in Task { await p.run() } }
        await dispatcher.run()
        publishing?.cancel()
    }

    /// No new deliveries; `run` returns when those in flight end.
    public func stop() { dispatcher.stop() }

    // MARK: - Sessions

    /// Answers an SDP offer: creates the MSRP session (and connects it when the
    /// offer makes us active) and returns it with the SDP answer.
    /// - Parameters:
    ///   - peer: who the peer is, if the caller knows: its CPIM From must match.
    ///   - route: a configured route address for its messages without a CPIM To.
    public func createSession(offer: SessionDescription, peer: String? = nil, route: String? = nil) async throws(SessionSetupError) -> (GatewaySession, SessionDescription) {
        let media: MSRPMedia
        do {
            media = try offer.msrpMedia().media
        } catch {
            throw SessionSetupError(status: 400, error.description)
        }
        let (negotiation, path) = try negotiate(media)
        if let route, !routes.contains(route), !chatRooms.contains(route) { throw SessionSetupError(status: 403, "route \(route) is not configured") }
        if let peer, RouteTable.normalize(peer) == nil { throw SessionSetupError(status: 400, "peer \(peer.debugDescription) is not a URI") }
        // Over WebSocket the client reaches our WebSocket listener (RFC 7977): no msrps listener needed.
        if media.secure, !media.webSocket, endpoint.listeningPort(secure: true) == nil, relay?.grant == nil || relay?.relay.scheme != .msrps {
            throw SessionSetupError(status: 415, "TCP/TLS/MSRP offered but no msrps listener is configured")
        }
        // Through a relay (RFC 4976): the peer reaches us at the relay's path, then
        // our URI (the relay forwards on the connection we AUTHed on, which binds the
        // session); what we send goes To-Path = the relay's path, then the peer's.
        // Who sends the first SEND is still the offer/answer's `a=setup`.
        let relayPath = relay?.grant?.usePath ?? []
        let connects = negotiation.weAreActive
        let events = SessionEvents(ingress: ingress, sessions: sessions, rooms: chatRooms, logger: logger) { [weak self] id in self?.sessionClosed(id) }
        let msrp = endpoint.createSession(
            id: configuration.newSessionID(), secure: media.secure, setup: connects ? .active : .passive, remotePath: relayPath + path,
            acceptTypes: negotiation.answer.acceptTypes.compactMap { try? MediaType($0) }, delegate: events)
        let session = GatewaySession(msrp: msrp, peerAddress: peer, route: route, negotiation: negotiation, messageRate: configuration.sessionMessageRate)
        sessions.insert(session)
        sessionCreated(session.id)
        if connects {
            do {
                // A caller that gives up (a SIP CANCEL) takes the half-made session with it.
                try await withTaskCancellationHandler {
                    try await msrp.connect()
                } onCancel: {
                    msrp.close()
                }
            } catch {
                msrp.close()
                let failure = SessionSetupError.unreachable((relayPath + path).first, error)
                logger.info("cannot reach a peer's MSRP address", metadata: ["detail": "\(failure.detail ?? "")"])
                throw failure
            }
        }
        if let peer = peer.flatMap(RouteTable.normalize) { await peerConnected(peer) }
        if !connects { closeIfNeverBound(session) }
        var answer = negotiation.answer
        answer.path = relayPath.map(\.description) + [msrp.localURI.description]
        answer.port = msrp.localURI.port ?? 2855
        if let room = route.flatMap(RouteTable.normalize), let settings = chatRooms.rooms[room] {
            // RFC 7701 §4: what this room offers its participants.
            answer.chatroom = (settings.nicknames ? ["nickname"] : []) + ["private-messages"]
        }
        let description = MSRPOfferAnswer.answerDescription(
            media: answer, host: endpoint.configuration.advertisedHost, sessionVersion: UInt64(Date().timeIntervalSince1970))
        logger.info("session created", metadata: [
            "session": "\(session.id)", "peer": "\(peer ?? "-")", "setup": "\(negotiation.weAreActive ? "active" : "passive")",
            "relay": "\(relayPath.first?.description ?? "-")",
        ])
        return (session, description)
    }

    /// An offer's (or answer's) MSRP media against what we accept: the
    /// negotiation (415 when nothing is acceptable) and its path (400 if malformed).
    func negotiate(_ media: MSRPMedia) throws(SessionSetupError) -> (MSRPNegotiation, [MSRPURI]) {
        let negotiation: MSRPNegotiation
        do {
            negotiation = try MSRPOfferAnswer.negotiate(
                offer: media,
                capabilities: MSRPCapabilities(acceptTypes: configuration.acceptTypes, acceptWrappedTypes: configuration.acceptWrappedTypes, maxSize: configuration.maxMessageBytes))
        } catch {
            throw SessionSetupError(status: 415, error.description)
        }
        var path: [MSRPURI] = []
        for text in media.path {
            do { path.append(try MSRPURI(text)) } catch { throw SessionSetupError(status: 400, "a=path: \(error)") }
        }
        return (negotiation, path)
    }

    private func closeIfNeverBound(_ session: GatewaySession) {
        let timeout = configuration.sessionBindTimeout
        let logger = logger
        let timer = endpoint.group.next().scheduleTask(in: TimeAmount(timeout)) {
            [weak session] in
            guard let session, session.msrp.connection == nil, !session.msrp.isClosed else { return }
            logger.info("session closed: nobody connected to it", metadata: ["session": "\(session.id)", "after": "\(timeout)"])
            session.msrp.close()
        }
        session.bindTimer.withLockedValue { $0 = timer }
    }

    /// A new offer for a live session (a SIP re-INVITE: a new path or new types):
    /// the peer's path and what it accepts change, our side stays. Returns the answer.
    public func updateSession(_ id: String, offer: SessionDescription) async throws(SessionSetupError) -> SessionDescription {
        guard let session = sessions.session(id) else { throw SessionSetupError(status: 404, "no session \(id)") }
        let media: MSRPMedia
        do { media = try offer.msrpMedia().media } catch { throw SessionSetupError(status: 400, error.description) }
        let (negotiation, path) = try negotiate(media)
        session.msrp.remotePath = path
        session.msrp.acceptTypes = negotiation.answer.acceptTypes.compactMap { try? MediaType($0) }
        var answer = negotiation.answer
        answer.path = [session.msrp.localURI.description]
        answer.port = session.msrp.localURI.port ?? 2855
        answer.setup = session.msrp.setup == .active ? .active : .passive
        logger.info("session updated", metadata: ["session": "\(id)"])
        return MSRPOfferAnswer.answerDescription(media: answer, host: endpoint.configuration.advertisedHost, sessionVersion: UInt64(Date().timeIntervalSince1970))
    }

    /// Calls `observer` with the id of every session that ends, however it ends
    /// (the SIP side forgets the session's dialog).
    public func onSessionClosed(_ observer: @escaping @Sendable (String) -> Void) {
        closureObservers.withLockedValue { $0.append(observer) }
    }

    func sessionClosed(_ id: String) {
        publisher?.ended(id)
        for o in closureObservers.withLockedValue({ $0 }) { o(id) }
    }

    /// Calls `observer` with the id of every session that starts (answered or
    /// offered), once it is among the live sessions.
    public func onSessionCreated(_ observer: @escaping @Sendable (String) -> Void) {
        creationObservers.withLockedValue { $0.append(observer) }
    }

    func sessionCreated(_ id: String) {
        if let publisher, let shared = sharedQueue, let session = sessions.session(id) { publisher.began(session.directoryEntry(node: shared.node)) }
        for o in creationObservers.withLockedValue({ $0 }) { o(id) }
    }

    /// A peer has a live session here now: what waited for it can go. Where
    /// nodes share the queue its waiting messages become this node's (another
    /// node has no session to send them on).
    func peerConnected(_ peer: String) async {
        do {
            let due = if let shared = sharedQueue {
                try await shared.assign(adapter: "msrp", targets: [peer], to: shared.node)
            } else {
                try await queue.makeDue(adapter: "msrp", target: peer)
            }
            if due > 0 { dispatcher.wake(["msrp"]) }
        } catch {
            logger.warning("cannot wake messages waiting for the peer", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }

    /// Refreshes the gauges `/metrics` shows (queue depth and age, sessions,
    /// connection handlers, storage health) from the queue's statistics.
    public func recordGauges() async throws(QueueError) {
        metrics.record(try await queue.stats(), adapters: adapterNames, sessions: liveSessions.count,
                       connectionHandlers: endpoint.connectionHandlersAlive)
        metrics.storage(failing: storageFailure != nil)
    }

    /// Puts a reloaded configuration's routes in force, checked as at start
    /// (every target has an adapter that takes it; the default route stays one).
    /// Returns what puts the previous routes back.
    public func replaceRoutes(_ new: [String: [String]]) throws(GatewaySetupError) -> @Sendable () -> Void {
        let table: RouteTable
        do { table = try RouteTable.build(new, adapters: adapters) } catch { throw GatewaySetupError(error.reason) }
        if let d = configuration.defaultRoute, !table.contains(d) {
            throw GatewaySetupError("the default route \(d) is not a configured route")
        }
        let previous = routes.current
        routes.replace(with: table)
        return { [routes] in routes.replace(with: previous) }
    }

    /// A reloaded configuration's rooms: sessions in a room taken out stay up;
    /// nicknames held stay held.
    public func replaceRooms(_ rooms: [String: ChatRoom]) { chatRooms.replace(rooms: rooms) }

    /// Whether `address` is a configured route (or chat room).
    public func hasRoute(_ address: String) -> Bool { routes.contains(address) || chatRooms.contains(address) }

    public func session(_ id: String) -> GatewaySession? { sessions.session(id) }
    public var liveSessions: [GatewaySession] { sessions.all }

    /// Ends a session; false if there was none.
    @discardableResult
    public func closeSession(_ id: String) -> Bool {
        guard let s = sessions.session(id) else { return false }
        s.msrp.close()
        return true
    }

    /// Closes every session (shutdown).
    public func closeAllSessions() {
        for s in sessions.all { s.msrp.close() }
    }

    /// A page-mode message (SIP MESSAGE) into the queue; returns once durable.
    public func receive(pageMode message: PageModeMessage) async throws(IngressRefusal) -> [EventID] {
        try await ingress.receive(pageMode: message)
    }

    // MARK: - Outbound

    /// Enqueues a message from outside MSRP; returns when it is durable. A route
    /// address fans out to its targets; a peer address or a session goes to the
    /// `msrp` adapter.
    /// Queues what is owed to a sender that no delivery outcome says (an IMDN
    /// `displayed` for a chat marker), and wakes its adapters.
    public func owe(_ followUps: [NewEvent]) async throws {
        guard !followUps.isEmpty else { return }
        _ = try await queue.enqueue(followUps)
        dispatcher.wake(Set(followUps.map(\.adapter)))
    }

    /// Records later news of a delivered event (a mail's bounce), counts a
    /// bounce as that adapter's delivery outcome, and wakes the adapters of
    /// what it owes the sender. Returns the state the event was in (only a
    /// `delivered` one took the news; nil: no such event).
    @discardableResult
    public func record(_ news: LaterNews, of event: QueuedEvent) async throws(QueueError) -> EventState? {
        let found = try await queue.record(news, of: event.id)
        if found == .delivered, case .bounced = news {
            metrics.delivery(adapter: event.adapter, state: .bounced)
            let r = Reporter()
            dispatcher.wake([r.adapter, r.pageModeAdapter, "xmpp"])
        }
        return found
    }

    /// The live sessions of a peer address (what they accept decides how a
    /// message for it is sent).
    public func liveSessions(of peer: String) -> [GatewaySession] { sessions.sessions(of: peer) }

    public func submit(_ message: OutboundMessage) async throws -> [EventID] {
        var targets: [RouteTarget]
        switch message.to {
        case .session(let id):
            // Another node's session: queued for that node (its id names it).
            if sessions.session(id) == nil, try await sharedQueue?.clusterSession(id) == nil {
                throw SessionSetupError(status: 404, "no session \(id)")
            }
            targets = [RouteTarget(adapter: "msrp", target: id)]
        case .address(let address):
            if routes.contains(address) {
                targets = try routes.resolve(address)
            } else if let peer = RouteTable.normalize(address), adapters.adapter(for: peer)?.name == "msrp" {
                // A tel: peer has no MSRP address of its own: it is reached only on a
                // live session or by a call placed through the proxy. Without either
                // the message could only wait out its maximum age: refused now.
                if uriScheme(peer) == "tel", sessions.sessions(of: peer).isEmpty, dialer.withLockedValue({ $0 }) == nil {
                    throw RouteError("no route to \(address): a tel: peer is reachable only on its live session or through SIP call-out")
                }
                targets = [RouteTarget(adapter: "msrp", target: peer)]
            } else {
                throw RouteError("no route to \(address): only configured destinations and MSRP peers are reachable")
            }
        }
        let envelope = EventEnvelope(
            from: message.from ?? "<\(configuration.identity)>",
            to: { if case .address(let a) = message.to { return ["<\(a)>"] } else { return [] } }(),
            subject: message.subject, dateTime: message.dateTime ?? RFC3339.string(from: Date()), contentType: message.contentType)
        let events = targets.map { t in
            NewEvent(
                kind: message.system ? .system : .delivery, adapter: t.adapter, target: t.target, origin: message.origin ?? EventOrigin(),
                envelope: envelope, body: .inline(message.body), dedupeKey: message.idempotencyKey.map { "api|\($0)|\(t.adapter)|\(t.target)" })
        }
        let ids = try await queue.enqueue(events)
        dispatcher.wake(Set(events.map(\.adapter)))
        return ids
    }
}

/// What an MSRP session tells the gateway.
final class SessionEvents: MSRPSessionDelegate {
    private let ingress: MessageIngress
    private let sessions: SessionDirectory
    private let rooms: ChatRooms
    private let logger: Logger
    private let closed: @Sendable (String) -> Void

    init(ingress: MessageIngress, sessions: SessionDirectory, rooms: ChatRooms, logger: Logger, closed: @escaping @Sendable (String) -> Void) {
        self.ingress = ingress
        self.sessions = sessions
        self.rooms = rooms
        self.logger = logger
        self.closed = closed
    }

    func session(_ session: MSRPSession, didReceive message: MSRPIncomingMessage) {
        guard let s = sessions.session(session.id) else {
            message.acknowledgement.reject(code: 481, comment: "session ended")
            return
        }
        ingress.receive(message, on: s)
    }

    func session(_ session: MSRPSession, didReceiveReport report: MSRPRequestHead) {
        logger.debug("REPORT from peer", metadata: ["session": "\(session.id)", "status": "\(report.headers.status?.description ?? "-")"])
        if let messageID = report.headers.messageID, let code = report.headers.status?.code {
            sessions.session(session.id)?.reports.resolve(messageID, status: code)
        }
    }

    /// NICKNAME (RFC 7701 §6.2): 200 when granted, 425 when another participant
    /// holds it, 501 outside a room or in a room without nicknames, 400 without one.
    func session(_ session: MSRPSession, didReceiveRequest request: MSRPRequestHead) -> MSRPRequestDecision {
        guard request.method == .nickname else {
            return .respond(code: 501, comment: "\(request.method) is not supported by this gateway", headers: [])
        }
        guard let s = sessions.session(session.id) else { return .respond(code: 481, comment: "session ended", headers: []) }
        guard let raw = request.headers.useNickname else { return .respond(code: 400, comment: "Use-Nickname missing", headers: []) }
        let nickname = ChatRooms.nickname(raw)
        guard !nickname.isEmpty, nickname.count <= 64, nickname.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            return .respond(code: 400, comment: "not a usable nickname", headers: [])
        }
        let room = rooms.room(of: s)
        let others = sessions.all.filter { $0.id != s.id && !$0.msrp.isClosed && room != nil && rooms.room(of: $0) == room }.compactMap(\.peerAddress)
        switch rooms.reserve(nickname, in: room, for: s.id, others: others) {
        case .granted:
            logger.info("nickname taken", metadata: ["session": "\(s.id)", "nickname": "\(nickname)"])
            return .respond(code: 200, comment: "OK", headers: [])
        case .taken: return .respond(code: 425, comment: "nickname in use", headers: [])
        case .notARoom: return .respond(code: 501, comment: "this session is not in a chat room", headers: [])
        case .nicknamesOff: return .respond(code: 501, comment: "this room has no nicknames", headers: [])
        }
    }

    func sessionDidClose(_ session: MSRPSession, reason: MSRPSessionCloseReason) {
        rooms.release(session: session.id)
        let ended = sessions.remove(session.id)
        ended?.bindTimer.withLockedValue { $0 }?.cancel()
        ended?.reports.endAll()
        closed(session.id)
        logger.info("session ended", metadata: ["session": "\(session.id)", "reason": "\(reason)"])
    }
}
