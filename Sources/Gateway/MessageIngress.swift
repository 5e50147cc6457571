import Admission
import CPIM
import Events
import Foundation
import Logging
import MSRP
import MSRPTransport
import NIOConcurrencyHelpers
import NIOCore
import Queue

/// Why an incoming message is refused, as the MSRP status the sender gets
/// (a SIP MESSAGE gets the same code).
public struct IngressRefusal: Error, Sendable, CustomStringConvertible {
    public var code: Int
    /// What the sender is told: what it did wrong, or a stable phrase for a
    /// failure of ours (never a path, an errno or an internal name).
    public var reason: String
    /// Our side of a failure of ours, for the log only.
    public var detail: String?
    public var description: String { "\(code) \(reason)" + (detail.map { " (\($0))" } ?? "") }

    public init(code: Int, reason: String, detail: String? = nil) {
        self.code = code
        self.reason = reason
        self.detail = detail
    }

    /// The message could not be made durable: the sender may try again.
    static func cannotStore(_ detail: String) -> IngressRefusal {
        IngressRefusal(code: 500, reason: Self.cannotStorePhrase, detail: detail)
    }

    static let cannotStorePhrase = "the gateway cannot store the message now"
}

/// A page-mode message (a SIP MESSAGE, RFC 3428): no session, one request.
public struct PageModeMessage: Sendable {
    /// Unique per message and stable across retransmissions (Call-ID and CSeq):
    /// the same message received twice is stored once.
    public var id: String
    /// The sender as signalling authenticated it; a CPIM From must match it.
    public var sender: String
    /// The configured route the Request-URI names, for bodies without a CPIM To.
    public var route: String?
    public var contentType: String
    public var body: [UInt8]

    public init(id: String, sender: String, route: String?, contentType: String, body: [UInt8]) {
        self.id = id
        self.sender = sender
        self.route = route
        self.contentType = contentType
        self.body = body
    }
}

/// Turns complete MSRP messages into queue events, and says 200 only once they
/// are durable: unwrap CPIM, check the sender and the content type, resolve the
/// route (403 for anything not configured), enqueue one event per target, then
/// answer. Messages of one session are enqueued in arrival order; those that
/// arrive while a commit is running go together in the next one.
final class MessageIngress: Sendable {
    private let configuration: GatewayConfiguration
    private let routes: LiveRoutes
    private let queue: any EventQueue
    private let sessions: SessionDirectory
    private let bodies: BodyStore
    private let rooms: ChatRooms
    private let reporter = Reporter()
    private let wake: @Sendable (Set<String>) -> Void
    /// Where events are stored already leased and started at once (nil: each
    /// is leased by its worker once woken).
    private let dispatcher: Dispatcher?
    /// Where an IMDN may go without a route (`Adapter.takesNotifications`).
    private let notificationTarget: @Sendable (String) -> RouteTarget?
    private let metrics: GatewayMetrics
    private let logger: Logger
    private let lanes = NIOLockedValueBox<[String: Lane]>([:])
    private let cpim = CPIMParser()
    /// Whether message bodies could be written lately (for `/healthz`): a full
    /// disk may fail the body files before the queue. Cleared when a message is stored.
    let bodyWrites = FailureRun<String>()
    /// Messages per MSRP connection (`connectionMessageRate`), if limited.
    private let connectionLimiter: RateLimiter<ObjectIdentifier>?
    /// One log line per 10 s for sessions over their rate.
    private let rateLog = NIOLockedValueBox(LogThrottle())

    private struct Pending {
        var message: MSRPIncomingMessage
        var session: GatewaySession
    }

    /// Messages of one session waiting for their turn; `running` while a batch of
    /// them is being stored (the next batch starts from its completion).
    private struct Lane {
        var pending: [Pending] = []
        var running = false
    }

