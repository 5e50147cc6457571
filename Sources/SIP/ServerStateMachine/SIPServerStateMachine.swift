import Admission
import Logging
import NIOCore

/// Where a request came from and its responses go back. The user agent's is
/// `SIPSource` (a channel); the state machine needs only these facts about it,
/// so its tests use plain values.
public protocol SIPReplyPath: Sendable, CustomStringConvertible {
    var transport: String { get }
    /// Whether the transport itself retransmits (no SIP timers needed).
    var isReliable: Bool { get }
    var remote: SocketAddress? { get }
}

public struct SIPServerConfiguration: Sendable {
    /// Host (and port) in our Contact.
    public var contactHost: String
    public var user: String
    public var t1: TimeAmount
    public var t2: TimeAmount
    public var t4: TimeAmount
    public var serverName: String
    /// Each TCP/TLS listener's limits (all its connections, and from one source).
    public var connectionLimits: ConnectionLimits
    /// Connections all of the process's listeners may hold together, if shared.
    public var descriptorBudget: DescriptorBudget?
    /// New requests one source address may send (a rate a second and a burst);
    /// beyond it `503` with `Retry-After` (RFC 3261 §21.5.4). nil: no limit.
    public var requestRate: RateLimit?
    /// A TCP/TLS connection that sends nothing for this long is closed (a peer
    /// with more to say opens another; responses fall back to a new connection).
    public var streamIdleTimeout: TimeAmount

    public init(contactHost: String, user: String = "msrpgw", t1: TimeAmount = .milliseconds(500), t2: TimeAmount = .seconds(4),
                t4: TimeAmount = .seconds(5), serverName: String = "msrpgw",
                connectionLimits: ConnectionLimits = ConnectionLimits(), descriptorBudget: DescriptorBudget? = nil,
                streamIdleTimeout: TimeAmount = .seconds(300), requestRate: RateLimit? = nil) {
        self.descriptorBudget = descriptorBudget
        self.requestRate = requestRate
        self.connectionLimits = connectionLimits
        self.streamIdleTimeout = streamIdleTimeout
        self.contactHost = contactHost
        self.user = user
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
        self.serverName = serverName
    }
}

/// RFC 3261 §17.2: a server transaction is named by the top Via's branch and
/// sent-by, and the method (an ACK belongs to its INVITE's).
struct SIPServerTransactionKey: Hashable, Sendable {
    var branch: String
    var sentBy: String
    var method: String
}

/// RFC 3261 §12: Call-ID and both tags.
struct SIPDialogKey: Hashable, Sendable {
    var callID: String
    var localTag: String
    var remoteTag: String
}

/// The UAS side of RFC 3261 with no I/O: server transactions (§17.2, with RFC
/// 6026's Accepted state), the 2xx resent until its ACK (§13.3.1.4), dialogs,
/// and the methods a gateway answers. Inputs are requests, the call handler's
/// answers, timer ticks and sessions ending, each with the time as a value;
/// outputs are actions the user agent performs in order.
struct SIPServerStateMachine<Source: SIPReplyPath> {
    enum Timer: Hashable, Sendable {
        /// Timers G and H (§17.2.1): a final non-2xx answer to an INVITE, until its ACK.
        case finalResponse(SIPServerTransactionKey)
        /// §13.3.1.4: our 2xx to an INVITE, until its ACK.
        case okResponse(SIPDialogKey)
    }

    /// How a BYE of ours travels: a client transaction over UDP (to the first
    /// route, else the caller's Contact, else where the INVITE came from), or
    /// written to the call's TCP/TLS connection (the transport does not lose it).
    enum ByeRoute {
        case transaction(to: SocketAddress)
        case connection(Source)
    }

