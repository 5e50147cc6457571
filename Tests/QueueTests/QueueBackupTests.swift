import Events
import Foundation
import Testing

@testable import Queue

/// Backup and restore of the queue file and its bodies: the round trip, and a
/// table of what they refuse (with what they leave behind: nothing).
@Suite struct QueueBackupTests {
    /// A queue with one pending event whose body is a file, and one inline.
    func populated() async throws -> (dir: String, database: String) {
        let dir = try temporaryDirectory()
        let database = dir + "/queue.sqlite"
        let queue = try makeQueue(path: database)
        try FileManager.default.createDirectory(atPath: dir + "/bodies", withIntermediateDirectories: true)
        let bodyPath = dir + "/bodies/" + UUID().uuidString.lowercased()
        try Data(repeating: 0x61, count: 4096).write(to: URL(fileURLWithPath: bodyPath))
        var withFile = message("file-1")
        withFile.body = .file(path: bodyPath, size: 4096)
        _ = try await queue.enqueue([withFile, message("inline-1")])
        return (dir, database)
    }

    @Test func roundTripMovesBodiesToTheNewDirectory() async throws {
        let (_, database) = try await populated()
        let backup = try temporaryDirectory() + "/backup"
        let made = try QueueBackup.backup(database: database, to: backup)
        #expect(made.events == 2 && made.pending == 2 && made.bodies == 1 && made.bodiesMissing == 0)
        let target = try temporaryDirectory()
        let restored = try QueueBackup.restore(from: backup, database: target + "/queue.sqlite", bodyDirectory: target + "/bodies")
        #expect(restored == made)
        let queue = try makeQueue(path: target + "/queue.sqlite")
        let events = try await queue.lease(adapter: "webhook", owner: "t", limit: 10, for: .seconds(30))
        #expect(events.count == 2)
        for e in events {
            if case .file(let path, _) = e.body {
                #expect(path.hasPrefix(target + "/bodies/"))
                #expect(FileManager.default.contents(atPath: path)?.count == 4096)
            }
        }
    }

    /// Each refused case: what it is given, the words of its error.
    @Test func refusals() async throws {
        let (dir, database) = try await populated()
        // Backup into a directory that holds something.
        let full = try temporaryDirectory()
        try Data("x".utf8).write(to: URL(fileURLWithPath: full + "/other"))
        #expect(throws: QueueError.self) { try QueueBackup.backup(database: database, to: full) }
        // Backup of a queue that does not exist.
        let nowhere = try temporaryDirectory() + "/b"
        #expect(throws: QueueError.self) { try QueueBackup.backup(database: dir + "/absent.sqlite", to: nowhere) }
        // Backup when a pending event's body file is gone.
        let bodies = try FileManager.default.contentsOfDirectory(atPath: dir + "/bodies")
        let saved = try Data(contentsOf: URL(fileURLWithPath: dir + "/bodies/" + bodies[0]))
        try FileManager.default.removeItem(atPath: dir + "/bodies/" + bodies[0])
        do {
            _ = try QueueBackup.backup(database: database, to: try temporaryDirectory() + "/b")
            Issue.record("a backup without a pending event's body")
        } catch { #expect("\(error)".contains("cannot be read"), "\(error)") }
        try saved.write(to: URL(fileURLWithPath: dir + "/bodies/" + bodies[0]))

        let backup = try temporaryDirectory() + "/backup"
        _ = try QueueBackup.backup(database: database, to: backup)
        // Restore over a queue that exists: refused, the queue untouched.
        let before = try Data(contentsOf: URL(fileURLWithPath: database))
        do {
            _ = try QueueBackup.restore(from: backup, database: database, bodyDirectory: dir + "/bodies")
            Issue.record("a restore over a queue")
        } catch { #expect("\(error)".contains("exists"), "\(error)") }
        #expect(try Data(contentsOf: URL(fileURLWithPath: database)) == before)
        // Restore from a directory without a queue.
        let empty = try temporaryDirectory()
        let target = try temporaryDirectory()
        #expect(throws: QueueError.self) {
            try QueueBackup.restore(from: empty, database: target + "/queue.sqlite", bodyDirectory: target + "/bodies")
        }
        // Restore of a file that is not a database: refused, nothing left behind.
        try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: empty + "/queue.sqlite"))
        #expect(throws: QueueError.self) {
            try QueueBackup.restore(from: empty, database: target + "/queue.sqlite", bodyDirectory: target + "/bodies")
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: target).filter { $0.hasPrefix("queue.sqlite") }
        #expect(left.isEmpty, "left behind: \(left)")
    }
}
