import Events
import Foundation
import MSRP
import NIOCore
import Queue

struct BodyStoreError: Error, CustomStringConvertible {
    var path: String
    var errno: Int32
    var description: String { "\(path): \(String(cString: strerror(errno)))" }
}

/// Where message bodies live while their events wait: small ones inline in the
/// queue, large ones as files under `directory`, one file (a hard link) per
/// event, because each event owns its body and the queue deletes it with the event.
struct BodyStore: Sendable {
    var directory: String
    var inlineLimit: Int

    init(directory: String, inlineLimit: Int) throws {
        self.directory = directory
        self.inlineLimit = inlineLimit
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// `copies` bodies holding bytes `offset..<offset+size` of `body`. A spooled
    /// file is moved (not copied) when the whole of it is the body.
    func store(_ body: AssembledMessage.Body, from offset: Int64, size: Int64, copies: Int) throws -> [EventBody] {
        switch body {
        case .memory(let buffer):
            let bytes = Array(buffer.readableBytesView.dropFirst(Int(offset)))
            if bytes.count <= inlineLimit { return Array(repeating: .inline(bytes), count: copies) }
            let path = newPath()
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return try links(to: path, size: size, copies: copies)
        case .file(let spooled):
            defer { unlink(spooled) }
            if size <= Int64(inlineLimit) {
                let data = try FileHandle(forReadingFrom: URL(fileURLWithPath: spooled))
                defer { try? data.close() }
                try data.seek(toOffset: UInt64(offset))
                let bytes = [UInt8](try data.readToEnd() ?? Data())
                return Array(repeating: .inline(bytes), count: copies)
            }
            let path = newPath()
            if offset == 0, rename(spooled, path) == 0 {
                return try links(to: path, size: size, copies: copies)
            }
            try copyRange(from: spooled, offset: offset, to: path)
            return try links(to: path, size: size, copies: copies)
        }
    }

    /// Deletes the files of events that were not stored.
    func discard(_ events: [NewEvent]) {
        for e in events { if case .file(let path, _) = e.body { unlink(path) } }
    }

    /// After an enqueue: an event that was already stored (the sender retried the
    /// same Message-ID) keeps its first body, so the new file goes.
    func reconcile(events: [NewEvent], _ stored: [Enqueued]) {
        for (e, s) in zip(events, stored) where s.wasStored {
            if case .file(let path, _) = e.body { unlink(path) }
        }
    }

    private func newPath() -> String { directory + "/" + UUID().uuidString.lowercased() }

    /// Links for every copy, after making the file and its directory entries
    /// durable: the queue says 200 right after, so the body must survive a crash.
    private func links(to path: String, size: Int64, copies: Int) throws -> [EventBody] {
        try sync(path)
        var out: [EventBody] = [.file(path: path, size: size)]
        for _ in 1..<max(copies, 1) {
            let other = newPath()
            guard link(path, other) == 0 else { throw BodyStoreError(path: other, errno: errno) }
            out.append(.file(path: other, size: size))
        }
        try sync(directory)
        return out
    }

    private func copyRange(from source: String, offset: Int64, to destination: String) throws {
        let input = open(source, O_RDONLY)
        guard input >= 0 else { throw BodyStoreError(path: source, errno: errno) }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard output >= 0 else { throw BodyStoreError(path: destination, errno: errno) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var at = offset
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(input, $0.baseAddress, $0.count, off_t(at)) }
            guard n >= 0 else { throw BodyStoreError(path: source, errno: errno) }
            if n == 0 { break }
            let written = buffer.withUnsafeBytes { write(output, $0.baseAddress, n) }
            guard written == n else { throw BodyStoreError(path: destination, errno: errno) }
            at += Int64(n)
        }
    }

    private func sync(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw BodyStoreError(path: path, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw BodyStoreError(path: path, errno: errno) }
    }
}