    init(
        configuration: GatewayConfiguration, routes: LiveRoutes, queue: any EventQueue, sessions: SessionDirectory,
        bodies: BodyStore, rooms: ChatRooms, metrics: GatewayMetrics, logger: Logger, dispatcher: Dispatcher?,
        wake: @escaping @Sendable (Set<String>) -> Void, notificationTarget: @escaping @Sendable (String) -> RouteTarget? = { _ in nil }
    ) {
        self.dispatcher = dispatcher
        self.notificationTarget = notificationTarget
        self.rooms = rooms
        self.configuration = configuration
        self.routes = routes
        self.queue = queue
        self.sessions = sessions
        self.bodies = bodies
        self.metrics = metrics
        self.logger = logger
        self.wake = wake
        self.connectionLimiter = configuration.connectionMessageRate.map { RateLimiter($0) }
    }

    /// Called on the connection's event loop: queue the message on its session's
    /// lane, or refuse it at once when the session is over its rate.
    func receive(_ message: MSRPIncomingMessage, on session: GatewaySession) {
        if let over = session.inbound?.withLockedValue({ bucket in bucket.take().map { (wait: $0, rate: bucket.limit.rate) } }) {
            refuseOverRate(message, session: session, wait: over.wait, surface: "msrp-session",
                           comment: "too many messages: at most \(Int(over.rate)) a second")
            return
        }
        if let limiter = connectionLimiter, let connection = session.msrp.connection,
           let wait = limiter.admit(ObjectIdentifier(connection)) {
            refuseOverRate(message, session: session, wait: wait, surface: "msrp-connection",
                           comment: "too many messages on this connection: at most \(Int(limiter.limit.rate)) a second")
            return
        }
        let start: Bool = lanes.withLockedValue { lanes in
            lanes[session.id, default: Lane()].pending.append(Pending(message: message, session: session))
            if lanes[session.id]?.running == true { return false }
            lanes[session.id]?.running = true
            return true
        }
        guard start else { return }
        let batch = take(session.id)
        if batch.allSatisfy(isSmall) {
            // Prepared here, on the connection's loop (CPIM and routes only: the
            // body stays inline), and stored without a task: the writer's
            // completion answers. A lone message hops to the writer and back to
            // its loop, where a task cost two more hops (issue 15).
            commit(batch, of: session.id)
        } else {
            Task { self.commit(batch, of: session.id) }
        }
    }

    /// Takes what waits on a session's lane; forgets the lane when nothing does.
    private func take(_ id: String) -> [Pending] {
        lanes.withLockedValue { lanes in
            let b = lanes[id]?.pending ?? []
            if b.isEmpty {
                lanes[id] = nil
            } else {
                lanes[id]?.pending = []
            }
            return b
        }
    }

    /// A message whose body stays in memory and inline in the queue: preparing
    /// it writes no file, so it may be prepared on an event loop.
    private func isSmall(_ p: Pending) -> Bool {
        if case .memory(let buffer) = p.message.message.body { return buffer.readableBytes <= bodies.inlineLimit }
        return false
    }

    /// Prepares each message (refusing the bad ones at once), enqueues the
    /// events of the rest in one transaction, acknowledges them once it is
    /// durable, then commits what arrived on the session meanwhile (on the
    /// connection's loop when it is all small, else in a task; never on the
    /// queue's writer).
    private func commit(_ batch: [Pending], of id: String) {
        // The session's connection loop, where the answers go: the writer's
        // completion hops there once for a batch of small messages, so that the
        // queue's single writer (every message's serial path) only stores and
        // hands back, and the 200s, metrics and hand-over run beside it (issue 15).
        // A batch with body files goes to a task instead: what it concludes may
        // unlink files, which is no work for an event loop.
        let loop = batch.allSatisfy(isSmall) ? batch.first?.session.msrp.connection?.eventLoop : nil
        let next: @Sendable () -> Void = {
            let more = self.take(id)
            guard !more.isEmpty else { return }
            if let loop, loop.inEventLoop, more.allSatisfy(self.isSmall) {
                self.commit(more, of: id)
            } else {
                Task { self.commit(more, of: id) }
            }
        }
        let accepted: [(Pending, [NewEvent])] = batch.compactMap { p in
            do throws(IngressRefusal) {
                return (p, try prepare(p.message, session: p.session))
            } catch {
                refuse(p, error)
                return nil
            }
        }
        guard !accepted.isEmpty else { return next() }
        let events = accepted.flatMap(\.1)
        let claims = dispatcher?.claims(for: events) ?? DeliveryClaims()
        queue.enqueueNotingRepeats(events, claims: claims.leases) { result in
            let conclude: @Sendable () -> Void = { self.committed(result, accepted, events, claims, next: next) }
            if let loop { loop.execute(conclude) } else { Task { conclude() } }
        }
    }

