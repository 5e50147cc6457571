import Foundation
import Synchronization

/// Python modules the helpers import, checked once per process and interpreter.
///
/// Each check starts a Python. Tests create their helpers (a webhook sink, an
/// SMTP sink, an XMPP user) many times, and a check that waited for its Python
/// with `Process.waitUntilExit` held one of the cooperative pool's threads, which
/// every test of the process shares, while Python started: early in a full run
/// that made other tests' `await`s seconds late. Now the first check is awaited
/// and later ones read the answer.
extension Peers {
    /// Fails, naming what to install, when `python` (the first python3 on PATH
    /// by default) cannot import `module`.
    public static func requirePythonModule(_ module: String, pip: String, python: String? = nil) async throws {
        let interpreter = python ?? path(of: "python3") ?? "/usr/bin/python3"
        guard try await importable(module, python: interpreter) else {
            throw PeerMissing(description: "Python module \(module) is missing: pip install \(pip)")
        }
    }

    /// Debian's /usr/bin/python3 with a module from a Debian package.
    public static func requireDebianPython(module: String, package: String) async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            throw PeerMissing(description: "/usr/bin/python3 is missing: apt-get install python3 \(package)")
        }
        guard try await importable(module, python: "/usr/bin/python3") else {
            throw PeerMissing(description: "Python module \(module) is missing: apt-get install \(package)")
        }
    }

    /// For `.enabled(if:)`, decided before any test runs (so it may wait on
    /// its thread): the first python3 on PATH imports `module`, or peers are required.
    public static func pythonModuleAvailable(_ module: String) -> Bool {
        required || importableNow(module, python: path(of: "python3") ?? "/usr/bin/python3")
    }

    /// As `pythonModuleAvailable`, for Debian's /usr/bin/python3.
    public static func debianPythonModuleAvailable(_ module: String) -> Bool {
        required || importableNow(module, python: "/usr/bin/python3")
    }

    /// Whether each interpreter imports each module, once known.
    private static let imports = Mutex<[String: Bool]>([:])
    private static func key(_ module: String, _ python: String) -> String { python + " " + module }

    private static func importable(_ module: String, python: String) async throws -> Bool {
        if let known = imports.withLock({ $0[key(module, python)] }) { return known }
        let check = try ChildProcess(python, ["-c", "import \(module)"], name: "python import check")
        return remember(module, python: python, found: try await check.wait(timeout: .seconds(120)) == 0)
    }

    private static func importableNow(_ module: String, python: String) -> Bool {
        if let known = imports.withLock({ $0[key(module, python)] }) { return known }
        guard let check = try? ChildProcess(python, ["-c", "import \(module)"], name: "python import check") else { return false }
        // The same bound as the async check: an import that hangs is not found.
        let deadline = ContinuousClock.now + .seconds(120)
        while check.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
        let finished = !check.isRunning
        if !finished { check.stop() }
        return remember(module, python: python, found: finished && check.terminationStatus == 0)
    }

    private static func remember(_ module: String, python: String, found: Bool) -> Bool {
        imports.withLock { $0[key(module, python)] = found }
        return found
    }
}