    enum Action {
        case send([UInt8], to: Source)
        /// Ask the call handler for an answer to an INVITE's offer; report it with `offerAnswered`.
        case offer(SIPServerTransactionKey, SIPRequest, sdp: String)
        /// Ask the call handler to update a session for a re-INVITE; report it with `updateAnswered`.
        case update(SIPServerTransactionKey, session: String, SIPRequest, sdp: String)
        /// Ask the call handler to store a page-mode MESSAGE; report it with `messageStored`.
        case store(SIPServerTransactionKey, SIPRequest)
        /// The INVITE was cancelled: its question to the handler need not be answered.
        case cancelWork(SIPServerTransactionKey)
        case schedule(Timer, in: TimeAmount)
        case cancelTimer(Timer)
        /// Tell the call handler a session's call is over.
        case endSession(String, reason: String)
        case bye(SIPRequest, route: ByeRoute)
        case log(Logger.Level, String, Logger.Metadata)
    }

    private enum TransactionState { case proceeding, completed, accepted, confirmed }

    private struct Transaction {
        var state: TransactionState
        var lastResponse: [UInt8]?
        var source: Source
        var expires: NIODeadline
        var request: SIPRequest
        /// The next wait between copies of a final non-2xx answer (Timer G).
        var interval: TimeAmount = .zero
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
        var source: Source
    }

    /// Our 2xx while it waits for its ACK on an unreliable transport.
    private struct PendingOK {
        var response: [UInt8]
        var source: Source
        var interval: TimeAmount
        /// 64*T1 after it was first sent: no ACK by then ends the call.
        var giveUp: NIODeadline
    }

    private struct Dialog: SIPSessionDialog {
        var session: String
        var acked: Bool
        var localCSeq: UInt32 = 0
        /// For a call we answered: what our BYE needs when the session ends on our side.
        var hangUp: HangUp?
        /// The session ended before the ACK: the BYE goes when it comes (RFC 3261 §15).
        var byeOnAck = false
        var pendingOK: PendingOK?
    }

    let configuration: SIPServerConfiguration
    /// The port of each transport we listen on (for Contact and Via).
    var ports: [String: Int] = [:]
    private var transactions: [SIPServerTransactionKey: Transaction] = [:]
    private var dialogs = SIPDialogTable<Dialog>()
    /// Sessions that ended before their dialog was made (closed between the
    /// offer and the 200): the dialog, once made, is hung up at once. The
    /// oldest are forgotten past 1,000.
    private var endedEarly = RecentStrings(capacity: 1000)

    /// Per source address, when `requestRate` is set.
    private let requestLimiter: RateLimiter<SourceKey>?
    private var rateLog = LogThrottle()

    init(configuration: SIPServerConfiguration) {
        self.configuration = configuration
        self.requestLimiter = configuration.requestRate.map { RateLimiter($0) }
    }

    var dialogCount: Int { dialogs.count }
    var transactionCount: Int { transactions.count }

    // MARK: - Requests

    mutating func receive(_ request: SIPRequest, from source: Source, now: NIODeadline) -> [Action] {
        guard let via = request.headers.vias.first else {
            return [.log(.info, "SIP request without a Via ignored", ["from": "\(source)", "method": "\(request.method)"])]
        }
        let key = SIPServerTransactionKey(branch: via.branch ?? "", sentBy: "\(via.host):\(via.port ?? 5060)",
                                          method: request.method == "ACK" ? "INVITE" : request.method)
        if request.method == "ACK" { return ack(request, key: key, now: now) }
        // A retransmission: answer with what we answered, nothing more. In the
        // Accepted state (a 2xx was sent) it is absorbed: the 2xx has its own
        // retransmission until the ACK (RFC 6026 §7.1).
        if let t = transactions[key] {
            if let last = t.lastResponse, t.state != .accepted { return [.send(last, to: source)] }
            return []
        }
        if let limiter = requestLimiter, let remote = source.remote, let wait = limiter.admit(SourceKey(remote), now: now) {
            let (log, suppressed) = rateLog.admit(now: now)
            return finish(request, key: key, source: source, now: now, response: response(
                to: request, code: 503, reason: "Service Unavailable",
                extra: [SIPHeader("Retry-After", String(wait.retryAfterSeconds)), warning("too many requests from this address")]))
                + (log ? [.log(.warning, "SIP source over its request rate: 503", ["from": "\(source)", "not-logged": "\(suppressed)"])] : [])
        }
        if let refusal = check(request) {
            return finish(request, key: key, source: source, now: now,
                          response: response(to: request, code: refusal.code, reason: refusal.reason, extra: refusal.extra))
        }
        switch request.method {
        case "INVITE": return invite(request, key: key, source: source, now: now)
        case "CANCEL": return cancel(request, key: key, source: source, now: now)
        case "BYE": return bye(request, key: key, source: source, now: now)
        case "MESSAGE":
            // Page mode: 202 once the message is durable. Retransmissions that
            // arrive while it is being stored find the transaction and are absorbed.
            transactions[key] = Transaction(state: .proceeding, source: source, expires: now + configuration.t1 * 64, request: request)
            return [.store(key, request)]
        case "OPTIONS":
            return finish(request, key: key, source: source, now: now, response: response(to: request, code: 200, reason: "OK", extra: capabilities))
        default:
            let known = Self.known.contains(request.method)
            return finish(request, key: key, source: source, now: now, response: response(
                to: request, code: known ? 405 : 501, reason: known ? "Method Not Allowed" : "Not Implemented", extra: capabilities))
        }
    }