    /// What the store of a batch came to: 200s and hand-over, 500s, or (for a
    /// repeated message) what it is owed first.
    private func committed(
        _ result: Result<[Enqueued], QueueError>, _ accepted: [(Pending, [NewEvent])], _ events: [NewEvent], _ claims: DeliveryClaims,
        next: @escaping @Sendable () -> Void
    ) {
        switch result {
        case .success(let enqueued) where enqueued.contains(where: \.wasStored):
            // A repeated message's sender is owed its acknowledgements again: made
            // durable before its 200, like everything the 200 promises (reads
            // and a write: in a task).
            Task {
                do throws(QueueError) {
                    let owedAgain = try await self.acknowledgeRepeats(accepted, enqueued)
                    self.stored(accepted, events, claims, enqueued, owedAgain: owedAgain)
                } catch {
                    self.notStored(accepted, events, claims, stored: enqueued, error)
                }
                next()
            }
            return
        case .success(let enqueued):
            self.stored(accepted, events, claims, enqueued, owedAgain: false)
        case .failure(let error):
            self.notStored(accepted, events, claims, stored: nil, error)
        }
        next()
    }

    /// The batch is durable: every sender gets its 200, and the events go on.
    private func stored(_ accepted: [(Pending, [NewEvent])], _ events: [NewEvent], _ claims: DeliveryClaims, _ enqueued: [Enqueued], owedAgain: Bool) {
        for (p, _) in accepted {
            p.message.acknowledgement.accept()
            metrics.messageIn(accepted: true)
            logger.debug("message accepted", metadata: ["session": "\(p.session.id)", "message-id": "\(p.message.message.messageID)"])
        }
        bodyWrites.succeeded()
        bodies.reconcile(events: events, enqueued)
        let notStarted = dispatcher?.handOver(events, claims, stored: enqueued) ?? Set(events.map(\.adapter))
        wake(notStarted.union(owedAgain ? [reporter.adapter] : []))
    }

    /// Every sender of the batch gets 500 (it may send again). `stored`: the
    /// events were stored, but what a repeat owes could not be; they go on (their
    /// bodies stay), and the sender's retry is found by its dedupe key.
    private func notStored(_ accepted: [(Pending, [NewEvent])], _ events: [NewEvent], _ claims: DeliveryClaims, stored: [Enqueued]?, _ error: QueueError) {
        if let stored {
            bodies.reconcile(events: events, stored)
            wake(dispatcher?.handOver(events, claims, stored: stored) ?? Set(events.map(\.adapter)))
        } else {
            dispatcher?.handOver(events, claims, stored: nil)
            bodies.discard(events)
        }
        logger.error("cannot store incoming messages", metadata: [
            "error": "\(error)", "count": "\(accepted.count)", "stored": "\(stored != nil)"])
        for (p, _) in accepted {
            p.message.acknowledgement.reject(code: 500, comment: IngressRefusal.cannotStorePhrase)
            metrics.messageIn(accepted: false)
        }
    }

