import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

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

/// The UAS side of RFC 3261 over UDP and TCP: server transactions (§17.2, with
/// RFC 6026's Accepted state), the 2xx retransmission until ACK (§13.3.1.4),
/// dialogs, and the methods a gateway answers: INVITE, re-INVITE, ACK, BYE,
/// CANCEL, OPTIONS, MESSAGE; anything else gets 405 or 501.
public final class SIPUserAgentServer: SIPTransportReceiver, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Host (and port) in our Contact.
        public var contactHost: String
        public var user: String
        public var t1: TimeAmount
        public var t2: TimeAmount
        public var t4: TimeAmount
        public var serverName: String

        public init(contactHost: String, user: String = "msrpgw", t1: TimeAmount = .milliseconds(500), t2: TimeAmount = .seconds(4),
                    t4: TimeAmount = .seconds(5), serverName: String = "msrpgw") {
            self.contactHost = contactHost
            self.user = user
            self.t1 = t1
            self.t2 = t2
            self.t4 = t4
            self.serverName = serverName
        }
    }

    static let allowed = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE"]
    /// Methods we know but do not serve here (405 with Allow); others get 501.
    static let known = ["REGISTER", "SUBSCRIBE", "NOTIFY", "REFER", "INFO", "UPDATE", "PRACK", "PUBLISH"]

    public let configuration: Configuration
    private let handler: any SIPCallHandler
    private let logger: Logger
    private let group: any EventLoopGroup
    private let loop: any EventLoop
    private let parser = SIPParser()
    private let state = NIOLockedValueBox(State())
    private var channels: [any Channel] = []
    private var ports: [String: Int] = [:]
    private var sweeper: RepeatedTask?
    /// The UDP socket requests of ours leave from (so responses come back to it).
    private let udpChannel = NIOLockedValueBox<(any Channel)?>(nil)
    /// Requests we send: REGISTER, MESSAGE, INVITE, BYE.
    let clientTransactions: SIPClientTransactions

    private struct TransactionKey: Hashable {
        var branch: String
        var sentBy: String
        var method: String
    }

    private enum TransactionState { case proceeding, completed, accepted, confirmed }

    private struct Transaction {
        var state: TransactionState
        var lastResponse: [UInt8]?
        var source: SIPSource
        var expires: NIODeadline
        var retransmit: Scheduled<Void>?
        var work: Task<Void, Never>?
        var request: SIPRequest
    }

    private struct DialogKey: Hashable {
        var callID: String
        var localTag: String
        var remoteTag: String
    }

    private struct Dialog {
        var session: String
        /// The 2xx we resend until its ACK comes (unreliable transports).
        var pending2xx: Scheduled<Void>?
        var acked: Bool
        var localCSeq: UInt32 = 0
        /// For a call we answered: what our BYE needs when the session ends on our side.
        var hangUp: HangUp?
        /// The session ended before the ACK: the BYE goes when it comes (RFC 3261 §15).
        var byeOnAck = false
    }

    /// RFC 3261 §12.1.1: the UAS's view of the dialog, for requests it sends in it.
    private struct HangUp {
        var callID: String
        /// Our side: the INVITE's To with our tag.
        var local: NameAddr
        /// The caller: the INVITE's From.
        var remote: NameAddr
        /// The caller's Contact.
        var remoteTarget: String
        /// The INVITE's Record-Route, in order.
        var routes: [String]
        /// Where the INVITE came from (its connection, for TCP and TLS).
        var source: SIPSource
    }

    private struct State {
        var transactions: [TransactionKey: Transaction] = [:]
        var dialogs: [DialogKey: Dialog] = [:]
        /// Sessions that ended before their dialog was made (closed between the
        /// offer and the 200): the dialog, once made, is hung up at once. The
        /// oldest are forgotten past 1,000.
        var endedEarly: [String] = []
    }

    public init(configuration: Configuration, handler: any SIPCallHandler, group: any EventLoopGroup, logger: Logger = Logger(label: "msrpgw.sip")) {
        self.configuration = configuration
        self.handler = handler
        self.group = group
        self.loop = group.next()
        self.logger = logger
        let udp = udpChannel
        self.clientTransactions = SIPClientTransactions(loop: loop, t1: configuration.t1, t2: configuration.t2) { bytes, destination in
            guard let channel = udp.withLockedValue({ $0 }) else { return false }
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: destination, data: ByteBuffer(bytes: bytes)), promise: nil)
            return true
        }
    }

    /// Sends a request we built as a client transaction; returns its final response.
    public func request(_ request: SIPRequest, to destination: SocketAddress) async throws -> SIPResponse {
        try await clientTransactions.start(request, to: destination)
    }

    /// Sends an ACK for a 2xx (not a transaction of its own, §13.2.2.4) and keeps
    /// it to answer retransmissions of that 2xx.
    public func sendAck(_ ack: SIPRequest, to destination: SocketAddress) {
        let bytes = SIPMessage.request(ack).serialized
        clientTransactions.rememberAck(bytes, callID: ack.headers.callID ?? "", cseq: ack.headers.cseq?.number ?? 0, destination: destination)
        udpChannel.withLockedValue { $0 }?.writeAndFlush(AddressedEnvelope(remoteAddress: destination, data: ByteBuffer(bytes: bytes)), promise: nil)
    }

    /// The port requests of ours are sent from (Via and Contact), if listening on UDP.
    public var udpPort: Int? { state.withLockedValue { _ in ports["UDP"] } }

    // MARK: - Listening

    /// Binds a UDP listener; returns the port.
    @discardableResult
    public func listenUDP(host: String, port: Int) async throws -> Int {
        let handler = SIPDatagramHandler(parser: parser, receiver: self)
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            // Bursts of calls must not overflow the default ~200 KB socket buffer:
            // a dropped BYE leaves a session nobody ends.
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) } }
            .bind(host: host, port: port).get()
        udpChannel.withLockedValue { $0 = channel }
        return started(channel, "UDP")
    }

    /// Binds a TCP listener; returns the port.
    @discardableResult
    public func listenTCP(host: String, port: Int) async throws -> Int {
        try await listenStream(host: host, port: port, tls: nil)
    }

    /// Binds a TLS listener (RFC 3261 §26.2: SIP over TLS, `transport=tls`); returns the port.
    @discardableResult
    public func listenTLS(host: String, port: Int, context: NIOSSLContext) async throws -> Int {
        try await listenStream(host: host, port: port, tls: context)
    }

    private func listenStream(host: String, port: Int, tls: NIOSSLContext?) async throws -> Int {
        let parser = self.parser
        let transport = tls == nil ? "TCP" : "TLS"
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [weak self] ch in
                ch.eventLoop.makeCompletedFuture {
                    guard let self else { return }
                    if let tls { try ch.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try ch.pipeline.syncOperations.addHandler(SIPStreamHandler(parser: parser, transport: transport, receiver: self))
                }
            }
            .bind(host: host, port: port).get()
        return started(channel, transport)
    }

    private func started(_ channel: any Channel, _ transport: String) -> Int {
        let port = channel.localAddress?.port ?? 0
        state.withLockedValue { _ in
            channels.append(channel)
            ports[transport] = port
        }
        if sweeper == nil {
            sweeper = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [weak self] _ in self?.sweep() }
        }
        logger.info("SIP listening", metadata: ["transport": "\(transport)", "port": "\(port)"])
        return port
    }

    public func shutdown() async {
        sweeper?.cancel()
        clientTransactions.cancelAll()
        let all = state.withLockedValue { _ in channels }
        for c in all { try? await c.close() }
    }

    /// The session ended on our side (closed through the API, its connection
    /// lost, nobody connected): its dialog goes too. Returns whether it had one
    /// (false when a BYE from the peer already ended it).
    @discardableResult
    public func sessionEnded(_ session: String) -> Bool {
        let ended: [Dialog] = state.withLockedValue { s in
            var ended: [Dialog] = []
            for (key, d) in s.dialogs where d.session == session {
                if !d.acked {
                    // Not before the ACK (§15): the BYE waits for it (or the dialog's end).
                    s.dialogs[key]?.byeOnAck = true
                    continue
                }
                d.pending2xx?.cancel()
                s.dialogs.removeValue(forKey: key)
                ended.append(d)
            }
            if ended.isEmpty, !s.dialogs.values.contains(where: { $0.session == session }) {
                s.endedEarly.append(session)
                if s.endedEarly.count > 1000 { s.endedEarly.removeFirst(s.endedEarly.count - 1000) }
            }
            return ended
        }
        // Calls we answered are hung up here; calls we placed by whoever placed them.
        for d in ended { sendBye(d) }
        return !ended.isEmpty
    }

    /// BYE in a dialog of a call we answered: a client transaction over UDP; on a
    /// TCP or TLS connection, written to it (the transport does not lose it).
    private func sendBye(_ dialog: Dialog) {
        guard let h = dialog.hangUp else { return }
        let cseq = dialog.localCSeq + 1
        var headers = SIPHeaders()
        let transport = h.source.transport
        let port = state.withLockedValue { _ in ports[transport] } ?? 5060
        headers.add("Via", "SIP/2.0/\(transport) \(configuration.contactHost):\(port);branch=z9hG4bK\(Self.makeTag())\(Self.makeTag());rport")
        headers.add("Max-Forwards", "70")
        headers.add("From", h.local.description)
        headers.add("To", h.remote.description)
        headers.add("Call-ID", h.callID)
        headers.add("CSeq", "\(cseq) BYE")
        for r in h.routes { headers.add("Route", r) }
        headers.add("User-Agent", configuration.serverName)
        let bye = SIPRequest(method: "BYE", uri: h.remoteTarget, headers: headers)
        let logger = self.logger
        switch h.source {
        case .udp(_, let source):
            // To the first route, else the caller's Contact (§12.2.1.1), else where the INVITE came from.
            let hop = (h.routes.first.flatMap(NameAddr.init)?.uri ?? h.remoteTarget)
            let destination = SIPAddress(hop).flatMap { try? SocketAddress(ipAddress: $0.host, port: $0.port ?? 5060) } ?? source
            Task {
                do {
                    let r = try await self.request(bye, to: destination)
                    logger.info("call hung up", metadata: ["call-id": "\(h.callID)", "bye": "\(r.code)"])
                } catch {
                    logger.info("BYE got no answer", metadata: ["call-id": "\(h.callID)", "error": "\(error)"])
                }
            }
        case .stream:
            h.source.send(SIPMessage.request(bye).serialized)
            logger.info("call hung up", metadata: ["call-id": "\(h.callID)"])
        }
    }

    private static func hangUp(for invite: SIPRequest, localTag: String, source: SIPSource) -> HangUp? {
        guard var local = invite.headers.to, let remote = invite.headers.from,
              let contact = invite.headers.values("Contact").first.flatMap(NameAddr.init) else { return nil }
        local.parameters.append(("tag", localTag))
        return HangUp(callID: invite.headers.callID ?? "", local: local, remote: remote, remoteTarget: contact.uri,
                      routes: invite.headers.values("Record-Route"), source: source)
    }

    /// A dialog of a call we placed: a BYE from the peer then ends `session`.
    public func addDialog(callID: String, localTag: String, remoteTag: String, session: String) {
        state.withLockedValue { s in
            s.dialogs[DialogKey(callID: callID, localTag: localTag, remoteTag: remoteTag)] = Dialog(session: session, acked: true)
        }
    }

    /// Live dialogs (calls), for the API and tests.
    public var dialogCount: Int { state.withLockedValue { $0.dialogs.count } }

    // MARK: - Receiving

    func receiveInvalid(_ error: SIPParseError, from source: SIPSource) {
        logger.info("bad SIP message", metadata: ["from": "\(source)", "error": "\(error)"])
        guard let partial = error.partial, partial.method != "ACK" else { return }
        send(response(to: partial, code: 400, reason: "Bad Request (\(error.kind.rawValue))"), to: source)
    }

    func receive(_ message: SIPMessage, from source: SIPSource) {
        guard case .request(let request) = message else {
            if case .response(let response) = message, !clientTransactions.receive(response) {
                logger.debug("response matching no request of ours", metadata: ["from": "\(source)", "code": "\(response.code)"])
            }
            return
        }
        guard let via = request.headers.vias.first else { return }
        let key = TransactionKey(branch: via.branch ?? "", sentBy: "\(via.host):\(via.port ?? 5060)", method: request.method == "ACK" ? "INVITE" : request.method)

        if request.method == "ACK" {
            ack(request, key: key)
            return
        }
        // A retransmission: answer with what we answered, nothing more. In the
        // Accepted state (a 2xx was sent) it is absorbed: the 2xx has its own
        // retransmission until the ACK (RFC 6026 §7.1).
        if let (last, accepted): ([UInt8]?, Bool) = state.withLockedValue({ s in s.transactions[key].map { ($0.lastResponse, $0.state == .accepted) } }) {
            if let last, !accepted { source.send(last) }
            return
        }
        if let refusal = check(request) {
            finish(request, key: key, source: source, response: response(to: request, code: refusal.code, reason: refusal.reason, extra: refusal.extra))
            return
        }
        switch request.method {
        case "INVITE": invite(request, key: key, source: source)
        case "CANCEL": cancel(request, key: key, source: source)
        case "BYE": bye(request, key: key, source: source)
        case "MESSAGE": pageMode(request, key: key, source: source)
        case "OPTIONS":
            finish(request, key: key, source: source, response: response(to: request, code: 200, reason: "OK", extra: capabilities))
        default:
            let known = Self.known.contains(request.method)
            finish(request, key: key, source: source, response: response(
                to: request, code: known ? 405 : 501, reason: known ? "Method Not Allowed" : "Not Implemented", extra: capabilities))
        }
    }

    private var capabilities: [SIPHeader] {
        [SIPHeader("Allow", Self.allowed.joined(separator: ", ")), SIPHeader("Accept", "application/sdp, message/cpim, text/plain"), SIPHeader("Supported", "")]
            .filter { !$0.value.isEmpty }
    }

    /// Request checks before any method logic (RFC 3261 §8.2).
    private func check(_ r: SIPRequest) -> (code: Int, reason: String, extra: [SIPHeader])? {
        let scheme = r.uri.split(separator: ":", maxSplits: 1).first?.lowercased() ?? ""
        guard scheme == "sip" || scheme == "sips" else { return (416, "Unsupported URI Scheme", []) }
        if let mf = r.headers.maxForwards, mf <= 0, r.method != "OPTIONS" { return (483, "Too Many Hops", []) }
        let required = r.headers.values("Require")
        if !required.isEmpty, r.method != "CANCEL" {
            return (420, "Bad Extension", [SIPHeader("Unsupported", required.joined(separator: ", "))])
        }
        return nil
    }

    // MARK: - INVITE

    private func invite(_ request: SIPRequest, key: TransactionKey, source: SIPSource) {
        let trying = response(to: request, code: 100, reason: "Trying", toTag: false)
        state.withLockedValue { s in
            s.transactions[key] = Transaction(state: .proceeding, lastResponse: trying, source: source, expires: .now() + .seconds(300), request: request)
        }
        source.send(trying)

        let remoteTag = request.headers.from?.tag ?? ""
        let existingTag = request.headers.to?.tag
        let handler = self.handler
        let work = Task { [weak self] in
            guard let self else { return }
            let sdpText = String(decoding: request.body, as: UTF8.self)
            let isSDP = request.headers.contentType?.lowercased().hasPrefix("application/sdp") ?? false
            var final: [UInt8]
            var dialog: (DialogKey, String)?
            var hangUp: HangUp?
            if !isSDP || request.body.isEmpty {
                final = self.response(to: request, code: 488, reason: "Not Acceptable Here", extra: [SIPHeader("Warning", "399 \(self.configuration.contactHost) \"an SDP offer with an MSRP media line is required\"")])
            } else if let localTag = existingTag {
                // A re-INVITE: it must belong to a dialog we have.
                let dkey = DialogKey(callID: request.headers.callID ?? "", localTag: localTag, remoteTag: remoteTag)
                guard let session = self.state.withLockedValue({ $0.dialogs[dkey]?.session }) else {
                    self.complete(request, key: key, with: self.response(to: request, code: 481, reason: "Call/Transaction Does Not Exist"))
                    return
                }
                do throws(SIPRejection) {
                    let answer = try await handler.update(session: session, invite: request, sdp: sdpText)
                    final = self.response(to: request, code: 200, reason: "OK", toTag: false, extra: self.contact(source) + self.capabilities + [SIPHeader("Content-Type", "application/sdp")], body: Array(answer.utf8))
                    dialog = (dkey, session)
                } catch {
                    final = self.response(to: request, code: error.code, reason: self.reasonPhrase(error.code), extra: [SIPHeader("Warning", "399 \(self.configuration.contactHost) \"\(error.reason.replacingQuotes())\"")])
                }
            } else {
                let localTag = Self.makeTag()
                do throws(SIPRejection) {
                    let (session, answer) = try await handler.offer(request, sdp: sdpText)
                    if Task.isCancelled {
                        handler.end(session: session, reason: "CANCEL")
                        return
                    }
                    final = self.response(to: request, code: 200, reason: "OK", tag: localTag, extra: self.contact(source) + self.capabilities + [SIPHeader("Content-Type", "application/sdp")], body: Array(answer.utf8))
                    dialog = (DialogKey(callID: request.headers.callID ?? "", localTag: localTag, remoteTag: remoteTag), session)
                    hangUp = Self.hangUp(for: request, localTag: localTag, source: source)
                } catch {
                    if Task.isCancelled { return }
                    final = self.response(to: request, code: error.code, reason: self.reasonPhrase(error.code), tag: localTag,
                                          extra: [SIPHeader("Warning", "399 \(self.configuration.contactHost) \"\(error.reason.replacingQuotes())\"")])
                }
            }
            if let (dkey, session) = dialog {
                self.accept(request, key: key, dialog: dkey, session: session, hangUp: hangUp, response: final, source: source)
            } else {
                self.complete(request, key: key, with: final)
            }
        }
        state.withLockedValue { s in s.transactions[key]?.work = work }
    }

    /// A 2xx: the transaction absorbs retransmitted INVITEs for 64*T1 (RFC 6026),
    /// the dialog resends the 2xx until its ACK.
    private func accept(_ request: SIPRequest, key: TransactionKey, dialog dkey: DialogKey, session: String, hangUp: HangUp?, response: [UInt8], source: SIPSource) {
        let t1 = configuration.t1
        let proceed: Bool = state.withLockedValue { s in
            guard var t = s.transactions[key], t.state == .proceeding else { return false }
            t.state = .accepted
            t.lastResponse = response
            t.expires = .now() + t1 * 64
            s.transactions[key] = t
            var d = s.dialogs[dkey] ?? Dialog(session: session, acked: false, hangUp: hangUp)
            d.acked = source.isReliable
            if let i = s.endedEarly.firstIndex(of: session) {
                s.endedEarly.remove(at: i)
                d.byeOnAck = true
            }
            s.dialogs[dkey] = d
            return true
        }
        guard proceed else {
            handler.end(session: session, reason: "INVITE transaction ended before the answer")
            return
        }
        source.send(response)
        // The session ended while the call was being answered: hang up once we may.
        if source.isReliable, let d = takeDialogToHangUp(dkey) { sendBye(d) }
        if !source.isReliable { retransmit2xx(dkey, response: response, source: source, interval: t1, elapsed: .zero) }
    }

    private func retransmit2xx(_ dkey: DialogKey, response: [UInt8], source: SIPSource, interval: TimeAmount, elapsed: TimeAmount) {
        let t1 = configuration.t1, t2 = configuration.t2
        let task = loop.scheduleTask(in: interval) { [weak self] in
            guard let self else { return }
            let (acked, exists) = self.state.withLockedValue { s in (s.dialogs[dkey]?.acked ?? true, s.dialogs[dkey] != nil) }
            guard exists, !acked else { return }
            if elapsed + interval >= t1 * 64 {
                // No ACK for 64*T1: the call never completed (§13.3.1.4).
                let dialog = self.state.withLockedValue { $0.dialogs.removeValue(forKey: dkey) }
                if let dialog {
                    // The dialog exists all the same: it is ended with a BYE (§13.3.1.4).
                    self.logger.warning("no ACK for the 200: call ended", metadata: ["call-id": "\(dkey.callID)"])
                    self.sendBye(dialog)
                    self.handler.end(session: dialog.session, reason: "no ACK")
                }
                return
            }
            source.send(response)
            self.retransmit2xx(dkey, response: response, source: source, interval: min(interval * 2, t2), elapsed: elapsed + interval)
        }
        state.withLockedValue { s in s.dialogs[dkey]?.pending2xx = task }
    }

    /// A final non-2xx response to an INVITE: resent (UDP) until its ACK (§17.2.1).
    private func complete(_ request: SIPRequest, key: TransactionKey, with response: [UInt8]) {
        let t1 = configuration.t1
        let source: SIPSource? = state.withLockedValue { s in
            guard var t = s.transactions[key], t.state == .proceeding else { return nil }
            t.state = .completed
            t.lastResponse = response
            t.expires = .now() + t1 * 64
            s.transactions[key] = t
            return t.source
        }
        guard let source else { return }
        source.send(response)
        if !source.isReliable { retransmitFinal(key, interval: t1) }
    }

    private func retransmitFinal(_ key: TransactionKey, interval: TimeAmount) {
        let t2 = configuration.t2
        let task = loop.scheduleTask(in: interval) { [weak self] in
            guard let self else { return }
            let (source, last): (SIPSource?, [UInt8]?) = self.state.withLockedValue { s in
                guard let t = s.transactions[key], t.state == .completed, t.expires > .now() else { return (nil, nil) }
                return (t.source, t.lastResponse)
            }
            guard let source, let last else { return }
            source.send(last)
            self.retransmitFinal(key, interval: min(interval * 2, t2))
        }
        state.withLockedValue { s in s.transactions[key]?.retransmit = task }
    }

    private func ack(_ request: SIPRequest, key: TransactionKey) {
        let t4 = configuration.t4
        let callID = request.headers.callID ?? ""
        let dkey = DialogKey(callID: callID, localTag: request.headers.to?.tag ?? "", remoteTag: request.headers.from?.tag ?? "")
        let hangUpNow: Dialog? = state.withLockedValue { s in
            if var d = s.dialogs[dkey] {
                d.acked = true
                d.pending2xx?.cancel()
                d.pending2xx = nil
                if d.byeOnAck {
                    s.dialogs[dkey] = nil
                    return d
                }
                s.dialogs[dkey] = d
            } else if var t = s.transactions[key], t.state == .completed {
                // The ACK of a failure: stop resending it, keep absorbing for T4.
                t.state = .confirmed
                t.retransmit?.cancel()
                t.expires = .now() + t4
                s.transactions[key] = t
            }
            return nil
        }
        if let hangUpNow { sendBye(hangUpNow) }
    }

    /// Takes a dialog whose session already ended out of the table, if it is one.
    private func takeDialogToHangUp(_ dkey: DialogKey) -> Dialog? {
        state.withLockedValue { s in
            guard let d = s.dialogs[dkey], d.byeOnAck else { return nil }
            d.pending2xx?.cancel()
            s.dialogs[dkey] = nil
            return d
        }
    }

    // MARK: - CANCEL, BYE

    private func cancel(_ request: SIPRequest, key: TransactionKey, source: SIPSource) {
        let inviteKey = TransactionKey(branch: key.branch, sentBy: key.sentBy, method: "INVITE")
        let found: (Transaction, Bool)? = state.withLockedValue { s in
            guard let t = s.transactions[inviteKey] else { return nil }
            return (t, t.state == .proceeding)
        }
        guard let (invite, pending) = found else {
            finish(request, key: key, source: source, response: response(to: request, code: 481, reason: "Call/Transaction Does Not Exist"))
            return
        }
        finish(request, key: key, source: source, response: response(to: request, code: 200, reason: "OK"))
        if pending {
            invite.work?.cancel()
            complete(invite.request, key: inviteKey, with: response(to: invite.request, code: 487, reason: "Request Terminated", tag: Self.makeTag()))
        }
    }

    private func bye(_ request: SIPRequest, key: TransactionKey, source: SIPSource) {
        let dkey = DialogKey(callID: request.headers.callID ?? "", localTag: request.headers.to?.tag ?? "", remoteTag: request.headers.from?.tag ?? "")
        let dialog = state.withLockedValue { s -> Dialog? in
            guard let d = s.dialogs.removeValue(forKey: dkey) else { return nil }
            d.pending2xx?.cancel()
            return d
        }
        guard let dialog else {
            finish(request, key: key, source: source, response: response(to: request, code: 481, reason: "Call/Transaction Does Not Exist"))
            return
        }
        handler.end(session: dialog.session, reason: "BYE")
        finish(request, key: key, source: source, response: response(to: request, code: 200, reason: "OK"))
    }

    // MARK: - MESSAGE

    /// Page mode: 202 once the message is durable. Retransmissions that arrive
    /// while it is being stored find the transaction and are absorbed.
    private func pageMode(_ request: SIPRequest, key: TransactionKey, source: SIPSource) {
        state.withLockedValue { s in
            s.transactions[key] = Transaction(state: .proceeding, lastResponse: nil, source: source, expires: .now() + configuration.t1 * 64, request: request)
        }
        let handler = self.handler
        Task { [weak self] in
            do throws(SIPRejection) {
                try await handler.message(request)
                guard let self else { return }
                self.finish(request, key: key, source: source, response: self.response(to: request, code: 202, reason: "Accepted"))
            } catch {
                guard let self else { return }
                var extra = [SIPHeader("Warning", "399 \(self.configuration.contactHost) \"\(error.reason.replacingQuotes())\"")]
                if error.code == 415 { extra.append(SIPHeader("Accept", "message/cpim, text/plain")) }
                self.finish(request, key: key, source: source, response: self.response(to: request, code: error.code, reason: self.reasonPhrase(error.code), extra: extra))
            }
        }
    }

    /// A final response to a non-INVITE request, kept to answer its retransmissions (§17.2.2).
    private func finish(_ request: SIPRequest, key: TransactionKey, source: SIPSource, response: [UInt8]) {
        let keep: TimeAmount = source.isReliable ? .zero : configuration.t1 * 64
        state.withLockedValue { s in
            s.transactions[key] = Transaction(state: .completed, lastResponse: response, source: source, expires: .now() + keep, request: request)
        }
        source.send(response)
    }

    private func sweep() {
        let now = NIODeadline.now()
        state.withLockedValue { s in
            s.transactions = s.transactions.filter { _, t in
                if t.expires > now { return true }
                t.retransmit?.cancel()
                return false
            }
        }
    }

    private func send(_ bytes: [UInt8], to source: SIPSource) { source.send(bytes) }

    // MARK: - Responses

    private func contact(_ source: SIPSource) -> [SIPHeader] {
        let transport = source.transport.lowercased()
        let port = state.withLockedValue { _ in ports[source.transport] } ?? 5060
        return [SIPHeader("Contact", "<sip:\(configuration.user)@\(configuration.contactHost):\(port);transport=\(transport)>")]
    }

    /// A response to `request` (§8.2.6): its Vias, From, Call-ID and CSeq, its To
    /// with our tag (`tag`, or a new one, unless `toTag` is false or it has one).
    func response(to request: SIPRequest, code: Int, reason: String, toTag: Bool = true, tag: String? = nil,
                  extra: [SIPHeader] = [], body: [UInt8] = []) -> [UInt8] {
        var h = SIPHeaders()
        for v in request.headers.fields where v.name.lowercased() == "via" { h.add("Via", v.value) }
        if let from = request.headers["From"] { h.add("From", from) }
        if var to = request.headers["To"] {
            if toTag, request.headers.to?.tag == nil, code > 100 { to += ";tag=\(tag ?? Self.makeTag())" }
            h.add("To", to)
        }
        if let callID = request.headers.callID { h.add("Call-ID", callID) }
        if let cseq = request.headers["CSeq"] { h.add("CSeq", cseq) }
        // A response that makes a dialog carries the request's Record-Route, in
        // order, so the caller's in-dialog requests take the proxies' path (§12.1.1).
        if request.method == "INVITE", (101..<300).contains(code) {
            for f in request.headers.fields where f.name.lowercased() == "record-route" { h.add("Record-Route", f.value) }
        }
        h.add("Server", configuration.serverName)
        for e in extra { h.add(e.name, e.value) }
        return SIPMessage.response(SIPResponse(code: code, reason: reason, headers: h, body: body)).serialized
    }

    func reasonPhrase(_ code: Int) -> String {
        [400: "Bad Request", 403: "Forbidden", 404: "Not Found", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
         480: "Temporarily Unavailable",
         486: "Busy Here", 488: "Not Acceptable Here", 500: "Server Internal Error", 503: "Service Unavailable"][code] ?? "Error"
    }

    public static func makeTag() -> String {
        var rng = SystemRandomNumberGenerator()
        return String(rng.next() & 0xFFFF_FFFF_FFFF, radix: 36)
    }
}

extension String {
    /// For a quoted Warning text.
    func replacingQuotes() -> String { String(map { $0 == "\"" ? "'" : ($0 == "\r" || $0 == "\n" ? " " : $0) }) }
}
