import CSpawn
import Foundation
import Synchronization

/// A child process with its output captured to files, stopped when the test ends.
///
/// Spawned with posix_spawn and a clean signal mask: test threads (Dispatch
/// workers) block most signals, and a child would inherit that mask and never
/// see the SIGINT or SIGTERM that is meant to stop it.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let stdoutPath: String
    public let stderrPath: String
    public let name: String
    /// Set once the child is reaped; the lock makes one `waitpid` win when
    /// a test and the background reaping of a stopped child ask together.
    private let exitStatus = Mutex<Int32?>(nil)

    public init(_ executable: String, _ arguments: [String], name: String, environment: [String: String] = [:]) throws {
        self.name = name
        let dir = try Scratch.directory("child-" + String(name.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) }.prefix(24)))
        stdoutPath = dir + "/stdout"
        stderrPath = dir + "/stderr"
        var env = ProcessInfo.processInfo.environment
        env["TMPDIR"] = Scratch.root  // what a child leaves behind goes with the test process's files
        for (k, v) in environment { env[k] = v }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // Nothing else of the test runner's: a child must not hold (or count) its sockets and files.
        _ = cspawn_addclosefrom(&actions, 3)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attr, &all)
        var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        _ = PoolLatencyProbe.started
        if let group = ChildReaper.shared.processGroup {
            posix_spawnattr_setpgroup(&attr, group)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attr, Int16(flags))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attr, argv, envp)
        guard rc == 0 else { throw ChildFailed(description: "cannot start \(executable): errno \(rc)") }
        pid = child
    }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Whether the child still runs (reaps it when it has exited).
    public var isRunning: Bool {
        exitStatus.withLock { exitStatus in
            if exitStatus != nil { return false }
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid {
                // WIFEXITED: the low 7 bits are 0; the exit code is in the next byte.
                exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                return false
            }
            return r == 0
        }
    }

    public var terminationStatus: Int32 { exitStatus.withLock { $0 } ?? -1 }

    /// Waits until stdout or stderr contains `text`.
    public func waitFor(_ text: String, in stream: KeyPath<ChildProcess, String> = \.stdout, timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !self[keyPath: stream].contains(text) {
            guard isRunning || self[keyPath: stream].contains(text) else {
                throw ChildFailed(description: "\(name) exited (\(terminationStatus)) before printing \"\(text)\"\nstdout: \(stdout)\nstderr: \(stderr)")
            }
            guard ContinuousClock.now < deadline else {
                throw ChildFailed(description: "\(name) did not print \"\(text)\" within \(timeout)\nstdout: \(stdout)\nstderr: \(stderr)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until `ready` holds (a server listens, answers...) while the
    /// process runs; stops it and throws, with its output and `log`, when it
    /// exits first or `timeout` passes.
    public func waitUntil(_ what: String, timeout: Duration = .seconds(10), log: @autoclosure () -> String = "",
                          _ ready: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while await !ready() {
            guard isRunning, ContinuousClock.now < deadline else {
                await stop()
                throw ChildFailed(description: "\(name) did not \(what) within \(timeout)\nstdout: \(stdout.suffix(2000))\nstderr: \(stderr.suffix(3000))\(log().suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(30))
        }
    }

    /// Waits for the process to exit and returns its status; kills it after the timeout.
    public func wait(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while isRunning {
            guard ContinuousClock.now < deadline else {
                await stop()
                throw ChildFailed(description: "\(name) still running after \(timeout)\nstdout: \(stdout)\nstderr: \(stderr)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return terminationStatus
    }

    public func signal(_ sig: Int32) {
        if isRunning { kill(pid, sig) }
    }

    /// SIGTERM, then SIGKILL if it has not gone within five seconds; returns
    /// once it has gone (its ports and files are free for a restart). Awaits
    /// instead of sleeping on the thread: the cooperative pool's few threads
    /// are every test's, and a stop can take seconds (a server finishing its
    /// clients' sessions).
    public func stop() async {
        terminate()
        while isRunning {
            // Still waits when the task is cancelled (a test past its time
            // limit still stops its children), without spinning.
            if Task.isCancelled { usleep(20_000) } else { try? await Task.sleep(for: .milliseconds(20)) }
        }
    }

    /// For a `defer`, where nothing can await and the test is over: SIGTERM
    /// now, and a SIGKILL after five seconds if the child is still there, sent
    /// (and the child reaped) off the test's thread. Code that needs the child
    /// gone before it goes on awaits `stop()`.
    public func stop() { terminate() }

    private func terminate() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        reapInBackground(killAfter: .seconds(5))
    }

    /// Reaps the child when it exits, off the test's thread, and sends it
    /// SIGKILL if it still runs after `killAfter`: for a child nobody waits
    /// for (a stop command started from a `defer`).
    public func reapInBackground(killAfter: DispatchTimeInterval) {
        reapLater(killAt: .now() + killAfter)
    }

    private static let reaping = DispatchQueue(label: "msrpgw.tests.child-reaping")

    private func reapLater(killAt deadline: DispatchTime) {
        Self.reaping.asyncAfter(deadline: .now() + .milliseconds(20)) { [self] in
            guard isRunning else { return }
            if DispatchTime.now() >= deadline { kill(pid, SIGKILL) }
            reapLater(killAt: deadline)
        }
    }

    public struct ChildFailed: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }
}

/// Kills every child the tests started when the test process ends, even when it
/// crashes or is killed: a crashed run once left gateways and servers running
/// that skewed a later benchmark. The reaper is a small process that leads a
/// process group of its own, which every `ChildProcess` joins; it waits for
/// its standard input, a pipe whose only writer is this process, to reach its
/// end (the kernel closes it however this process ends) and then kills the
/// whole group, itself included.
public final class ChildReaper: Sendable {
    public static let shared = ChildReaper()
    /// The group children join; nil when the reaper could not start (children
    /// then stay in the test's own group, as before).
    public let processGroup: pid_t?

    private init() {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            processGroup = nil
            return
        }
        // The writing end stays here, out of every child (close-on-exec).
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        defer { close(fds[0]) }
        // `read` returns 0 once every writer is gone; then the group goes.
        let reaper = Self.spawnShell("read -r _; kill -KILL 0", arguments: [], stdin: fds[0], ownGroup: true)
        // The janitor reads the same pipe, in a session of its own (so not with
        // the group, and no race with the kill), and then removes the process's
        // scratch directory once the children that wrote there are gone, with
        // any disk a test mounted in it (`ScratchMount`) and did not unmount.
        // Its output goes nowhere: it outlives the test run by a moment and must
        // not hold the runner's stdout (CI reads it to its end).
        _ = Self.spawnShell(
            #"read -r _; sleep 2; awk -v r="$1/" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | xargs -r -n1 umount -l; exec rm -rf -- "$1""#,
            arguments: [Scratch.root], stdin: fds[0], ownGroup: false)
        processGroup = reaper
        if reaper == nil { close(fds[1]) }
    }

    /// `/bin/sh -c script` with `stdin` as its standard input and a clean
    /// signal mask: leading a process group of its own (`ownGroup`), or in a
    /// session of its own with its output to /dev/null. Its pid, or nil.
    private static func spawnShell(_ script: String, arguments: [String], stdin: Int32, ownGroup: Bool) -> pid_t? {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        if !ownGroup {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        _ = cspawn_addclosefrom(&actions, 3)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        // POSIX_SPAWN_SETSID (glibc 2.26+; Swift does not see the GNU-only macro).
        let newSession: Int32 = 0x80
        if ownGroup { posix_spawnattr_setpgroup(&attr, 0) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | (ownGroup ? POSIX_SPAWN_SETPGROUP : newSession)))
        let all: [String] = ["/bin/sh", "-c", script, "msrpgw-test-reaper"] + arguments
        let argv: [UnsafeMutablePointer<CChar>?] = all.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        return posix_spawn(&child, "/bin/sh", &actions, &attr, argv, environ) == 0 ? child : nil
    }
}

/// A free TCP port on 127.0.0.1 for a peer to listen on, reserved for the rest
/// of the test process: a socket stays bound to it (SO_REUSEADDR, not
/// listening), so no other pick (a port-0 bind, an outgoing connection's local
/// port) can take it between now and the peer's bind, while the peer, binding
/// with SO_REUSEADDR as servers do, can. Connections to it are refused until the
/// peer listens. (Picking a port and releasing it lost races under load: a
/// webhook sink and InspIRCd's TLS port were once taken by someone else.)
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else {
        close(fd)
        throw ChildProcess.ChildFailed(description: "no free port")
    }
    // Kept open (and out of children: close-on-exec) until the process ends.
    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    return Int(UInt16(bigEndian: addr.sin_port))
}

public func tcpPortAccepts(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    return withUnsafePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}