    /// For messages some of whose events were already stored (the sender sent
    /// the same Message-ID again on a new transaction), what the `Reporter` owes
    /// now that the stored deliveries may have ended.
    private func acknowledgeRepeats(_ accepted: [(Pending, [NewEvent])], _ stored: [Enqueued]) async throws(QueueError) -> Bool {
        var owed: [NewEvent] = []
        var index = 0
        for (p, events) in accepted {
            defer { index += events.count }
            let repeats = stored[index..<index + events.count].filter(\.wasStored)
            guard !repeats.isEmpty, let origin = events.first?.origin, origin.successReport else { continue }
            for r in repeats {
                guard let event = try await queue.event(r.id),
                      let report = reporter.duplicateAcknowledgement(of: event, repeatedBy: origin, transactionID: p.message.head.transactionID)
                else { continue }
                owed.append(report)
            }
        }
        guard !owed.isEmpty else { return false }
        _ = try await queue.enqueue(owed)
        logger.info("repeated message: success REPORTs owed again", metadata: ["count": "\(owed.count)"])
        return true
    }

    /// A page-mode message: the checks and routes of an MSRP message, stored in
    /// one transaction; returns once durable. IMDNs it asks for go back to the
    /// sender (as page-mode messages: the origin's From-Path is the sender's URI).
    func receive(pageMode m: PageModeMessage) async throws(IngressRefusal) -> [EventID] {
        guard m.body.count <= configuration.maxMessageBytes else {
            throw IngressRefusal(code: 413, reason: "message of \(m.body.count) bytes over \(configuration.maxMessageBytes)")
        }
        guard let contentType = try? MediaType(m.contentType) else { throw IngressRefusal(code: 400, reason: "malformed Content-Type \(m.contentType)") }
        guard configuration.acceptTypes.contains(where: { (try? MediaType($0))?.accepts(contentType) ?? false }) else {
            throw IngressRefusal(code: 415, reason: "\(contentType.essence) is not accepted; send one of \(configuration.acceptTypes.joined(separator: ", "))")
        }
        var envelope: EventEnvelope
        var targets: [RouteTarget]
        var imdn: IMDNRequest?
        var offset: Int64 = 0
        if contentType.essence == "message/cpim" {
            let u = try unwrapCPIM(Array(m.body.prefix(cpim.maxHeaderBytes)), peer: m.sender)
            (envelope, targets, imdn, offset) = (u.envelope, u.targets, u.imdn, u.bodyOffset)
        } else {
            guard let address = m.route ?? configuration.defaultRoute else {
                throw IngressRefusal(code: 404, reason: "no route for this Request-URI, and no default route")
            }
            do { targets = try routes.resolve(address) } catch { throw IngressRefusal(code: error.code, reason: error.reason) }
            envelope = EventEnvelope(from: m.sender, to: [address], contentType: contentType.description)
        }
        let size = Int64(m.body.count)
        let origin = reporter.pageModeOrigin(id: m.id, sender: m.sender, size: size, imdn: imdn)
        let stored: [EventBody]
        do {
            stored = try bodies.store(.memory(ByteBuffer(bytes: m.body)), from: offset, size: size - offset, copies: targets.count)
        } catch {
            bodyWrites.failed("message bodies cannot be written: \(error)")
            throw IngressRefusal.cannotStore("cannot store the message body: \(error)")
        }
        let events = zip(targets, stored).map { target, body in
            NewEvent(kind: .delivery, adapter: target.adapter, target: target.target, origin: origin, envelope: envelope, body: body,
                     dedupeKey: "page|\(m.id)|\(target.adapter)|\(target.target)")
        }
        do {
            let ids = try await queue.enqueueNotingRepeats(events)
            metrics.messageIn(accepted: true)
            bodyWrites.succeeded()
            bodies.reconcile(events: events, ids)
            wake(Set(events.map(\.adapter)))
            return ids.map(\.id)
        } catch {
            bodies.discard(events)
            metrics.messageIn(accepted: false)
            logger.error("cannot store a page-mode message", metadata: ["id": "\(m.id)", "error": "\(error)"])
            throw IngressRefusal.cannotStore("\(error)")
        }
    }

