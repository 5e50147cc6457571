import Foundation
import Gateway
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// Tells systemd the daemon is alive (`WATCHDOG=1`) only after it checked
/// itself: the queue answers a read and every event loop runs a task, each
/// within a quarter of the watchdog interval. A wedged writer or a blocked loop
/// stops the pings, and systemd restarts the service (`Restart=on-failure`);
/// a restart loses nothing acknowledged. A full disk is not a reason to
/// restart (a new process cannot fix it): it shows in `STATUS=` and `/healthz`.
struct WatchdogService: Service {
    let notifier: SystemdNotifier
    let interval: Duration
    /// A read of the queue (the gateway's statistics); the gateway, for `STATUS=`.
    let readQueue: @Sendable () async -> Void
    let status: @Sendable () -> String
    let loops: [any EventLoop]
    let logger: Logger

    init(notifier: SystemdNotifier, interval: Duration, gateway: Gateway, loops: [any EventLoop], logger: Logger) {
        self.init(notifier: notifier, interval: interval, readQueue: { _ = try? await gateway.queue.stats() },
                  status: { Self.status(gateway) }, loops: loops, logger: logger)
    }

    init(notifier: SystemdNotifier, interval: Duration, readQueue: @escaping @Sendable () async -> Void,
         status: @escaping @Sendable () -> String, loops: [any EventLoop], logger: Logger) {
        (self.notifier, self.interval, self.readQueue, self.status, self.loops, self.logger) = (notifier, interval, readQueue, status, loops, logger)
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var lastProblem: String?
            while !Task.isCancelled {
                let problem = await check()
                if let problem {
                    if problem != lastProblem { logger.error("watchdog: not telling systemd we are alive", metadata: ["problem": "\(problem)"]) }
                    notifier.status("unhealthy: " + problem)
                } else {
                    notifier.watchdog()
                    if lastProblem != nil { notifier.status(status()) }
                }
                lastProblem = problem
                try await Task.sleep(for: interval / 2)
            }
        }
    }

    /// What is wrong, or nil when all answered in time.
    func check() async -> String? {
        let limit = interval / 4
        let queueAnswered = await withinTime(limit, readQueue)
        if !queueAnswered { return "the queue did not answer a read within \(limit)" }
        for (i, loop) in loops.enumerated() {
            let ran = await withinTime(limit) { try? await loop.submit {}.get() }
            if !ran { return "event loop \(i) did not run a task within \(limit)" }
        }
        return nil
    }

    /// The one-line state systemd shows (`systemctl status`).
    static func status(_ gateway: Gateway) -> String {
        if let failure = gateway.storageFailure { return "degraded: \(failure.reason)" }
        return "serving \(gateway.liveSessions.count) sessions"
    }

    /// Whether `work` finished within `limit`. A wedged check is left behind,
    /// not awaited: the watchdog must notice, not hang with it.
    private func withinTime(_ limit: Duration, _ work: @escaping @Sendable () async -> Void) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let answered = NIOLockedValueBox(false)
            let answer: @Sendable (Bool) -> Void = { value in
                if answered.withLockedValue({ done in defer { done = true }; return !done }) { continuation.resume(returning: value) }
            }
            Task { await work(); answer(true) }
            Task { try? await Task.sleep(for: limit); answer(false) }
        }
    }
}
