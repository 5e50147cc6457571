import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Since when, and why, messages cannot be stored (`Gateway.storageFailure`).
public struct StorageFailure: Sendable {
    public var since: Date
    public var reason: String
}

/// Bytes an unprivileged writer may still put on the file system of `path`.
func freeBytes(at path: String) -> Int64? {
    var s = statvfs()
    guard statvfs(path, &s) == 0 else { return nil }
    return Int64(s.f_bavail) * Int64(s.f_frsize)
}