    private func refuseOverRate(_ message: MSRPIncomingMessage, session: GatewaySession, wait: TimeAmount, surface: String, comment: String) {
        metrics.rateLimited(surface: surface)
        if rateLog.withLockedValue({ $0.admit().log }) {
            logger.warning("MSRP session or connection over its message rate: refusing with 403", metadata: [
                "session": "\(session.id)", "peer": "\(session.peerAddress ?? "-")", "retry-after-ms": "\(wait.nanoseconds / 1_000_000)"])
        }
        reject(message, code: 403, comment: comment)
    }

    private func refuse(_ p: Pending, _ error: IngressRefusal) {
        logger.info("message refused", metadata: [
            "session": "\(p.session.id)", "message-id": "\(p.message.message.messageID)", "code": "\(error.code)", "reason": "\(error.reason)",
            "detail": "\(error.detail ?? "-")",
        ])
        reject(p.message, code: error.code, comment: error.reason)
    }

    /// Answers the sender and drops what the message left on disk.
    private func reject(_ message: MSRPIncomingMessage, code: Int, comment: String) {
        if case .file(let path) = message.message.body { unlink(path) }
        message.acknowledgement.reject(code: code, comment: comment)
        metrics.messageIn(accepted: false)
    }

    /// The events for one message, or the refusal.
    private func prepare(_ message: MSRPIncomingMessage, session: GatewaySession) throws(IngressRefusal) -> [NewEvent] {
        let head = message.head
        let size = message.message.size
        guard size <= configuration.maxMessageBytes else {
            throw IngressRefusal(code: 413, reason: "message of \(size) bytes over \(configuration.maxMessageBytes)")
        }
        let contentType = head.headers.contentType ?? .textPlain
        var envelope: EventEnvelope
        var targets: [RouteTarget]
        var imdn: IMDNRequest?
        var bodyOffset: Int64 = 0
        var roomCopies: [RouteTarget] = []
        var unresolved: [String] = []

        if contentType.essence == "message/cpim" {
            let prefix: [UInt8]
            do {
                prefix = try bodyPrefix(message.message.body, limit: cpim.maxHeaderBytes)
            } catch {
                throw IngressRefusal.cannotStore("cannot read the message body: \(error)")
            }
            let unwrapped = try unwrapCPIM(prefix, peer: session.peerAddress, room: rooms.room(of: session).map { ($0, session.id) })
            (envelope, targets, imdn, bodyOffset) = (unwrapped.envelope, unwrapped.targets, unwrapped.imdn, unwrapped.bodyOffset)
            (roomCopies, unresolved) = (unwrapped.roomCopies, unwrapped.unresolved)
        } else {
            guard let address = session.route ?? configuration.defaultRoute else {
                throw IngressRefusal(code: 403, reason: "no route for \(contentType.essence) without a CPIM To: send message/cpim")
            }
            do { targets = try routes.resolve(address) } catch { throw IngressRefusal(code: error.code, reason: error.reason) }
            envelope = EventEnvelope(from: session.peerAddress, to: [address], contentType: contentType.description)
        }

        let origin = reporter.origin(session: session.id, messageID: message.message.messageID, head: head, size: size, imdn: imdn)
        let bodies: [EventBody]
        do {
            bodies = try self.bodies.store(message.message.body, from: bodyOffset, size: size - bodyOffset, copies: targets.count + roomCopies.count)
        } catch {
            bodyWrites.failed("message bodies cannot be written: \(error)")
            throw IngressRefusal.cannotStore("cannot store the message body: \(error)")
        }
        let quiet = reporter.roomCopy(of: origin)
        var events = zip(targets + roomCopies, bodies).enumerated().map { i, pair in
            NewEvent(kind: .delivery, adapter: pair.0.adapter, target: pair.0.target, origin: i < targets.count ? origin : quiet, envelope: envelope, body: pair.1)
        }
        if let report = reporter.notInRoomReport(origin: origin, envelope: envelope, unresolved: unresolved) { events.append(report) }
        return events
    }

