import Logging
import NIOConcurrencyHelpers
import NIOCore
import XMPPWire

/// How one message stanza fared.
public enum XMPPDeliveryResult: Sendable, Hashable {
    /// The recipient's client said it got it (XEP-0184 receipt), or the MUC
    /// room reflected it (a groupchat message).
    case received
    /// The server took it (our ping after it was answered), no error came, and
    /// no receipt within the wait.
    case accepted
    /// Refused, by the server or the recipient's.
    case error(XMPPStanzaError)
    /// Not surely written: no connection, or it broke before the server's proof.
    case notSent(String)
}

/// A component connection to one XMPP server that stays up: it reconnects with
/// exponential backoff and jitter, and delivers messages with a proof. A batch
/// of messages is written with a ping to the server after it; the answer to
/// the ping proves the server took every message before it (it handles a
/// stream's stanzas in order, and a local recipient's error comes back before
/// the answer). Then each message waits, up to a receipt wait, for its
/// recipient's XEP-0184 receipt or an error from further away. Receipts and
/// errors are matched by stanza id on the event loop, in stream order, so they
/// are never taken for something else; one that comes after a reconnect still
/// counts. Other stanzas for the component come out of `incoming`.
///
/// Stanzas sent with `send(_:)` (receipts, answers to queries) that find no
/// connection wait in an outbox and are written once after the next handshake.
public final class XMPPComponent: Sendable {
    public let configuration: XMPPComponentConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger
    /// Stanzas nothing inside settled (messages, queries, presence), with
    /// back-pressure on the server's connection (see `XMPPIncoming`).
    public let incoming: XMPPIncoming
    private let incomingContinuation: AsyncStream<XMPPElement>.Continuation
    private let backlog: XMPPBacklog

    private struct Tracked {
        var error: XMPPStanzaError?
        var received = false
        var waiter: CheckedContinuation<XMPPDeliveryResult, Never>?
        var deadline: ContinuousClock.Instant?
    }

    private struct Barrier {
        let continuation: CheckedContinuation<String?, Never>
        let deadline: ContinuousClock.Instant
        let connection: ObjectIdentifier
    }

    private struct State {
        var connection: XMPPComponentConnection?
        /// `run` has ended: deliveries stop waiting for a connection.
        var stopped = false
        /// Message stanzas written and not yet settled, by id.
        var tracked: [String: Tracked] = [:]
        /// Pings after a batch, by id: resumed with nil when answered, else why not.
        var barriers: [String: Barrier] = [:]
        var nextBarrier = 0
        /// Stanzas to write once connected (oldest first).
        var outbox: [XMPPElement] = []
    }

    private let state = NIOLockedValueBox(State())
    private let connectedObservers = NIOLockedValueBox<[@Sendable () -> Void]>([])
    /// Most stanzas held for the next connection; past that the oldest go.
    public static let outboxLimit = 10_000

