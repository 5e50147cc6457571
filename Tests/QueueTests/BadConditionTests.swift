import Events
import Foundation
import GRDB
import Testing
import TestPeers

@testable import Queue

@Suite(.serialized) struct BadConditionTests {
    @Test func newerSchemaIsRefusedAtStartup() async throws {
        let path = try temporaryDirectory() + "/q.sqlite"
        do {
            let queue = try makeQueue(path: path)
            _ = try await queue.enqueue([message("m2000001")])
        }
        let db = try DatabaseQueue(path: path)
        try await db.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')") }
        #expect {
            _ = try makeQueue(path: path)
        } throws: { ($0 as? QueueError)?.kind == .newerSchema }
    }

    @Test func corruptFileIsAClearError() throws {
        let path = try temporaryDirectory() + "/q.sqlite"
        try Data(String(repeating: "this is not an SQLite database\n", count: 200).utf8).write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try makeQueue(path: path)
        } throws: { ($0 as? QueueError)?.kind == .corrupt }
    }

    @Test func missingDirectoryCannotOpen() {
        #expect {
            _ = try makeQueue(path: "/nonexistent-dir-\(UUID().uuidString)/q.sqlite")
        } throws: { ($0 as? QueueError)?.kind == .cannotOpen }
    }

    @Test(.enabled(if: ScratchMount.canMount, "mounts a tmpfs: needs root"))
    func diskFullFailsTheEnqueueAndKeepsWhatWasAcknowledged() async throws {
        let mount = try ScratchMount(sizeKiB: 1024)
        defer { mount.unmount() }
        let queue = try makeQueue(path: mount.path + "/q.sqlite")
        var acknowledged: [EventID] = []
        var failure: QueueError?
        for i in 0..<2000 {
            var e = message("m3\(String(format: "%06d", i))")
            e.body = .inline([UInt8](repeating: UInt8(i & 0xFF), count: 8192))
            do {
                acknowledged += try await queue.enqueue([e])
            } catch {
                failure = error
                break
            }
        }
        #expect(failure?.kind == .diskFull, "\(String(describing: failure))")
        #expect(!acknowledged.isEmpty)
        // A health check sees it (reads still work on a full disk).
        #expect(queue.writeFailure?.error.kind == .diskFull)
        // Every acknowledged event is still there, and nothing else.
        let stored = try await queue.stats().count()
        #expect(stored == acknowledged.count)
        for id in acknowledged.suffix(5) {
            #expect(try await queue.event(id)?.state == .queued)
        }
        // Room again: the next write commits and clears it.
        try mount.resize(sizeKiB: 4096)
        _ = try await queue.enqueue([message("m3999999")])
        #expect(queue.writeFailure == nil)
    }

    @Test(.enabled(if: ScratchMount.canMount, "mounts a tmpfs: needs root"))
    func readOnlyDatabaseIsAClearError() async throws {
        let mount = try ScratchMount(sizeKiB: 4096)
        defer { mount.unmount() }
        let path = mount.path + "/q.sqlite"
        do {
            let queue = try makeQueue(path: path)
            _ = try await queue.enqueue([message("m4000001")])
        }
        try mount.remountReadOnly()
        do {
            let queue = try makeQueue(path: path)
            await #expect {
                _ = try await queue.enqueue([message("m4000002")])
            } throws: { [.readOnly, .cannotOpen, .io].contains(($0 as? QueueError)?.kind) }
        } catch let error as QueueError {
            #expect([.readOnly, .cannotOpen, .io].contains(error.kind), "\(error)")
        }
    }

    /// Producers and consumers at once on 2 cores: every event delivered exactly
    /// once, no lease handed to two workers, no deadlock.
    @Test(arguments: QueueBackend.all) func concurrentProducersAndConsumers(_ backend: QueueBackend) async throws {
        let queue = try await makeQueue(backend)
        let producers = 16, perProducer = 100
        let delivered = try await produceAndConsume(nodes: [queue], producers: producers, perProducer: perProducer)
        #expect(await delivered.count == producers * perProducer)
        #expect(await delivered.duplicates.isEmpty)
        #expect(try await queue.stats().count(state: .delivered) == producers * perProducer)
    }
}
