import Foundation

/// A throwaway PostgreSQL server (Debian `postgresql`): `initdb` into a
/// temporary directory, `postgres` on a port of its own on loopback, killed
/// with the test process. The server refuses to run as root, so as root it runs
/// as the `postgres` user the package creates (../shared/peers/POSTGRES-OPS.md).
public final class PostgresServer: @unchecked Sendable {
    public let port: Int
    public let directory: String
    public let user = "msrpgw"
    private let binaries: String
    private let lock = NSLock()
    private var process: ChildProcess?

    /// One server per test process, started on first use; each test makes its
    /// own database on it (`createDatabase`). It does not flush to disk
    /// (`fsync`, `synchronous_commit` off): what is under test is msrpgw, and a
    /// full run makes dozens of databases at once, each a few MB of WAL, on a
    /// loaded machine (connections timed out at 10 s when it flushed). A test
    /// that stops or crashes the server starts its own (`start()`, defaults).
    public static func shared() async throws -> PostgresServer { try await SharedServer.instance.get() }

    public static let sharedSettings = ["fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"]

    /// The directory of the newest installed server's programs.
    public static var binaries: String? {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        guard let newest = versions.compactMap({ Int($0) }).max() else { return nil }
        let directory = "\(root)/\(newest)/bin"
        return FileManager.default.isExecutableFile(atPath: directory + "/postgres") ? directory : nil
    }

    /// For `.enabled(if:)`: run when PostgreSQL is installed, or when peers are required.
    public static var available: Bool { binaries != nil || Peers.required }

    /// Makes a new cluster and starts it.
    public static func start(settings: [String: String] = [:]) async throws -> PostgresServer {
        guard let binaries else {
            throw Peers.PeerMissing(description: "PostgreSQL is not installed: apt-get install postgresql (MSRPGW_REQUIRE_PEERS=1 makes this a failure)")
        }
        let server = try PostgresServer(binaries: binaries, port: try freePort())
        try await server.run("initdb", ["-D", server.dataDirectory, "-A", "trust", "-U", server.user, "-E", "UTF8", "--no-sync"])
        try await server.start(settings: settings)
        return server
    }

    private init(binaries: String, port: Int) throws {
        self.binaries = binaries
        self.port = port
        directory = try Scratch.directory("pg")
        if getuid() == 0 { try Self.chownToPostgres(directory) }
    }

    var dataDirectory: String { directory + "/data" }

    /// The URL msrpgw's `[queue] url` takes for `database`.
    public func url(database: String) -> String { "postgresql://\(user)@127.0.0.1:\(port)/\(database)?sslmode=disable" }

    /// Starts the server on its data directory (again, after `stop`).
    public func start(settings: [String: String] = [:]) async throws {
        var arguments = ["-D", dataDirectory, "-p", String(port), "-k", directory, "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]
        for (name, value) in settings.sorted(by: { $0.key < $1.key }) { arguments += ["-c", "\(name)=\(value)"] }
        let child = try spawn("postgres", arguments, name: "postgres")
        lock.withLock { process = child }
        try await child.waitUntil("accept connections", timeout: .seconds(60)) {
            (try? await self.psql("SELECT 1", database: "postgres")) != nil
        }
    }

    /// Stops the server: `fast` (SIGINT: connections closed, a clean
    /// shutdown) or `immediate` (SIGQUIT: as good as a crash).
    public func stop(immediate: Bool = false) async throws {
        guard let child = lock.withLock({ process }) else { return }
        child.signal(immediate ? SIGQUIT : SIGINT)
        _ = try await child.wait(timeout: .seconds(60))
        lock.withLock { process = nil }
    }

    /// A new, empty database; its name.
    public func createDatabase(_ prefix: String = "q") async throws -> String {
        let name = prefix + "_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        _ = try await psql("CREATE DATABASE \(name)", database: "postgres")
        return name
    }

    /// Runs SQL with psql; its output (unaligned, tuples only).
    @discardableResult
    public func psql(_ sql: String, database: String) async throws -> String {
        let child = try ChildProcess(
            binaries + "/psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", database, "-c", sql],
            name: "psql")
        guard try await child.wait() == 0 else {
            throw ChildProcess.ChildFailed(description: "psql \(sql.prefix(200)) failed: \(child.stderr)")
        }
        return child.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A server program run to completion.
    private func run(_ program: String, _ arguments: [String]) async throws {
        let child = try spawn(program, arguments, name: program)
        guard try await child.wait(timeout: .seconds(120)) == 0 else {
            throw ChildProcess.ChildFailed(description: "\(program) failed: \(child.stdout.suffix(2000)) \(child.stderr.suffix(2000))")
        }
    }

    /// A server program, as the `postgres` user when this process is root:
    /// `setpriv` execs it in place (runuser would stay as its parent, turn the
    /// signals meant for the server into SIGTERM, then kill it).
    private func spawn(_ program: String, _ arguments: [String], name: String) throws -> ChildProcess {
        if getuid() == 0 {
            return try ChildProcess(
                "/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", "\(binaries)/\(program)"] + arguments,
                name: name)
        }
        return try ChildProcess("\(binaries)/\(program)", arguments, name: name)
    }

    private static func chownToPostgres(_ path: String) throws {
        guard let entry = getpwnam("postgres") else {
            throw Peers.PeerMissing(description: "no postgres user: apt-get install postgresql creates it")
        }
        guard chown(path, entry.pointee.pw_uid, entry.pointee.pw_gid) == 0 else {
            throw ChildProcess.ChildFailed(description: "cannot chown \(path) to postgres: errno \(errno)")
        }
    }
}

/// The test process's one shared server.
private actor SharedServer {
    static let instance = SharedServer()
    private var server: Task<PostgresServer, any Error>?

    func get() async throws -> PostgresServer {
        if let server { return try await server.value }
        let starting = Task { try await PostgresServer.start(settings: PostgresServer.sharedSettings) }
        server = starting
        return try await starting.value
    }
}
