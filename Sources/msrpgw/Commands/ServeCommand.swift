import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import Queue

/// `msrpgw serve`: the daemon.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway (until SIGTERM or SIGINT).",
        discussion: "Without --config it runs on the embedded defaults (config/msrpgw.toml). MSRPGW_* environment variables override any key.")

    @Option(help: "Configuration file (TOML).") var config: String?
    @Option(help: "Once listening, write the bound ports as JSON to this file ({\"msrp\": 2855, \"api\": 8080, ...}); a port 0 in the configuration is then a free one.")
    var portsFile: String?

    func run() async throws {
        let configuration = try loadOrExit(config)
        let logger = Bootstrap.logging(level: configuration.logLevel, format: configuration.logFormat)
        if !configuration.appliedEnvironment.isEmpty {
            logger.info("environment overrides", metadata: ["variables": "\(configuration.appliedEnvironment.joined(separator: " "))"])
        }
        let portsFile = self.portsFile
        var daemon = GatewayDaemon(configuration: configuration, registry: Bootstrap.metrics(), logger: logger)
        daemon.reloadFrom = .some(config)
        try await daemon.run { ready in
            guard let portsFile else { return }
            do {
                // Written whole, then renamed: a reader never sees half a file.
                try JSONEncoder().encode(ready).write(to: URL(fileURLWithPath: portsFile), options: .atomic)
            } catch {
                logger.error("cannot write the ports file", metadata: ["path": "\(portsFile)", "error": "\(error)"])
            }
        }
    }
}

/// `msrpgw check-config FILE`: reads and checks a configuration, starts nothing.
struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Check a configuration file (and MSRPGW_* overrides) without starting anything.")

    @Argument(help: "Configuration file (TOML); omit for the embedded defaults.") var file: String?

    func run() async throws {
        let c = try loadOrExit(file)
        Printer.line("ok: \(file ?? "embedded defaults")")
        Printer.line("  msrp \(c.msrp.listen):\(c.msrp.port)\(c.msrp.tlsPort.map { ", msrps :\($0)" } ?? ""), api http://\(c.api.listen):\(c.api.port)\(c.api.token == nil ? " (no token)" : "")")
        let store = switch c.queue.backend {
        case .sqlite: "\(c.queue.path) synchronous=\(c.queue.synchronous.rawValue.lowercased())"
        case .postgresql: "postgresql \((try? PostgresLocation(url: c.queue.url ?? "")).map(\.description) ?? "?") node \(c.gateway.node), pool \(c.queue.poolSize)"
        }
        Printer.line("  queue \(store), \(c.queue.retry.maxAttempts) attempts, max age \(c.queue.retry.maxAge)")
        for (address, targets) in c.routes.sorted(by: { $0.key < $1.key }) {
            Printer.line("  route \(address) -> \(targets.joined(separator: ", "))")
        }
        for w in c.webhooks { Printer.line("  webhook \(w.name) \(w.url) (\(w.secrets.count) secret\(w.secrets.count == 1 ? "" : "s"))") }
        if !c.appliedEnvironment.isEmpty { Printer.line("  overridden by \(c.appliedEnvironment.joined(separator: " "))") }
    }
}

/// Process-wide set-up that may happen once.
enum Bootstrap {
    /// Every logger of the process writes to standard error in `format`, at the
    /// level `LogLevelControl` holds (a reload changes it).
    static func logging(level: Logger.Level, format: LogFormat = .text) -> Logger {
        LogLevelControl.shared.level = level
        LoggingSystem.bootstrap { label in
            switch format {
            case .text: EscapingLogHandler(StreamLogHandler.standardError(label: label))
            case .json: JSONLogHandler(label: label)
            }
        }
        return Logger(label: "msrpgw")
    }

    static func metrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }
}
