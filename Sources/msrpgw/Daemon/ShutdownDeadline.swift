import Dispatch
import Foundation
import Logging

/// Bounds shutdown: once SIGTERM or SIGINT arrives, the process is gone within
/// `limit`, whatever still runs (a delivery to a network that does not answer,
/// a client library's own shutdown). The services get a shorter graceful
/// period first. Exiting then loses nothing: what was acknowledged is
/// committed, and the next start gives back the leases this run held.
final class ShutdownDeadline {
    private let sources: [any DispatchSourceSignal]

    init(limit: Duration, logger: Logger) {
        let queue = DispatchQueue(label: "msrpgw.shutdown-deadline")
        sources = [SIGTERM, SIGINT].map { signalNumber in
            // ServiceLifecycle ignores the signal's default action too; both sources are told.
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler {
                queue.asyncAfter(deadline: .now() + .nanoseconds(Int(limit.components.seconds) * 1_000_000_000)) {
                    logger.warning("shutdown did not finish in time: exiting now (acknowledged messages are stored)", metadata: [
                        "limit": "\(limit)"])
                    exit(1)
                }
            }
            source.resume()
            return source
        }
    }
}