    /// Bytes that were not a SIP message: a 400 if enough of a request was read to answer it.
    func invalid(_ error: SIPParseError, from source: Source) -> [Action] {
        var actions: [Action] = [.log(.info, "bad SIP message", ["from": "\(source)", "error": "\(error)"])]
        if let partial = error.partial, partial.method != "ACK" {
            actions.append(.send(response(to: partial, code: 400, reason: "Bad Request (\(error.kind.rawValue))"), to: source))
        }
        return actions
    }

    // MARK: - INVITE

    private mutating func invite(_ request: SIPRequest, key: SIPServerTransactionKey, source: Source, now: NIODeadline) -> [Action] {
        let trying = response(to: request, code: 100, reason: "Trying", toTag: false)
        transactions[key] = Transaction(state: .proceeding, lastResponse: trying, source: source, expires: now + .seconds(300), request: request)
        var actions: [Action] = [.send(trying, to: source)]
        let isSDP = request.headers.contentType?.lowercased().hasPrefix("application/sdp") ?? false
        if !isSDP || request.body.isEmpty {
            actions += complete(key, now: now, with: response(to: request, code: 488, reason: "Not Acceptable Here", extra: [
                warning("an SDP offer with an MSRP media line is required"),
            ]))
            return actions
        }
        let sdp = String(decoding: request.body, as: UTF8.self)
        guard let localTag = request.headers.to?.tag else {
            actions.append(.offer(key, request, sdp: sdp))
            return actions
        }
        // A re-INVITE: it must belong to a dialog we have.
        guard let session = dialogs[Self.dialogKey(request, localTag: localTag)]?.session else {
            actions += complete(key, now: now, with: response(to: request, code: 481, reason: "Call/Transaction Does Not Exist"))
            return actions
        }
        actions.append(.update(key, session: session, request, sdp: sdp))
        return actions
    }

    /// The call handler's answer to an INVITE's offer.
    mutating func offerAnswered(_ key: SIPServerTransactionKey, _ result: Result<(session: String, answer: String), SIPRejection>,
                                now: NIODeadline) -> [Action] {
        guard let t = transactions[key], t.state == .proceeding else {
            // Cancelled (or timed out) while the handler worked: its session is not wanted.
            if case .success(let answer) = result {
                return [.endSession(answer.session, reason: "INVITE transaction ended before the answer")]
            }
            return []
        }
        let request = t.request
        let localTag = SIPUserAgentServer.makeTag()
        switch result {
        case .success(let (session, answer)):
            let ok = response(to: request, code: 200, reason: "OK", tag: localTag,
                              extra: contact(t.source) + capabilities + [SIPHeader("Content-Type", "application/sdp")], body: Array(answer.utf8))
            return accept(key, dialog: Self.dialogKey(request, localTag: localTag), session: session,
                          hangUp: hangUp(for: request, localTag: localTag, source: t.source), response: ok, now: now)
        case .failure(let rejection):
            return complete(key, now: now, with: response(to: request, code: rejection.code, reason: Self.reasonPhrase(rejection.code),
                                                          tag: localTag, extra: [warning(rejection.reason)]))
        }
    }