    /// A message/cpim body's headers: the envelope, the routes of its To and cc,
    /// the IMDN it asks for and where its content starts. `peer` is the sender
    /// as signalling authenticated it: the CPIM From must be the same (403).
    struct UnwrappedCPIM {
        var envelope: EventEnvelope
        var targets: [RouteTarget]
        var imdn: IMDNRequest?
        var bodyOffset: Int64
        /// In a chat room: the other participants' sessions that get a copy.
        var roomCopies: [RouteTarget] = []
        /// In a chat room: private recipients that are not in it (RFC 7701 §7.2: a 427 REPORT).
        var unresolved: [String] = []
    }

    /// - Parameter room: the chat room the sending session is in, and the session.
    func unwrapCPIM(_ prefix: [UInt8], peer: String?, room: (address: String, session: String)? = nil) throws(IngressRefusal) -> UnwrappedCPIM {
        let cpimHead: CPIMParser.Head
        do {
            cpimHead = try cpim.parseHead(prefix)
        } catch {
            throw IngressRefusal(code: 400, reason: error.description)
        }
        let m = CPIMMessage(headers: cpimHead.headers, contentHeaders: cpimHead.contentHeaders)
        guard let innerText = m.contentType, let inner = try? MediaType(innerText) else {
            throw IngressRefusal(code: 400, reason: "CPIM content has a malformed Content-Type")
        }
        guard configuration.acceptWrappedTypes.contains(where: { (try? MediaType($0))?.accepts(inner) ?? false }) else {
            throw IngressRefusal(code: 415, reason: "\(inner.essence) is not accepted inside message/cpim")
        }
        guard let fromText = m.values("From").first else { throw IngressRefusal(code: 400, reason: "CPIM message without From") }
        let from: CPIMAddress
        do { from = try CPIMAddress(parsing: fromText) } catch { throw IngressRefusal(code: 400, reason: error.description) }
        if let peer, RouteTable.normalize(peer) != RouteTable.normalize(from.uri) {
            throw IngressRefusal(code: 403, reason: "CPIM From \(from.uri) is not the sender \(peer)")
        }
        var to: [CPIMAddress] = []
        var cc: [CPIMAddress] = []
        do {
            to = try m.values("To").map { v throws(CPIMError) in try CPIMAddress(parsing: v) }
            cc = try m.values("cc").map { v throws(CPIMError) in try CPIMAddress(parsing: v) }
        } catch {
            throw IngressRefusal(code: 400, reason: error.description)
        }
        guard !to.isEmpty else { throw IngressRefusal(code: 400, reason: "CPIM message without To") }
        var targets: [RouteTarget] = []
        var roomCopies: [RouteTarget] = []
        var unresolved: [String] = []
        if let room {
            // RFC 7701 §7: to the room, everyone else in it (and the room's own route, say
            // a bridged IRC channel); otherwise a private message to the participants named.
            let others = sessions.all.filter { $0.id != room.session && !$0.msrp.isClosed && rooms.room(of: $0) == room.address }
            if (to + cc).contains(where: { RouteTable.normalize($0.uri) == room.address }) {
                if routes.contains(room.address) {
                    do { targets = try routes.resolve(room.address) } catch { throw IngressRefusal(code: error.code, reason: error.reason) }
                }
                roomCopies = others.map { RouteTarget(adapter: "msrp", target: $0.id) }
            } else {
                // Where the room is bridged to (an IRC channel, say): a private message to
                // someone on that network (`irc://NET/nick,isnick`) goes there.
                let bridged = routes.contains(room.address) ? ((try? routes.resolve(room.address)) ?? []) : []
                for address in to + cc {
                    // The whole address first; a nickname only in the room's own
                    // nickname form, so that nobody's nickname captures another's messages.
                    let uri = RouteTable.normalize(address.uri)
                    var matches = others.filter { uri != nil && $0.peerAddress.flatMap(RouteTable.normalize) == uri }
                    if matches.isEmpty, let holder = rooms.holder(of: address.uri, in: room.address) {
                        matches = others.filter { $0.id == holder }
                    }
                    if matches.isEmpty, let via = bridged.first(where: { sameNetwork($0.target, address.uri) }) {
                        let t = RouteTarget(adapter: via.adapter, target: address.uri)
                        if !targets.contains(t) { targets.append(t) }
                        continue
                    }
                    if matches.isEmpty { unresolved.append(address.uri) }
                    for m in matches where !roomCopies.contains(where: { $0.target == m.id }) { roomCopies.append(RouteTarget(adapter: "msrp", target: m.id)) }
                }
            }
        }
        let isNotification = inner.essence == IMDN.contentType
        for address in room == nil ? to + cc : [] {
            if isNotification, !routes.contains(address.uri), let direct = notificationTarget(address.uri) {
                if !targets.contains(direct) { targets.append(direct) }
                continue
            }
            do {
                for t in try routes.resolve(address.uri) where !targets.contains(t) { targets.append(t) }
            } catch {
                throw IngressRefusal(code: error.code, reason: error.reason)
            }
        }
        var extensions: [String: String] = [:]
        for h in m.headers where h.name.utf8.contains(UInt8(ascii: ".")) {  // bytes: String.contains(String) is Foundation's search
            extensions[h.name] = extensions[h.name].map { $0 + ", " + h.value } ?? h.value
        }
        let envelope = EventEnvelope(
            from: from.description, to: to.map(\.description), cc: cc.map(\.description), subject: m.subjects.first?.text,
            dateTime: m.dateTime, contentType: innerText, headers: extensions)
        return UnwrappedCPIM(
            envelope: envelope, targets: targets, imdn: IMDNRequest(m), bodyOffset: Int64(cpimHead.contentOffset), roomCopies: roomCopies,
            unresolved: unresolved)
    }

