import Foundation

/// Where tests put their files: one directory per test process,
/// `$TMPDIR/msrpgw-tests-<pid>`, removed when the process ends.
///
/// Tests made their directories straight in `/tmp` and few removed them: a
/// full run left ~6 GB behind (the PostgreSQL clusters alone are ~0.5 GB each),
/// and a machine's disk filled until a CI build failed to link. Now the
/// children's reaper (`ChildReaper`) removes the process's directory once the
/// process is gone, however it ends, and each new test process removes the
/// directories of runs whose process no longer exists (a reaper that was
/// killed too, a machine that was reset).
public enum Scratch {
    /// This process's directory (created, and stale ones removed, on first use).
    public static let root: String = {
        let parent = NSTemporaryDirectory()
        removeStale(in: parent)
        let root = parent + prefix + String(getpid())
        try? FileManager.default.removeItem(atPath: root)  // a reused pid's leftovers
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        // As /tmp's: children get it as their TMPDIR, and some run as users of their own (postgres).
        chmod(root, 0o1777)
        return root
    }()

    /// A new path in this process's directory, `<name>-<uuid><suffix>`; nothing is created.
    public static func path(_ name: String, suffix: String = "") -> String {
        _ = ChildReaper.shared  // the reaper removes `root` when this process ends
        return root + "/" + name + "-" + UUID().uuidString + suffix
    }

    /// A new, empty directory in this process's directory.
    public static func directory(_ name: String) throws -> String {
        let directory = path(name)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    static let prefix = "msrpgw-tests-"

    /// Removes the directories of test processes that no longer exist.
    private static func removeStale(in parent: String) {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
        for entry in entries where entry.hasPrefix(prefix) {
            guard let pid = pid_t(entry.dropFirst(prefix.count)), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: parent + entry)
            }
        }
    }
}
