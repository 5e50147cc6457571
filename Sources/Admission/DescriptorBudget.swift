import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// How many connections all listeners together may hold: the process's
/// descriptor limit less a reserve for everything else (the queue's files,
/// bodies, outgoing webhook, SMTP and IRC connections, event loops).
///
/// The daemon must never run out of descriptors because strangers hold
/// connections: `accept` would fail, and worse, libdispatch crashes the
/// process (SIGILL) when its thread-pool monitor cannot open `/proc/<tid>/stat`
/// (seen here at `ulimit -n 256` with idle connections). A connection over the
/// budget is accepted and closed at once, so the reserve is never touched.
public final class DescriptorBudget: Sendable {
    public let capacity: Int
    private let used = NIOLockedValueBox(0)

    public init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    /// Connections held now.
    public var inUse: Int { used.withLockedValue { $0 } }

    func take() -> Bool {
        used.withLockedValue { n in
            guard n < capacity else { return false }
            n += 1
            return true
        }
    }

    func give() {
        used.withLockedValue { $0 -= 1 }
    }

    /// Raises the soft descriptor limit to the hard one (as Go and nginx do: the
    /// soft default of 1,024 is a relic of `select`), and returns a budget of
    /// what is left after the descriptors open now (call it before listening)
    /// and a reserve of a quarter of the limit, at least 64.
    public static func forThisProcess() -> (budget: DescriptorBudget, limit: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (DescriptorBudget(capacity: 1024 * 3 / 4), 1024) }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let n = limit.rlim_cur == rlim_t.max ? 1 << 20 : Int(clamping: limit.rlim_cur)
        return (DescriptorBudget(capacity: n - openDescriptors() - max(64, n / 4)), n)
    }

    /// Descriptors this process has open (the entries of /proc/self/fd).
    static func openDescriptors() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(dir) }
        var n = -1  // the directory's own descriptor
        while let entry = readdir(dir) {
            if entry.pointee.d_name.0 != CChar(UInt8(ascii: ".")) { n += 1 }
        }
        return max(0, n)
    }
}
