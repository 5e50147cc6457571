import Foundation
import Logging
import NIOConcurrencyHelpers
import Queue

/// Keeps this node's live sessions in the cluster's directory (a queue other
/// nodes share), so that the API lists them on every node, a message for one
/// of them is accepted on any node, and a peer's waiting messages go to the
/// node it is connected to.
///
/// Sessions begin and end on the MSRP and SIP paths, which must not wait for
/// the database: changes are collected here and written by one task, in
/// order, many per transaction. A write that fails (the database away), or a
/// node that was taken out and registered again, is followed by publishing
/// every live session anew, so the directory comes right by itself.
final class ClusterSessionPublisher: Sendable {
    private struct Pending {
        var adding: [String: ClusterSession] = [:]
        var removing: Set<String> = []
    }

    private let queue: any SharedQueue
    private let live: @Sendable () -> [ClusterSession]
    private let logger: Logger
    private let pending = NIOLockedValueBox(Pending())
    private let signal = WakeSignal()

    /// - Parameter live: this node's live sessions now (what a republish writes).
    init(queue: any SharedQueue, logger: Logger, live: @escaping @Sendable () -> [ClusterSession]) {
        self.queue = queue
        self.logger = logger
        self.live = live
    }

    func began(_ session: ClusterSession) {
        pending.withLockedValue {
            $0.adding[session.id] = session
            $0.removing.remove(session.id)
        }
        signal.signal()
    }

    func ended(_ id: String) {
        pending.withLockedValue {
            // One that began and ended before it was written is never written.
            if $0.adding.removeValue(forKey: id) == nil { $0.removing.insert(id) }
        }
        signal.signal()
    }

    /// Writes changes until cancelled (the node stopping: leaving the cluster
    /// takes its sessions out with it).
    func run() async {
        var registration = queue.registration
        var republish = false
        while !Task.isCancelled {
            await signal.wait(timeout: .seconds(5))
            if Task.isCancelled { return }
            if queue.registration != registration { republish = true }
            let changes = pending.withLockedValue { p in defer { p = Pending() }; return p }
            do {
                if republish {
                    registration = queue.registration
                    let sessions = live()
                    try await queue.republishSessions(sessions)
                    republish = false
                    logger.info("sessions published to the cluster again", metadata: ["sessions": "\(sessions.count)"])
                } else {
                    try await queue.publishSessions(adding: Array(changes.adding.values), removing: Array(changes.removing))
                }
            } catch {
                if !republish {
                    logger.warning("cannot publish sessions to the cluster; all are published again when it answers", metadata: [
                        "error": "\(error)"])
                }
                republish = true
            }
        }
    }
}

extension GatewaySession {
    /// This session as the cluster's directory lists it.
    func directoryEntry(node: Int) -> ClusterSession {
        ClusterSession(
            id: id, node: node, peer: peerAddress.flatMap(RouteTable.normalize), route: route, localURI: msrp.localURI.description,
            remotePath: msrp.remotePath.map(\.description), createdAt: createdAt)
    }
}
