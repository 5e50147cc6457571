import Foundation
import GRDB

/// An online copy of the queue and its body files, and its way back.
///
/// The copy is consistent without stopping the gateway: SQLite's `VACUUM INTO`
/// writes one read transaction's view of the queue to a new file, and the body
/// files of the events in that view are then linked (or copied) beside it. A
/// body file goes only when its delivered event is purged after the retention
/// period, so every event that is not delivered in the copy finds its body.
public enum QueueBackup {
    public struct Summary: Sendable, Codable, Equatable {
        public var events: Int
        /// Events not delivered yet (queued, leased, failed or dead): what a restore brings back to do.
        public var pending: Int
        public var bodies: Int
        /// Body files gone between the copy and the linking (delivered events purged meanwhile).
        public var bodiesMissing: Int

        init() { (events, pending, bodies, bodiesMissing) = (0, 0, 0, 0) }

        /// Counts one event; whether it still has something to do.
        mutating func count(state: String) -> Bool {
            events += 1
            if state != "delivered" { pending += 1 }
            return state != "delivered"
        }
    }

    /// The events' states and body files, as the copy holds them.
    private static let rowsSQL = "SELECT id, state, body_path FROM event"

    /// Copies the queue at `database` (with the gateway running or not) into the
    /// empty or absent directory `destination`: `queue.sqlite` and `bodies/`.
    public static func backup(database: String, to destination: String) throws(QueueError) -> Summary {
        let fm = FileManager.default
        if let existing = try? fm.contentsOfDirectory(atPath: destination), !existing.isEmpty {
            throw QueueError(.io, "backup: \(destination) is not empty")
        }
        guard fm.fileExists(atPath: database) else { throw QueueError(.io, "backup: no queue at \(database)") }
        let copy = destination + "/queue.sqlite"
        do {
            try fm.createDirectory(atPath: destination + "/bodies", withIntermediateDirectories: true)
            var config = Configuration()
            config.readonly = true
            config.busyMode = .timeout(10)
            let source = try DatabaseQueue(path: database, configuration: config)
            try source.inDatabase { db in try db.execute(sql: "VACUUM INTO ?", arguments: [copy]) }
            try source.close()
        } catch let error as QueueError {
            throw error
        } catch {
            throw QueueError(.io, "backup: cannot copy the queue \(database) to \(copy): \(error)")
        }
        do {
            let target = try DatabaseQueue(path: copy)
            defer { try? target.close() }
            let rows = try target.read { db in try Row.fetchAll(db, sql: rowsSQL) }
            var summary = Summary()
            for row in rows {
                let pending = summary.count(state: row["state"])
                guard let path: String = row["body_path"] else { continue }
                let linked = destination + "/bodies/" + (path as NSString).lastPathComponent
                if link(path, linked) == 0 || (try? fm.copyItem(atPath: path, toPath: linked)) != nil {
                    summary.bodies += 1
                } else if pending {
                    throw QueueError(.io, "backup: the body file \(path) of a pending event cannot be read")
                } else {
                    summary.bodiesMissing += 1
                }
            }
            return summary
        } catch let error as QueueError {
            throw error
        } catch {
            throw QueueError(.io, "backup: cannot read the copy \(copy): \(error)")
        }
    }

    /// Puts a backup made by `backup` in place as the queue at `database` with
    /// its body files in `bodyDirectory`. Refuses when a queue is already there:
    /// a restore never overwrites a gateway's data.
    public static func restore(from source: String, database: String, bodyDirectory: String) throws(QueueError) -> Summary {
        let fm = FileManager.default
        guard !fm.fileExists(atPath: database) else {
            throw QueueError(.io, "restore: \(database) exists; stop the gateway and move its data directory away first")
        }
        guard fm.fileExists(atPath: source + "/queue.sqlite") else { throw QueueError(.io, "restore: \(source) holds no queue.sqlite") }
        // Built beside the database and renamed at the end: a restore that fails
        // leaves no queue (and no half of one) behind.
        let partial = database + ".restoring"
        do {
            try fm.createDirectory(atPath: bodyDirectory, withIntermediateDirectories: true)
            try? fm.removeItem(atPath: partial)
            try fm.copyItem(atPath: source + "/queue.sqlite", toPath: partial)
            var summary = Summary()
            let queue = try DatabaseQueue(path: partial)
            try queue.write { db in
                // Bodies live in this data directory now: the same file names, a new directory.
                for row in try Row.fetchAll(db, sql: rowsSQL) {
                    _ = summary.count(state: row["state"])
                    guard let path: String = row["body_path"] else { continue }
                    let name = (path as NSString).lastPathComponent
                    let from = source + "/bodies/" + name, to = bodyDirectory + "/" + name
                    if fm.fileExists(atPath: from) {
                        if !fm.fileExists(atPath: to) { try fm.copyItem(atPath: from, toPath: to) }
                        summary.bodies += 1
                    } else {
                        summary.bodiesMissing += 1
                    }
                    try db.execute(sql: "UPDATE event SET body_path = ? WHERE id = ?", arguments: [to, row["id"] as Int64])
                }
            }
            try queue.close()
            try fm.moveItem(atPath: partial, toPath: database)
            return summary
        } catch {
            for suffix in ["", "-wal", "-shm", "-journal"] { try? fm.removeItem(atPath: partial + suffix) }
            throw QueueError(.io, "restore: cannot restore \(source) into \(database): \(error)")
        }
    }
}
