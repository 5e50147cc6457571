import AsyncHTTPClient
import Foundation
import MSRPGatewayClient
import MSRPTransport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TestPeers

/// The Python webhook receiver (Tests/Helpers/webhook_sink.py), which checks
/// signatures with the Standard Webhooks reference library.
final class WebhookSinkProcess: @unchecked Sendable {
    static let secret = "whsec_" + Data("msrpgw integration test key".utf8).base64EncodedString()
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Helpers/webhook_sink.py").path

    struct Record: Decodable {
        var path: String
        var webhook_id: String
        var valid: Bool
        var status: Int
        var payload: Payload?

        struct Payload: Decodable {
            var id: String
            var data: DataPart
        }

        struct DataPart: Decodable {
            struct Address: Decodable { var uri: String; var name: String? }
            var from: Address?
            var to: [Address]
            var text: String?
            var content_type: String
        }
    }

    let port: Int
    let process: ChildProcess
    let recordPath: String

    /// Skips (or fails, with MSRPGW_REQUIRE_PEERS=1) when python3 or standardwebhooks is missing.
    /// Serves HTTPS with `tls`'s certificate when given.
    let scheme: String

    init(port: Int? = nil, tls: TestCertificates? = nil, secret: String = WebhookSinkProcess.secret) async throws {
        scheme = tls == nil ? "http" : "https"
        let python = try Peers.require("python3", package: "python3")
        try await Peers.requirePythonModule("standardwebhooks", pip: "standardwebhooks")
        self.port = try port ?? freePort()
        recordPath = Scratch.path("sink", suffix: ".jsonl")
        _ = FileManager.default.createFile(atPath: recordPath, contents: nil)
        process = try ChildProcess(python, [Self.script, String(self.port), secret, recordPath] + (tls.map { [$0.certPath, $0.keyPath] } ?? []),
                                   name: "webhook sink")
        try await process.waitFor("READY")
    }

    var records: [Record] {
        let text = (try? String(contentsOfFile: recordPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Record.self, from: Data($0.utf8)) }
    }

    func records(_ prefix: String) -> [Record] { records.filter { $0.path.hasPrefix(prefix) } }

    func url(_ path: String) -> String { "\(scheme)://127.0.0.1:\(port)\(path)" }

    /// For a defer: see `ChildProcess.stop()`.
    func stop() { process.stop() }
    func stop() async { await process.stop() }
}

/// `msrpgw serve` with a configuration written for the test.
final class GatewayProcess: @unchecked Sendable {
    /// What `serve --ports-file` wrote: the ports it bound.
    struct Ports: Decodable {
        var msrp: Int
        var api: Int
        var msrps: Int?
        var ws: Int?
        var wss: Int?
        var sip: Int?
        var sip_tls: Int?
    }

    let msrpPort: Int
    let apiPort: Int
    /// Every port it bound at its first start (listeners configured with port 0 among them).
    let ports: Ports
    let directory: String
    let configPath: String
    private(set) var process: ChildProcess
    static let token = "integration-token"

    /// `extra` is appended to a base configuration (its own [routes] and [webhooks.*]);
    /// `msrp` goes into its [msrp] section.
    /// `prlimit` options (`--nofile=256`) the daemon runs under, if any.
    let resourceLimits: [String]
    /// Environment variables the daemon gets besides the test's own.
    let environment: [String: String]
    private let sections: (queue: String, msrp: String, api: String)

