import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers

/// Whether the gateway can make messages durable: set when a message body
/// cannot be written (a full disk may fail the body files before the queue),
/// cleared when a message is stored again. The queue reports its own writes
/// (`EventQueue.writeFailure`); `Gateway.storageFailure` joins both.
final class StorageHealth: Sendable {
    private let current = NIOLockedValueBox<StorageFailure?>(nil)

    var failure: StorageFailure? { current.withLockedValue { $0 } }

    func failed(_ reason: String) {
        current.withLockedValue { if $0 == nil { $0 = StorageFailure(since: Date(), reason: reason) } }
    }

    func succeeded() {
        current.withLockedValue { $0 = nil }
    }

    /// Bytes an unprivileged writer may still put on the file system of `path`.
    static func freeBytes(at path: String) -> Int64? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }
}

/// Since when, and why, messages cannot be stored.
public struct StorageFailure: Sendable {
    public var since: Date
    public var reason: String
}
