import ArgumentParser
import Events
import Foundation
import Queue

/// `msrpgw-queue-torture`, a test tool (not shipped in the daemon) for the crash
/// tests: enqueues and leases as fast as it can until it is killed, and logs
/// each acknowledged step *after* the queue acknowledged it: `E <id>` once an
/// enqueue returned, `D <id>` once a delivery was recorded. Whatever the log
/// holds must be in the database after any crash.
@main
struct QueueTorture: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "msrpgw-queue-torture", abstract: "Load the queue until killed (crash tests).")

    @Option(help: "Queue database.") var db: String
    @Option(help: "Log of acknowledged steps.") var log: String
    @Option(help: "Producers.") var producers = 8
    @Option(help: "Consumers.") var consumers = 2

    func run() async throws {
        let queue = try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: db, followUps: NoFollowUps()))
        let fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot open \(log)") }
        let logLine: @Sendable (String) -> Void = { line in
            var bytes = Array((line + "\n").utf8)
            _ = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }  // one append: atomic
        }
        let pid = getpid()
        FileHandle.standardOutput.write(Data("READY\n".utf8))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for p in 0..<producers {
                group.addTask {
                    var n = 0
                    while true {
                        n += 1
                        let e = NewEvent(adapter: "webhook", target: "https://sink.test/",
                                         origin: EventOrigin(sessionID: "torture", messageID: "\(pid)-\(p)-\(n)"),
                                         body: .inline(Array(repeating: UInt8(n & 0xFF), count: 200)))
                        for id in try await queue.enqueue([e]) { logLine("E \(id)") }
                    }
                }
            }
            for c in 0..<consumers {
                group.addTask {
                    while true {
                        let batch = try await queue.lease(adapter: "webhook", owner: "\(pid)-\(c)", limit: 20, for: .seconds(1))
                        if batch.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
                        for e in batch {
                            try await queue.complete(e.id, owner: "\(pid)-\(c)", outcome: .delivered(proof: "ok"))
                            logLine("D \(e.id)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
