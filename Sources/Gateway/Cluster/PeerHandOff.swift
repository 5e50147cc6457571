import Foundation
import Logging
import NIOConcurrencyHelpers
import Queue

/// Where nodes share the queue: a message for a peer leased by a node with no
/// session of it goes to a node that has one. The peer's messages (the leased
/// one too) become that node's, due at once there.
///
/// The answer is remembered for a second: the messages of one peer come
/// leased together, and one lookup serves them all (a peer connected nowhere
/// is not looked up once per waiting message). A peer found elsewhere is
/// assigned again each time, so that messages stored since go along.
final class PeerHandOff: Sendable {
    private static let memory: Duration = .seconds(1)
    private static let remembered = 1024

    private let queue: any SharedQueue
    private let logger: Logger
    private let recent = NIOLockedValueBox<[String: (node: Int?, at: ContinuousClock.Instant)]>([:])

    init(queue: any SharedQueue, logger: Logger) {
        self.queue = queue
        self.logger = logger
    }

    /// The node `peer` is connected to, now holding its messages; nil when none
    /// is (or the directory cannot be read: the messages wait as on one node).
    func handOff(_ peer: String) async -> Int? {
        let now = ContinuousClock.now
        let known = recent.withLockedValue { $0[peer] }.flatMap { now - $0.at < Self.memory ? $0 : nil }
        do {
            let node: Int?
            if let known {
                node = known.node
            } else {
                node = try await queue.node(holdingPeer: peer, besides: queue.node)
                recent.withLockedValue { r in
                    if r.count >= Self.remembered { r.removeAll() }
                    r[peer] = (node, now)
                }
            }
            guard let node else { return nil }
            try await queue.assign(adapter: "msrp", targets: [peer], to: node)
            if known == nil {
                logger.info("the peer is connected to another node: its messages go there", metadata: ["peer": "\(peer)", "node": "\(node)"])
            }
            return node
        } catch {
            logger.warning("cannot look the peer up in the cluster", metadata: ["peer": "\(peer)", "error": "\(error)"])
            return nil
        }
    }
}