    init(extra: String, queue: String = "retry_schedule = [\"0s\", \"300ms\"]\nmax_attempts = 3\njitter = false", directory: String? = nil,
         msrp msrpExtra: String = "", api apiExtra: String = "", resourceLimits: [String] = [], environment: [String: String] = [:]) async throws {
        self.resourceLimits = resourceLimits
        self.environment = environment
        sections = (queue, msrpExtra, apiExtra)
        self.directory = directory ?? Scratch.path("gw")
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        configPath = self.directory + "/msrpgw.toml"
        // Port 0: the gateway binds free ports and writes them to the ports file
        // (no port picked here and released, which another test could take first).
        let portsPath = self.directory + "/ports.json"
        try Self.configuration(directory: self.directory, msrpPort: 0, apiPort: 0, queue: queue, extra: extra, msrpExtra: msrpExtra, apiExtra: apiExtra)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let child = try Self.start(configPath, portsFile: portsPath, resourceLimits: resourceLimits, environment: environment)
        try await child.waitFor("msrpgw ready", in: \.stderr)
        // Written right after the ready line.
        _ = await until(.seconds(10)) { FileManager.default.fileExists(atPath: portsPath) }
        let ports = try JSONDecoder().decode(Ports.self, from: Data(contentsOf: URL(fileURLWithPath: portsPath)))
        (msrpPort, apiPort, process, self.ports) = (ports.msrp, ports.api, child, ports)
        // A restart (after a kill) comes back on the same ports.
        try Self.configuration(directory: self.directory, msrpPort: ports.msrp, apiPort: ports.api, queue: queue, extra: extra, msrpExtra: msrpExtra,
                               apiExtra: apiExtra)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// A route `sip:ops@gw.example` to a webhook nobody listens at (port 9): for
    /// tests about what happens before delivery, where its outcome does not matter.
    static let routeToNowhere = """
        [routes]
        "sip:ops@gw.example" = ["webhook:ops"]
        [webhooks.ops]
        url = "http://127.0.0.1:9/ops"
        secrets = ["\(WebhookSinkProcess.secret)"]
        """

    /// Test peers listen on loopback, which the gateway does not connect to by
    /// default (a stranger's a=path must not probe the host's ports).
    static let loopbackPeers = "connect_allow = [\"127.0.0.0/8\", \"::1\"]"

    private static func configuration(
        directory: String, msrpPort: Int, apiPort: Int, queue: String, extra: String, msrpExtra: String, apiExtra: String, logLevel: String = "info"
    ) -> String {
        """
        [gateway]
        identity = "sip:gateway@gw.example"
        data_dir = "\(directory)/data"
        log_level = "\(logLevel)"
        [msrp]
        port = \(msrpPort)
        \(msrpExtra.contains("connect_allow") ? "" : Self.loopbackPeers)
        \(msrpExtra)
        [api]
        port = \(apiPort)
        token = "\(token)"
        \(apiExtra)
        [queue]
        \(queue)
        [dispatch]
        poll_interval = "100ms"
        lease_duration = "20s"
        \(extra)
        """
    }

    private static func start(_ config: String, portsFile: String? = nil, resourceLimits: [String] = [], environment: [String: String] = [:]) throws -> ChildProcess {
        let arguments = ["serve", "--config", config] + (portsFile.map { ["--ports-file", $0] } ?? [])
        // prlimit execs the daemon: the child's pid is the daemon's.
        if !resourceLimits.isEmpty {
            return try ChildProcess("/usr/bin/prlimit", resourceLimits + ["--", Executables.msrpgw] + arguments, name: "msrpgw serve",
                                    environment: environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { a, _ in a })
        }
        return try ChildProcess(Executables.msrpgw, arguments, name: "msrpgw serve", environment: environment)
    }

    /// Writes the configuration anew with `extra` in place of the first one (the
    /// same ports and sections otherwise): what an operator edits before a reload.
    func rewrite(extra: String, logLevel: String = "info") throws {
        try Self.configuration(directory: directory, msrpPort: msrpPort, apiPort: apiPort, queue: sections.queue, extra: extra,
                               msrpExtra: sections.msrp, apiExtra: sections.api, logLevel: logLevel)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// Starts it again on the same configuration and data (after a kill).
    func restart() async throws {
        await process.stop()
        process = try Self.start(configPath, resourceLimits: resourceLimits, environment: environment)
        try await process.waitFor("msrpgw ready", in: \.stderr)
    }

    var api: String { "http://127.0.0.1:\(apiPort)" }

    /// For a defer: see `ChildProcess.stop()`.
    func stop() { process.stop() }
    func stop() async { await process.stop() }
}

/// What the tests talk to the gateway with: the client library over real sockets.
final class TestClients: @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let http: HTTPClient
    let endpoint: MSRPEndpoint

    init() throws {
        http = HTTPClient(eventLoopGroup: group)
        endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group)
    }

    func client(_ gateway: GatewayProcess, address: String = "sip:alice@example.com", token: String? = GatewayProcess.token) -> GatewayClient {
        GatewayClient(name: "Alice", address: address, endpoint: endpoint, http: http, api: gateway.api, token: token)
    }

    private let isShutDown = NIOLockedValueBox(false)

    func shutdown() async {
        isShutDown.withLockedValue { $0 = true }
        try? await http.shutdown()
        await endpoint.shutdown()
        try? await group.shutdownGracefully()
    }

    /// A test that threw before its `shutdown()` must not crash the whole run
    /// (an HTTP client left running traps in its deinit): shut down here.
    deinit {
        guard !isShutDown.withLockedValue({ $0 }) else { return }
        try? http.syncShutdown()
        try? group.syncShutdownGracefully()
    }
}