    /// The call handler's answer to a re-INVITE.
    mutating func updateAnswered(_ key: SIPServerTransactionKey, session: String, _ result: Result<String, SIPRejection>,
                                 now: NIODeadline) -> [Action] {
        guard let t = transactions[key], t.state == .proceeding, let localTag = t.request.headers.to?.tag else { return [] }
        let request = t.request
        switch result {
        case .success(let answer):
            let ok = response(to: request, code: 200, reason: "OK", toTag: false,
                              extra: contact(t.source) + capabilities + [SIPHeader("Content-Type", "application/sdp")], body: Array(answer.utf8))
            return accept(key, dialog: Self.dialogKey(request, localTag: localTag), session: session, hangUp: nil, response: ok, now: now)
        case .failure(let rejection):
            return complete(key, now: now, with: response(to: request, code: rejection.code, reason: Self.reasonPhrase(rejection.code),
                                                          extra: [warning(rejection.reason)]))
        }
    }

    /// A 2xx: the transaction absorbs retransmitted INVITEs for 64*T1 (RFC 6026),
    /// the dialog resends the 2xx until its ACK.
    private mutating func accept(_ key: SIPServerTransactionKey, dialog dkey: SIPDialogKey, session: String, hangUp: HangUp?,
                                 response: [UInt8], now: NIODeadline) -> [Action] {
        guard var t = transactions[key] else { return [] }
        let t1 = configuration.t1
        t.state = .accepted
        t.lastResponse = response
        t.expires = now + t1 * 64
        transactions[key] = t
        var d = dialogs[dkey] ?? Dialog(session: session, acked: false, hangUp: hangUp)
        d.acked = t.source.isReliable
        if endedEarly.remove(session) { d.byeOnAck = true }
        var actions: [Action] = [.send(response, to: t.source)]
        if t.source.isReliable {
            // The session ended while the call was being answered: hang up now that we may.
            if d.byeOnAck {
                dialogs[dkey] = nil
                actions += bye(d)
                return actions
            }
        } else {
            d.pendingOK = PendingOK(response: response, source: t.source, interval: t1, giveUp: now + t1 * 64)
            actions.append(.schedule(.okResponse(dkey), in: t1))
        }
        dialogs[dkey] = d
        return actions
    }

    /// A final non-2xx response to an INVITE: resent (UDP) until its ACK (§17.2.1).
    private mutating func complete(_ key: SIPServerTransactionKey, now: NIODeadline, with response: [UInt8]) -> [Action] {
        guard var t = transactions[key], t.state == .proceeding else { return [] }
        t.state = .completed
        t.lastResponse = response
        t.expires = now + configuration.t1 * 64
        t.interval = configuration.t1
        transactions[key] = t
        // Over TCP and TLS nothing is resent; the sweep ends the transaction.
        if t.source.isReliable { return [.send(response, to: t.source)] }
        return [.send(response, to: t.source), .schedule(.finalResponse(key), in: configuration.t1)]
    }

    private mutating func ack(_ request: SIPRequest, key: SIPServerTransactionKey, now: NIODeadline) -> [Action] {
        let dkey = Self.dialogKey(request, localTag: request.headers.to?.tag ?? "")
        if var d = dialogs[dkey] {
            var actions: [Action] = []
            if d.pendingOK != nil { actions.append(.cancelTimer(.okResponse(dkey))) }
            d.acked = true
            d.pendingOK = nil
            if d.byeOnAck {
                dialogs[dkey] = nil
                return actions + bye(d)
            }
            dialogs[dkey] = d
            return actions
        }
        if var t = transactions[key], t.state == .completed {
            // The ACK of a failure: stop resending it, keep absorbing for T4.
            t.state = .confirmed
            t.expires = now + configuration.t4
            transactions[key] = t
            return [.cancelTimer(.finalResponse(key))]
        }
        return []
    }

    // MARK: - CANCEL, BYE