    /// - Parameter backlogPause: unread stanzas at which reading from the server pauses.
    public init(configuration: XMPPComponentConfiguration, group: any EventLoopGroup, logger: Logger = Logger(label: "msrpgw.xmpp"),
                backlogPause: Int = 5_000) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        let (stream, continuation) = AsyncStream<XMPPElement>.makeStream(bufferingPolicy: .unbounded)
        let backlog = XMPPBacklog(pauseAt: backlogPause, resumeAt: max(1, backlogPause / 5))
        self.backlog = backlog
        incomingContinuation = continuation
        // Bound by pausing the reads, not by the buffer: a stanza the server handed
        // over is never dropped.
        let state = self.state
        incoming = XMPPIncoming(stream: stream, taken: {
            guard backlog.taken(), let c = state.withLockedValue({ $0.connection }) else { return }
            c.channel.setOption(.autoRead, value: true).whenFailure { _ in }
        })
    }

    public var isConnected: Bool { state.withLockedValue { $0.connection != nil } }

    /// Called after each handshake (what a server forgets across a reconnect,
    /// MUC presence, is sent again from here).
    public func onConnected(_ observer: @escaping @Sendable () -> Void) {
        connectedObservers.withLockedValue { $0.append(observer) }
    }
    public var domain: String { configuration.domain }

    /// Connects and keeps connecting until the task is cancelled (which ends the stream politely).
    public func run() async {
        let sweeper = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                self?.sweep()
            }
        }
        defer { sweeper.cancel() }
        var delay = configuration.reconnect.lowerBound
        let server = "\(configuration.host):\(configuration.port)"
        while !Task.isCancelled {
            do {
                let c = try await XMPPComponentConnection.connect(configuration, group: group, logger: logger) { [weak self] stanza in
                    self?.receive(stanza) ?? false
                }
                delay = configuration.reconnect.lowerBound
                logger.info("XMPP component connected", metadata: ["server": "\(server)", "domain": "\(configuration.domain)"])
                let held = state.withLockedValue { s -> [XMPPElement] in
                    s.connection = c
                    defer { s.outbox = [] }
                    return s.outbox
                }
                if !held.isEmpty { c.write(Self.bytes(held)) }
                // The connection may have paused itself before it was ours to resume, and the
                // reader caught up meanwhile: read again (a stanza past the bound pauses anew).
                if !backlog.isPaused { c.channel.setOption(.autoRead, value: true).whenFailure { _ in } }
                for observer in connectedObservers.withLockedValue({ $0 }) { observer() }
                await withTaskCancellationHandler {
                    try? await c.closeFuture.get()
                } onCancel: {
                    c.close()
                }
                logger.warning("XMPP component connection lost", metadata: ["server": "\(server)"])
                connectionEnded(c)
            } catch {
                logger.warning("XMPP component connect failed", metadata: ["server": "\(server)", "error": "\(error)", "retry-in": "\(delay)"])
            }
            // Equal jitter: half the step plus up to the other half at random.
            let half = max(1, delay.milliseconds / 2)
            do { try await Task.sleep(for: .milliseconds(half + Int64.random(in: 0...half))) } catch { break }
            delay = min(delay * 2, configuration.reconnect.upperBound)
        }
        let c = state.withLockedValue { s -> XMPPComponentConnection? in
            s.stopped = true
            defer { s.connection = nil }
            return s.connection
        }
        c?.close()
        if let c { connectionEnded(c) }
        incomingContinuation.finish()
    }

    // MARK: - Sending

    /// Writes a stanza now, or after the next handshake when there is no
    /// connection (once; the oldest are dropped past `outboxLimit`).
    public func send(_ stanza: XMPPElement) {
        let (c, dropped) = state.withLockedValue { s -> (XMPPComponentConnection?, Bool) in
            guard s.connection == nil else { return (s.connection, false) }
            s.outbox.append(stanza)
            guard s.outbox.count > Self.outboxLimit else { return (nil, false) }
            s.outbox.removeFirst()
            return (nil, true)
        }
        if dropped { logger.warning("XMPP outbox full while the server is away: the oldest stanza dropped", metadata: ["limit": "\(Self.outboxLimit)"]) }
        c?.write(Self.bytes([stanza]))
    }

    /// Delivers message stanzas (each with a unique `id`), in order, and says
    /// how each fared: see the type's comment. Those that ask for a receipt, and
    /// groupchat messages (reflected by the room), wait up to `receiptWait` for
    /// it; the others, and all with `receiptWait` zero, settle at the server's proof.
    /// `sent`: called once the stanzas are written to the connection (or will
    /// not be), before the proof and the receipts are awaited: what is written
    /// after it goes out behind them.
    public func deliver(_ messages: [XMPPElement], receiptWait: Duration, proofTimeout: Duration = .seconds(15),
                        waitForConnection: Duration = .seconds(5), sent: @Sendable () -> Void = {}) async -> [XMPPDeliveryResult] {
        guard !messages.isEmpty else { sent(); return [] }
        guard let c = await connection(within: waitForConnection) else {
            sent()
            return messages.map { _ in .notSent("not connected to \(configuration.host):\(configuration.port)") }
        }
        let ids = messages.map { $0["id"] ?? "" }
        let barrierFailure: String? = await withCheckedContinuation { k in
            let ping = state.withLockedValue { s -> XMPPElement in
                for id in ids { s.tracked[id] = Tracked() }
                s.nextBarrier += 1
                let id = "proof-\(s.nextBarrier)"
                s.barriers[id] = Barrier(continuation: k, deadline: .now + proofTimeout, connection: ObjectIdentifier(c))
                return XMPPElement("iq", namespace: XMPPNamespace.component, [
                    "type": "get", "id": id, "from": configuration.domain, "to": configuration.serverDomain,
                ], children: [XMPPElement("ping", namespace: XMPPNamespace.ping)])
            }
            c.write(Self.bytes(messages + [ping]))
            sent()
        }
        var results: [XMPPDeliveryResult] = []
        results.reserveCapacity(ids.count)
        let deadline = ContinuousClock.now + receiptWait
        for (id, message) in zip(ids, messages) {
            // Only a receipt request or a room's reflection is worth waiting for.
            let awaitsMore = message.child("request", namespace: XMPPNamespace.receipts) != nil || message["type"] == "groupchat"
            results.append(await settle(id, barrierFailure: barrierFailure, deadline: awaitsMore ? deadline : .now))
        }
        return results
    }

    /// One message after its batch's proof: settled now, or once its receipt,
    /// its error or its deadline comes.
    private func settle(_ id: String, barrierFailure: String?, deadline: ContinuousClock.Instant) async -> XMPPDeliveryResult {
        await withCheckedContinuation { k in
            let now: XMPPDeliveryResult? = state.withLockedValue { s in
                guard var t = s.tracked[id] else { return .accepted }
                if let error = t.error { s.tracked[id] = nil; return .error(error) }
                if t.received { s.tracked[id] = nil; return .received }
                if let barrierFailure { s.tracked[id] = nil; return .notSent(barrierFailure) }
                if deadline <= .now { s.tracked[id] = nil; return .accepted }
                t.waiter = k
                t.deadline = deadline
                s.tracked[id] = t
                return nil
            }
            if let now { k.resume(returning: now) }
        }
    }

    private static func bytes(_ stanzas: [XMPPElement]) -> ByteBuffer {
        var out: [UInt8] = []
        out.reserveCapacity(stanzas.count * 300)
        for s in stanzas { s.write(into: &out, inheritedNamespace: XMPPNamespace.component) }
        return ByteBuffer(bytes: out)
    }

    private func connection(within timeout: Duration) async -> XMPPComponentConnection? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (c, stopped) = state.withLockedValue { ($0.connection, $0.stopped) }
            if let c { return c }
            if stopped || ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    // MARK: - Receiving

    /// A stanza from the server, on the event loop: a proof, receipt or error
    /// for something we sent is settled here; anything else goes to `incoming`.
    /// - Returns: whether reading from the server must pause (the reader is behind).
    private func receive(_ stanza: XMPPElement) -> Bool {
        let id = stanza["id"]
        if stanza.name == "iq", let id, stanza["type"] == "result" || stanza["type"] == "error" {
            if let barrier = state.withLockedValue({ $0.barriers.removeValue(forKey: id) }) {
                barrier.continuation.resume(returning: nil)
                return false
            }
            if id.hasPrefix("keepalive-") { return false }
        }
        if stanza.name == "message" {
            if stanza["type"] == "error", let id, let error = XMPPStanzaError(stanza: stanza), settle(id, with: .error(error)) { return false }
            // A MUC reflects a groupchat message to its sender: the proof it took it.
            if stanza["type"] == "groupchat", let id, settle(id, with: .received) { return false }
            if let receipt = stanza.child("received", namespace: XMPPNamespace.receipts), let of = receipt["id"] ?? id,
               settle(of, with: .received), stanza.child("body") == nil {
                return false
            }
        }
        incomingContinuation.yield(stanza)
        return backlog.added()
    }

    /// Stanzas yielded and not read yet (for tests and the log).
    public var unread: Int { backlog.waiting }

    /// Records a receipt or an error for a tracked message; false when it is not ours.
    private func settle(_ id: String, with result: XMPPDeliveryResult) -> Bool {
        let waiter = state.withLockedValue { s -> (CheckedContinuation<XMPPDeliveryResult, Never>?, Bool) in
            guard var t = s.tracked[id] else { return (nil, false) }
            if let k = t.waiter {
                s.tracked[id] = nil
                return (k, true)
            }
            switch result {
            case .error(let e): t.error = e
            case .received: t.received = true
            default: break
            }
            s.tracked[id] = t
            return (nil, true)
        }
        waiter.0?.resume(returning: result)
        return waiter.1
    }

    /// Proofs awaited on a connection that is gone will not come.
    private func connectionEnded(_ c: XMPPComponentConnection) {
        let lost = state.withLockedValue { s -> [Barrier] in
            if s.connection === c { s.connection = nil }
            let gone = s.barriers.filter { $0.value.connection == ObjectIdentifier(c) }
            for key in gone.keys { s.barriers[key] = nil }
            return Array(gone.values)
        }
        for b in lost { b.continuation.resume(returning: "the connection to \(configuration.host):\(configuration.port) was lost before the server's proof") }
    }

    /// Settles what has waited too long: a proof that did not come, a receipt that did not.
    private func sweep() {
        let now = ContinuousClock.now
        let (barriers, waiters) = state.withLockedValue { s -> ([Barrier], [CheckedContinuation<XMPPDeliveryResult, Never>]) in
            let late = s.barriers.filter { $0.value.deadline <= now }
            for key in late.keys { s.barriers[key] = nil }
            var waiters: [CheckedContinuation<XMPPDeliveryResult, Never>] = []
            for (id, t) in s.tracked {
                if let k = t.waiter, let d = t.deadline, d <= now {
                    waiters.append(k)
                    s.tracked[id] = nil
                }
            }
            return (Array(late.values), waiters)
        }
        for b in barriers { b.continuation.resume(returning: "no answer from \(configuration.host):\(configuration.port) to the ping after the messages") }
        for k in waiters { k.resume(returning: .accepted) }
    }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
