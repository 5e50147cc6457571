import CoreMetrics
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A listener's door: backs off when `accept` fails (at the descriptor limit,
/// `accept4` fails at once every time it is called: without a pause the event
/// loop spins on it), and refuses connections beyond its limits. One per
/// listening socket; logs both, at most once per 10 s each.
public final class ListenerGuard: Sendable {
    /// What the listener is, in logs and metrics: `msrp`, `msrps`, `sip-tcp`, `api`...
    public let name: String
    public let limits: ConnectionLimits
    /// Shared by all listeners, when given.
    private let budget: DescriptorBudget?
    private let logger: Logger
    private let backoff: TimeAmount
    private let state = NIOLockedValueBox(State())
    /// Made once: a flood of refusals must not look each counter up again.
    private let acceptErrors: Counter
    private let refusals: [ConnectionRefused.Reason: Counter]

    private struct State {
        var open = 0
        var bySource: [SourceKey: Int] = [:]
        var acceptErrors = LogThrottle()
        var refusals = LogThrottle()
    }

    public init(name: String, limits: ConnectionLimits, budget: DescriptorBudget? = nil, logger: Logger, backoff: TimeAmount = .milliseconds(250)) {
        self.name = name
        self.limits = limits
        self.budget = budget
        self.logger = logger
        self.backoff = backoff
        acceptErrors = Counter(label: "msrpgw_accept_errors_total", dimensions: [("listener", name)])
        refusals = Dictionary(uniqueKeysWithValues: ConnectionRefused.Reason.allCases.map { reason in
            (reason, Counter(label: "msrpgw_connections_refused_total", dimensions: [("listener", name), ("reason", reason.rawValue)]))
        })
    }

    /// Connections this listener holds now.
    public var openConnections: Int { state.withLockedValue { $0.open } }

    // MARK: - The listening socket

    /// For `ServerBootstrap.serverChannelInitializer`: the pause on accept errors.
    public func initializeServerChannel(_ channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(AcceptPauseHandler(door: self, pause: backoff))
        }
    }

    /// The same for a listener something else set up (Hummingbird's, whose
    /// `AcceptBackoffHandler` spins as described below): added in front.
    public func guardListening(_ channel: any Channel) async throws {
        let pause = backoff
        try await channel.eventLoop.submit { [self] in
            try channel.pipeline.syncOperations.addHandler(AcceptPauseHandler(door: self, pause: pause), position: .first)
        }.get()
    }

    /// Counts and logs (at most once per 10 s) a failed `accept`.
    fileprivate func acceptFailed(_ error: any Error, pausing: Bool) {
        acceptErrors.increment()
        let (log, suppressed) = state.withLockedValue { $0.acceptErrors.admit() }
        guard log else { return }
        logger.error(pausing ? "cannot accept connections: pausing the listener" : "cannot accept a connection", metadata: [
            "listener": "\(name)", "error": "\(error)", "pause": "\(pausing ? backoff : .zero)", "errors-not-logged": "\(suppressed)",
            "open-connections": "\(openConnections)"])
    }

    // MARK: - Each connection

    /// For the child channel initializer, before anything else: counts the
    /// connection until it closes, or throws (NIO then closes it) when it is over
    /// a limit.
    public func admit(_ channel: any Channel) throws(ConnectionRefused) {
        let source = channel.remoteAddress.map(SourceKey.init)
        // The budget is taken under this listener's lock (always in that order).
        let refusal: ConnectionRefused.Reason? = state.withLockedValue { s in
            if s.open >= limits.perListener { return .listenerFull }
            if let source, s.bySource[source, default: 0] >= limits.perSource { return .sourceFull }
            if let budget, !budget.take() { return .descriptors }
            s.open += 1
            if let source { s.bySource[source, default: 0] += 1 }
            return nil
        }
        if let refusal {
            refused(refusal, from: channel.remoteAddress)
            throw ConnectionRefused(reason: refusal, listener: name)
        }
        channel.closeFuture.whenComplete { [self] _ in
            budget?.give()
            state.withLockedValue { s in
                s.open -= 1
                if let source {
                    let n = (s.bySource[source] ?? 1) - 1
                    s.bySource[source] = n > 0 ? n : nil
                }
            }
        }
    }

    private func refused(_ reason: ConnectionRefused.Reason, from address: SocketAddress?) {
        refusals[reason]?.increment()
        let (log, suppressed) = state.withLockedValue { $0.refusals.admit() }
        guard log else { return }
        logger.warning("connection refused: over a limit", metadata: [
            "listener": "\(name)", "reason": "\(reason.rawValue)", "source": "\(address?.ipAddress ?? "?")",
            "limit": "\(limit(reason))", "refusals-not-logged": "\(suppressed)"])
    }

    private func limit(_ reason: ConnectionRefused.Reason) -> Int {
        switch reason {
        case .listenerFull: limits.perListener
        case .sourceFull: limits.perSource
        case .descriptors: budget?.capacity ?? 0
        }
    }
}

/// Stops a listening socket from accepting for a moment when `accept` fails
/// for want of descriptors or memory.
///
/// NIO's `AcceptBackoffHandler` cannot do it: when the first `accept` of a
/// wake-up fails, the channel's read stays pending and the socket stays
/// registered for readability, so the event loop wakes again at once and spins
/// (`EMFILE` leaves the connection in the backlog). Turning auto-read off takes
/// the socket out of the poll set; it is put back after the pause.
private final class AcceptPauseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let door: ListenerGuard
    private let pause: TimeAmount
    private var resume: Scheduled<Void>?

    init(door: ListenerGuard, pause: TimeAmount) {
        self.door = door
        self.pause = pause
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let io = error as? IOError else {
            context.fireErrorCaught(error)
            return
        }
        let exhausted = [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(io.errnoCode)
        door.acceptFailed(io, pausing: exhausted)
        guard exhausted, resume == nil, let options = context.channel.syncOptions else { return }
        do {
            try options.setOption(.autoRead, value: false)
        } catch {
            return
        }
        let channel = context.channel
        resume = context.eventLoop.assumeIsolated().scheduleTask(in: pause) { [weak self] in
            self?.resume = nil
            try? channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    private func stop() {
        resume?.cancel()
        resume = nil
    }
}

/// A connection closed at once because its listener or its source was at its limit.
public struct ConnectionRefused: Error, CustomStringConvertible {
    public enum Reason: String, Sendable, CaseIterable {
        case listenerFull = "listener-full"
        case sourceFull = "source-full"
        /// All listeners together hold what the descriptor limit allows.
        case descriptors = "descriptors"
    }

    public let reason: Reason
    public let listener: String
    public var description: String { "\(listener): connection refused (\(reason.rawValue))" }
}