    private mutating func cancel(_ request: SIPRequest, key: SIPServerTransactionKey, source: Source, now: NIODeadline) -> [Action] {
        let inviteKey = SIPServerTransactionKey(branch: key.branch, sentBy: key.sentBy, method: "INVITE")
        guard let invite = transactions[inviteKey] else {
            return finish(request, key: key, source: source, now: now, response: response(to: request, code: 481, reason: "Call/Transaction Does Not Exist"))
        }
        var actions = finish(request, key: key, source: source, now: now, response: response(to: request, code: 200, reason: "OK"))
        if invite.state == .proceeding {
            actions.append(.cancelWork(inviteKey))
            actions += complete(inviteKey, now: now, with: response(to: invite.request, code: 487, reason: "Request Terminated"))
        }
        return actions
    }

    private mutating func bye(_ request: SIPRequest, key: SIPServerTransactionKey, source: Source, now: NIODeadline) -> [Action] {
        let dkey = Self.dialogKey(request, localTag: request.headers.to?.tag ?? "")
        guard let dialog = dialogs.removeValue(forKey: dkey) else {
            return finish(request, key: key, source: source, now: now, response: response(to: request, code: 481, reason: "Call/Transaction Does Not Exist"))
        }
        var actions: [Action] = dialog.pendingOK == nil ? [] : [.cancelTimer(.okResponse(dkey))]
        actions.append(.endSession(dialog.session, reason: "BYE"))
        return actions + finish(request, key: key, source: source, now: now, response: response(to: request, code: 200, reason: "OK"))
    }

    // MARK: - MESSAGE

    /// The call handler stored a page-mode MESSAGE (202), or refused it.
    mutating func messageStored(_ key: SIPServerTransactionKey, _ result: Result<Void, SIPRejection>, now: NIODeadline) -> [Action] {
        guard let t = transactions[key], t.state == .proceeding else { return [] }
        switch result {
        case .success:
            return finish(t.request, key: key, source: t.source, now: now, response: response(to: t.request, code: 202, reason: "Accepted"))
        case .failure(let rejection):
            var extra = [warning(rejection.reason)]
            if rejection.code == 415 { extra.append(SIPHeader("Accept", "message/cpim, text/plain")) }
            return finish(t.request, key: key, source: t.source, now: now,
                          response: response(to: t.request, code: rejection.code, reason: Self.reasonPhrase(rejection.code), extra: extra))
        }
    }

    /// A final response to a non-INVITE request, kept to answer its retransmissions for 64*T1 (Timer J, §17.2.2).
    private mutating func finish(_ request: SIPRequest, key: SIPServerTransactionKey, source: Source, now: NIODeadline,
                                 response: [UInt8]) -> [Action] {
        let keep: TimeAmount = source.isReliable ? .zero : configuration.t1 * 64
        transactions[key] = Transaction(state: .completed, lastResponse: response, source: source, expires: now + keep, request: request)
        return [.send(response, to: source)]
    }

    // MARK: - Timers

    mutating func timerFired(_ timer: Timer, now: NIODeadline) -> [Action] {
        switch timer {
        case .finalResponse(let key):
            guard var t = transactions[key], t.state == .completed, let last = t.lastResponse else { return [] }
            if now >= t.expires {
                // Timer H: no ACK for our failure answer; the transaction ends.
                transactions[key] = nil
                return [.log(.info, "no ACK for a final response", ["call-id": "\(t.request.headers.callID ?? "")"])]
            }
            t.interval = min(t.interval * 2, configuration.t2)
            transactions[key] = t
            return [.send(last, to: t.source), .schedule(timer, in: min(t.interval, t.expires - now))]
        case .okResponse(let dkey):
            guard var d = dialogs[dkey], !d.acked, var pending = d.pendingOK else { return [] }
            if now >= pending.giveUp {
                // No ACK for 64*T1: the call never completed, but the dialog exists
                // all the same and is ended with a BYE (§13.3.1.4).
                dialogs[dkey] = nil
                return [.log(.warning, "no ACK for the 200: call ended", ["call-id": "\(dkey.callID)"])]
                    + bye(d) + [.endSession(d.session, reason: "no ACK")]
            }
            pending.interval = min(pending.interval * 2, configuration.t2)
            d.pendingOK = pending
            dialogs[dkey] = d
            return [.send(pending.response, to: pending.source), .schedule(timer, in: min(pending.interval, pending.giveUp - now))]
        }
    }

