import Events
import Foundation
import Gateway
import Logging
import Queue

/// Opens the queue the configuration names: the SQLite file, or the shared
/// PostgreSQL database (with its password from a file or the environment).
enum QueueOpening {
    /// - Parameter dataDirectory: where a PostgreSQL queue writes the large
    ///   bodies of the events this node leases.
    static func open(
        _ settings: DaemonConfiguration.QueueSettings, node: Int, ownerPrefix: String, dataDirectory: String, logger: Logger
    ) async throws -> any EventQueue {
        switch settings.backend {
        case .sqlite:
            return try SQLiteEventQueue(SQLiteEventQueue.Configuration(
                path: settings.path, followUps: Reporter(), synchronous: settings.synchronous, node: node, defaultRetry: settings.retry))
        case .postgresql:
            guard let url = settings.url else { throw ConfigError("queue.url: backend postgresql needs a postgresql:// URL") }
            let location = try PostgresLocation(url: url)
            let queue = try await PostgresEventQueue(
                PostgresEventQueue.Configuration(
                    location: location, password: try password(settings), followUps: Reporter(), poolSize: settings.poolSize,
                    operationTimeout: settings.timeout, node: node, defaultRetry: settings.retry, affinity: SessionAffinity(),
                    ownerPrefix: ownerPrefix, heartbeat: settings.heartbeat, nodeTimeout: settings.nodeTimeout,
                    bodyCache: dataDirectory + "/leased-bodies"),
                logger: logger)
            logger.info("queue on PostgreSQL", metadata: ["database": "\(location)", "node": "\(node)", "pool": "\(settings.poolSize)"])
            return queue
        }
    }

    /// The password from `password_file` (its first line) or the variable
    /// `password_env` names; nil when neither is set (trust or peer login).
    static func password(_ settings: DaemonConfiguration.QueueSettings) throws(ConfigError) -> String? {
        if let file = settings.passwordFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigError("queue.password_file: cannot read \(file)")
            }
            return text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        }
        if let name = settings.passwordEnv {
            guard let value = ProcessInfo.processInfo.environment[name] else {
                throw ConfigError("queue.password_env: the environment has no \(name)")
            }
            return value
        }
        return nil
    }
}
