#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Foundation

/// The service manager's notification protocol (sd_notify(3)) without
/// libsystemd: one datagram per state change to the Unix socket named by
/// `$NOTIFY_SOCKET` (a path, or an abstract name written with a leading `@`).
/// Without that variable every call does nothing, so the daemon behaves the
/// same under a terminal, a container runtime or systemd.
final class SystemdNotifier: Sendable {
    private let address: [UInt8]?
    /// How often systemd wants `WATCHDOG=1` (`WatchdogSec=`), when it does and
    /// names this process (`$WATCHDOG_PID`, if set).
    let watchdogInterval: Duration?

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let path = environment["NOTIFY_SOCKET"], !path.isEmpty, path.hasPrefix("/") || path.hasPrefix("@") {
            var bytes = Array(path.utf8)
            if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }
            address = bytes
        } else {
            address = nil
        }
        let forUs = environment["WATCHDOG_PID"].map { $0 == String(getpid()) } ?? true
        if forUs, let text = environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0 {
            watchdogInterval = .microseconds(usec)
        } else {
            watchdogInterval = nil
        }
    }

    var isActive: Bool { address != nil }

    /// The service is up: listeners bound, queue open.
    func ready(status: String) { send(["READY=1", "STATUS=" + status]) }

    /// A reload started (`systemctl reload`, SIGHUP); `ready` ends it.
    func reloading() { send(["RELOADING=1", "MONOTONIC_USEC=\(Self.monotonicMicroseconds())"]) }

    func stopping() { send(["STOPPING=1", "STATUS=shutting down"]) }

    func status(_ text: String) { send(["STATUS=" + text]) }

    /// The daemon checked itself and is well.
    func watchdog() { send(["WATCHDOG=1"]) }

    private func send(_ assignments: [String]) {
        guard let address, address.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else { return }
        // Newlines separate assignments: a status text never carries one.
        let message = assignments.map { $0.replacingOccurrences(of: "\n", with: " ") }.joined(separator: "\n")
        #if canImport(Glibc)
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
            let fd = socket(AF_UNIX, SOCK_DGRAM, 0)
        #endif
        guard fd >= 0 else { return }
        defer { close(fd) }
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sa.sun_path) { path in
            for (i, b) in address.enumerated() { path[i] = b }
        }
        // Abstract names count exactly; paths are NUL-terminated within sun_path.
        let length = MemoryLayout<sa_family_t>.size + address.count + (address.first == 0 ? 0 : 1)
        _ = message.withCString { text in
            withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, text, strlen(text), Int32(MSG_NOSIGNAL), $0, socklen_t(length))
                }
            }
        }
    }

    private static func monotonicMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1_000
    }
}