    /// Forgets transactions whose time is over (Timer I, J, and INVITEs nobody answered).
    mutating func expire(now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        for (key, t) in transactions where t.expires <= now {
            transactions[key] = nil
            if t.state == .completed, key.method == "INVITE" { actions.append(.cancelTimer(.finalResponse(key))) }
        }
        return actions
    }

    // MARK: - Dialogs

    /// The session ended on our side (closed through the API, its connection
    /// lost, nobody connected): its dialog goes too. `hadDialog` is false when a
    /// BYE from the peer already ended it.
    mutating func sessionEnded(_ session: String) -> (hadDialog: Bool, actions: [Action]) {
        var actions: [Action] = []
        var ended = false
        let keys = dialogs.keys(ofSession: session)
        for key in keys {
            guard let d = dialogs[key] else { continue }
            if !d.acked {
                // Not before the ACK (§15): the BYE waits for it (or the dialog's end).
                dialogs[key]?.byeOnAck = true
                continue
            }
            dialogs[key] = nil
            ended = true
            // Calls we answered are hung up here; calls we placed by whoever placed them.
            actions += bye(d)
        }
        if keys.isEmpty { endedEarly.insert(session) }
        return (ended, actions)
    }

    /// A dialog of a call we placed: a BYE from the peer then ends `session`.
    mutating func addDialog(callID: String, localTag: String, remoteTag: String, session: String) {
        dialogs[SIPDialogKey(callID: callID, localTag: localTag, remoteTag: remoteTag)] = Dialog(session: session, acked: true)
    }

    /// BYE in a dialog of a call we answered.
    private func bye(_ dialog: Dialog) -> [Action] {
        guard let h = dialog.hangUp else { return [] }
        var headers = SIPHeaders()
        let port = ports[h.source.transport] ?? 5060
        headers.add("Via", "SIP/2.0/\(h.source.transport) \(configuration.contactHost):\(port);branch=z9hG4bK\(SIPUserAgentServer.makeTag())\(SIPUserAgentServer.makeTag());rport")
        headers.add("Max-Forwards", "70")
        headers.add("From", h.local.description)
        headers.add("To", h.remote.description)
        headers.add("Call-ID", h.callID)
        headers.add("CSeq", "\(dialog.localCSeq + 1) BYE")
        for r in h.routes { headers.add("Route", r) }
        headers.add("User-Agent", configuration.serverName)
        let request = SIPRequest(method: "BYE", uri: h.remoteTarget, headers: headers)
        if h.source.isReliable { return [.bye(request, route: .connection(h.source))] }
        let hop = h.routes.first.flatMap(NameAddr.init)?.uri ?? h.remoteTarget
        guard let destination = SIPAddress(hop).flatMap({ try? SocketAddress(ipAddress: $0.host, port: $0.port ?? 5060) }) ?? h.source.remote else {
            return [.log(.warning, "no address to send a BYE to", ["call-id": "\(h.callID)", "target": "\(hop)"])]
        }
        return [.bye(request, route: .transaction(to: destination))]
    }

    private func hangUp(for invite: SIPRequest, localTag: String, source: Source) -> HangUp? {
        guard var local = invite.headers.to, let remote = invite.headers.from,
              let contact = invite.headers.values("Contact").first.flatMap(NameAddr.init) else { return nil }
        local.parameters.append(("tag", localTag))
        return HangUp(callID: invite.headers.callID ?? "", local: local, remote: remote, remoteTarget: contact.uri,
                      routes: invite.headers.values("Record-Route"), source: source)
    }

    private static func dialogKey(_ request: SIPRequest, localTag: String) -> SIPDialogKey {
        SIPDialogKey(callID: request.headers.callID ?? "", localTag: localTag, remoteTag: request.headers.from?.tag ?? "")
    }
}
