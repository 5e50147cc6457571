import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import MSRP
import MSRPGatewayClient
import MSRPTransport
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle

/// `msrpgw demo`: the whole gateway on loopback in one command, on embedded
/// defaults: a database under ./var/demo, MSRP and the API on 127.0.0.1, a
/// webhook sink that prints what it gets, and an MSRP client that sends a few
/// messages and shows the 200s, REPORTs and IMDNs that come back.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the gateway with a webhook sink and an MSRP client on 127.0.0.1, and show a message flowing end to end.")

    @Option(help: "Where the demo keeps its queue (removed first).") var dataDir = "var/demo"
    @Flag(help: "Keep running after the script (Ctrl-C to stop), to try the API by hand.") var stay = false

    static let secret = "whsec_" + Data("msrpgw-demo-signing-key".utf8).base64EncodedString()
    static let token = "demo-token"

    func run() async throws {
        let logger = Bootstrap.logging(level: .warning)
        let registry = Bootstrap.metrics()
        try? FileManager.default.removeItem(atPath: dataDir)

        // The sink first: the gateway's configuration needs its port.
        let sinkPort = NIOLockedValueBox<Int?>(nil)
        let sink = Application(
            router: WebhookSink(secret: Self.secret).router(),
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0), serverName: "demo-sink"),
            onServerRunning: { channel in sinkPort.withLockedValue { $0 = channel.localAddress?.port } }, logger: logger)
        let sinkGroup = ServiceGroup(services: [sink], logger: logger)
        let sinkTask = Task { try await sinkGroup.run() }
        while sinkPort.withLockedValue({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
        let port = sinkPort.withLockedValue { $0 } ?? 0
        Printer.line("[sink] webhook receiver on http://127.0.0.1:\(port)")

        let toml = Self.configuration(dataDir: dataDir, sinkPort: port)
        let config = try DaemonConfiguration.parse(toml, environment: [:])
        let client = DemoScript(stay: stay)
        var daemon = GatewayDaemon(configuration: config, registry: registry, logger: logger)
        daemon.extraServices = [client]
        try await daemon.run { ready in
            Printer.line("[gateway] MSRP on 127.0.0.1:\(ready.msrpPort), API on http://127.0.0.1:\(ready.apiPort) (token \(Self.token))")
            client.start(apiPort: ready.apiPort)
        }
        await sinkGroup.triggerGracefulShutdown()
        _ = try? await sinkTask.value
        Printer.line(client.succeeded ? "demo done" : "demo FAILED: \(client.problem)")
        if !client.succeeded { throw ExitCode(1) }
    }

    static func configuration(dataDir: String, sinkPort: Int) -> String {
        """
        [gateway]
        identity = "sip:gateway@gw.example"
        data_dir = "\(dataDir)"
        [msrp]
        port = 0
        [api]
        port = 0
        token = "\(token)"
        [queue]
        retry_schedule = ["0s", "1s", "2s"]
        max_attempts = 4
        jitter = false
        [dispatch]
        poll_interval = "200ms"
        [alertmanager]
        subscribers = ["sip:alice@example.com"]
        [routes]
        "sip:ops@gw.example" = ["webhook:ok"]
        "sip:flaky@gw.example" = ["webhook:flaky"]
        "sip:broken@gw.example" = ["webhook:broken"]
        [webhooks.ok]
        url = "http://127.0.0.1:\(sinkPort)/ok"
        secrets = ["\(secret)"]
        [webhooks.flaky]
        url = "http://127.0.0.1:\(sinkPort)/flaky"
        secrets = ["\(secret)"]
        [webhooks.broken]
        url = "http://127.0.0.1:\(sinkPort)/broken"
        secrets = ["\(secret)"]
        """
    }
}

/// The demo's MSRP client, as a service in the gateway's group: it runs its
/// script once the API is up, then asks the process to stop (SIGTERM, the same
/// graceful shutdown an operator gets).
final class DemoScript: Service, @unchecked Sendable {
    private let stay: Bool
    private let apiPort = NIOLockedValueBox<Int?>(nil)
    private let result = NIOLockedValueBox<(Bool, String)>((false, "did not run"))

    init(stay: Bool) { self.stay = stay }

    var succeeded: Bool { result.withLockedValue { $0.0 } }
    var problem: String { result.withLockedValue { $0.1 } }

    func start(apiPort port: Int) { apiPort.withLockedValue { $0 = port } }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while self.apiPort.withLockedValue({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
            let port = self.apiPort.withLockedValue { $0 } ?? 0
            do {
                try await self.script(apiPort: port)
                self.result.withLockedValue { $0 = (true, "") }
            } catch {
                self.result.withLockedValue { $0 = (false, "\(error)") }
                Printer.line("[client] \(error)")
            }
            if !self.stay { kill(getpid(), SIGTERM) }
            try await Task.sleep(for: .seconds(86400 * 365))
        }
    }

    struct Check: Error, CustomStringConvertible { var description: String }

    private func script(apiPort: Int) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let http = HTTPClient(eventLoopGroup: group)
        let endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group)
        defer { Task { try? await http.shutdown(); await endpoint.shutdown() } }
        let client = GatewayClient(
            name: "Alice", address: "sip:alice@example.com", endpoint: endpoint, http: http, api: "http://127.0.0.1:\(apiPort)",
            token: DemoCommand.token, onEvent: { Printer.line("[client] \($0)") })
        try await client.open()
        Printer.line("[client] session \(client.sessionID ?? "?") open: SDP offer/answer through POST /v1/sessions")

        let plan: [(String, String, String)] = [
            ("hello-ops", "sip:ops@gw.example", "Deploy finished ✓ (webhook answers 204)"),
            ("hello-flaky", "sip:flaky@gw.example", "This one is retried (webhook answers 500, then 200)"),
            ("hello-broken", "sip:broken@gw.example", "This one fails (webhook answers 400)"),
            ("hello-nobody", "sip:nobody@gw.example", "Nobody is configured for this address"),
        ]
        for (id, to, text) in plan {
            let outcome = try await client.send(text, to: to, messageID: id)
            Printer.line("[client] SEND \(id) to \(to): \(outcome)")
        }
        let (status, body, _) = try await client.call(
            "POST", "/v1/messages", body: #"{"to": "sip:alice@example.com", "text": "Maintenance at 22:00 UTC", "system": true}"#)
        Printer.line("[client] POST /v1/messages (a system message to sip:alice@example.com): \(status) \(body)")

        let done = await client.wait(timeout: .seconds(20)) { c in
            c.allReports.count >= 3 && c.allReceived.count >= 4
        }
        let reports = client.allReports.map { "\($0.headers.messageID ?? "?") \($0.headers.status?.code ?? 0)" }.sorted()
        Printer.line("[client] REPORTs: \(reports.joined(separator: ", "))")
        guard done, reports == ["hello-broken 400", "hello-flaky 200", "hello-ops 200"] else {
            throw Check(description: "expected success REPORTs for hello-ops and hello-flaky and a failure REPORT 400 for hello-broken; got \(reports)")
        }
    }
}
