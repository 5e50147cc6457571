import ArgumentParser
import Foundation
import Queue

/// `msrpgw backup DEST`: an online copy of the queue and its body files.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the queue and its message bodies into DEST while the gateway runs.",
        discussion: "DEST must be absent or empty. The copy is one consistent view of the queue (SQLite VACUUM INTO) with the body files of its events; `msrpgw restore DEST` brings it back.")

    @Option(help: "Configuration file (TOML) naming the data directory; omit for the embedded defaults.") var config: String?
    @Argument(help: "Directory to write the backup into.") var destination: String

    func run() async throws {
        let c = try loadOrExit(config)
        try exitOnFailure {
            try requireSQLite(c, "backup")
            let summary = try QueueBackup.backup(database: c.queue.path, to: destination)
            try JSONEncoder().encode(summary).write(to: URL(fileURLWithPath: destination + "/backup.json"))
            Printer.line("backup of \(c.queue.path) in \(destination): \(summary.events) events (\(summary.pending) not delivered), \(summary.bodies) body files\(summary.bodiesMissing > 0 ? ", \(summary.bodiesMissing) missing" : "")")
        }
    }
}

/// `msrpgw restore SRC`: a backup put in place as the data directory's queue.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Put a backup made by `msrpgw backup` in place as the queue of the configured data directory.",
        discussion: "Run it with the gateway stopped, into a data directory without a queue (it never overwrites one). The next `serve` delivers what was pending.")

    @Option(help: "Configuration file (TOML) naming the data directory; omit for the embedded defaults.") var config: String?
    @Argument(help: "Directory a backup was written to.") var source: String

    func run() async throws {
        let c = try loadOrExit(config)
        try exitOnFailure {
            try requireSQLite(c, "restore")
            try FileManager.default.createDirectory(atPath: c.dataDirectory, withIntermediateDirectories: true)
            let summary = try QueueBackup.restore(from: source, database: c.queue.path, bodyDirectory: c.gateway.bodyDirectory)
            Printer.line("restored \(source) into \(c.queue.path): \(summary.events) events (\(summary.pending) not delivered), \(summary.bodies) body files\(summary.bodiesMissing > 0 ? ", \(summary.bodiesMissing) missing" : "")")
        }
    }
}

/// Backup and restore copy the SQLite file; a PostgreSQL queue is PostgreSQL's
/// to back up (pg_dump, base backups, replicas).
private func requireSQLite(_ c: DaemonConfiguration, _ command: String) throws(ConfigError) {
    guard c.queue.backend == .sqlite else {
        throw ConfigError("msrpgw \(command) copies a SQLite queue; this queue is on PostgreSQL: use pg_dump or the server's own backups")
    }
}
