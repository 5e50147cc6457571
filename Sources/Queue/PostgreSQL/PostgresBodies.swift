import Events
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO

/// Large bodies on PostgreSQL. A body the gateway spooled to a file (above
/// `inline_body_limit`) is copied into `event_body`, in chunks, in the
/// transaction that stores its event, and the file is deleted: any node can
/// deliver the event, and the body survives the node that received it. A
/// node that leases such an event writes the body to a file of its own (the
/// adapters stream bodies from files) and deletes that file when it has an
/// outcome. The rows go with their event (ON DELETE CASCADE).
struct PostgresBodies: Sendable {
    /// `body_path` of an event whose body is in `event_body`.
    static let marker = "postgresql:event_body"
    /// Bytes per row: big enough that a large body is few statements, small
    /// enough that one row is never a memory problem.
    static let chunkSize = 1 << 20

    /// Where leased bodies are written (this node's, emptied at start).
    let cache: String
    private let written = NIOLockedValueBox<Set<Int64>>([])

    init(cache: String) throws(QueueError) {
        self.cache = cache
        do {
            try? FileManager.default.removeItem(atPath: cache)
            try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        } catch {
            throw QueueError(.cannotOpen, "cannot create the directory for leased bodies \(cache): \(error)")
        }
    }

    static func isInTable(_ path: String) -> Bool { path == marker || path.hasPrefix(marker + "/") }

    /// The event as stored: a body in a file becomes one in `event_body`.
    static func tableBody(_ event: NewEvent) -> (NewEvent, file: String?) {
        guard case .file(let path, let size) = event.body, !isInTable(path) else { return (event, nil) }
        var stored = event
        stored.body = .file(path: marker, size: size)
        return (stored, path)
    }

    /// Copies the file at `path` into `event_body` rows of event `id`.
    static func upload(_ path: String, event id: EventID, on connection: PostgresConnection, logger: Logger) async throws {
        guard let file = FileHandle(forReadingAtPath: path) else {
            throw QueueError(.other, "the body file \(path) of event \(id) cannot be read")
        }
        defer { try? file.close() }
        var seq: Int32 = 0
        while let data = try file.read(upToCount: chunkSize), !data.isEmpty {
            let buffer = ByteBuffer(data: data)
            try await connection.query("INSERT INTO event_body (event_id, seq, data) VALUES (\(id.rawValue), \(seq), \(buffer))", logger: logger)
            seq += 1
        }
    }

    /// Writes the body of event `id` to this node's cache; returns the file.
    func materialize(_ id: EventID, client: PostgresClient, logger: Logger) async throws -> String {
        let path = cache + "/" + id.description
        guard FileManager.default.createFile(atPath: path, contents: nil), let file = FileHandle(forWritingAtPath: path) else {
            throw QueueError(.other, "cannot write the body of event \(id) to \(path)")
        }
        written.withLockedValue { _ = $0.insert(id.rawValue) }
        defer { try? file.close() }
        let rows = try await client.query("SELECT data FROM event_body WHERE event_id = \(id.rawValue) ORDER BY seq", logger: logger)
        for try await chunk in rows.decode(ByteBuffer.self) {
            try file.write(contentsOf: Data(chunk.readableBytesView))
        }
        return path
    }

    /// Deletes this node's copy of the body of event `id`, if it has one.
    func forget(_ id: EventID) {
        guard written.withLockedValue({ $0.remove(id.rawValue) }) != nil else { return }
        unlink(cache + "/" + id.description)
    }
}