    /// The first `limit` bytes of a body (the CPIM headers are in there).
    private func bodyPrefix(_ body: AssembledMessage.Body, limit: Int) throws -> [UInt8] {
        switch body {
        case .memory(let buffer):
            return Array(buffer.readableBytesView.prefix(limit))
        case .file(let path):
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { throw BodyStoreError(path: path, errno: errno) }
            defer { close(fd) }
            var out = [UInt8](repeating: 0, count: limit)
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, limit, 0) }
            guard n >= 0 else { throw BodyStoreError(path: path, errno: errno) }
            return Array(out.prefix(n))
        }
    }
}

/// Whether two URIs name the same network: the same scheme and authority
/// (`irc://libera/ops` and `irc://libera/alice,isnick`), or an XMPP room and
/// one of its occupants (`xmpp:chat@conference.example.org` and
/// `xmpp:chat@conference.example.org/bob`). Other URIs without an authority
/// (`sip:`, `mailto:`) never do: a room's SIP route is no way out.
func sameNetwork(_ a: String, _ b: String) -> Bool {
    if a.lowercased().hasPrefix("xmpp:"), b.lowercased().hasPrefix("xmpp:") {
        let room = a.dropFirst(5).lowercased()
        let occupant = b.dropFirst(5).lowercased()
        return !room.contains("/") && occupant.hasPrefix(room + "/") && occupant.count > room.count + 1
    }
    func network(_ u: String) -> Substring? {
        guard let r = u.range(of: "://"), r.lowerBound > u.startIndex else { return nil }
        let rest = u[r.upperBound...]
        let end = rest.firstIndex(of: "/") ?? rest.endIndex
        return end > rest.startIndex ? u[..<end] : nil
    }
    guard let x = network(a), let y = network(b) else { return false }
    return x.lowercased() == y.lowercased()
}
