import Gateway
import Logging
import MSRPTransport
import NIOConcurrencyHelpers
import SMTPAdapter
import SMTPInbound
import ServiceLifecycle
import UnixSignals
import WebhookAdapter

/// Re-reads the configuration file on SIGHUP (`systemctl reload`) and puts in
/// force what can change while sessions and connections stay up: routes,
/// rooms, webhooks and their secrets, the SMTP relay and mail settings (and the
/// reply domain, token secrets and token life of `[smtp.inbound]`), the
/// relay role's users and WebSocket tokens, the log level. A configuration
/// that does not read, or that a step refuses, changes nothing: the log names
/// the key and the running configuration stays. Other changed keys are named
/// in the log as taking effect at the next restart.
final class ConfigurationReload: Sendable {
    struct Parts: Sendable {
        var gateway: Gateway
        var webhook: WebhookAdapter
        var smtp: SMTPAdapter?
        var mailIntake: MailIntake?
        var relayRole: MSRPRelayRole?
        var relayTokens: NIOLockedValueBox<[String: String]>
    }

    private let path: String?
    private let parts: Parts
    private let notifier: SystemdNotifier
    private let logger: Logger
    /// The configuration in force (reloads run one at a time, from one service).
    private let running: NIOLockedValueBox<DaemonConfiguration>

    init(path: String?, running: DaemonConfiguration, parts: Parts, notifier: SystemdNotifier, logger: Logger) {
        self.path = path
        self.running = NIOLockedValueBox(running)
        self.parts = parts
        self.notifier = notifier
        self.logger = logger
    }

    /// Keys a reload applies (a path, or the prefix of paths under it).
    static let reloadable: [[String]] = [
        ["routes"], ["rooms"], ["webhooks"], ["smtp"], ["relay", "users"], ["relay", "tokens"], ["gateway", "log_level"],
    ]
    /// Under a reloadable path, what still needs a restart: the SMTP listener's socket and limits.
    static let notReloadable: [[String]] = SMTPInboundSettings.keys
        .filter { !["domain", "secrets", "secrets_file", "token_ttl"].contains($0) }.map { ["smtp", "inbound", $0] }

    /// Whether a changed key takes effect only at the next restart.
    static func needsRestart(_ key: [String]) -> Bool {
        !reloadable.contains { key.starts(with: $0) } || notReloadable.contains { key.starts(with: $0) }
    }

    /// Reloads once; the outcome is in the log (and `STATUS=` under systemd).
    /// Returns whether the new configuration is in force.
    @discardableResult
    func reload() async -> Bool {
        notifier.reloading()
        defer { notifier.ready(status: WatchdogService.status(parts.gateway)) }
        let source = path ?? "embedded defaults"
        do {
            let new = try DaemonConfiguration.load(path: path)
            let old = running.withLockedValue { $0 }
            try await apply(new, over: old)
            running.withLockedValue { $0 = new }
            let later = Self.changedKeys(old.tree, new.tree).filter(Self.needsRestart).map { $0.joined(separator: ".") }
            logger.notice("configuration reloaded", metadata: [
                "file": "\(source)", "routes": "\(new.routes.count)", "webhooks": "\(new.webhooks.count)", "log_level": "\(new.logLevel)"])
            if !later.isEmpty {
                logger.warning("changed keys take effect at the next restart", metadata: ["keys": "\(later.joined(separator: " "))"])
            }
            return true
        } catch {
            logger.error("configuration reload refused: the running configuration stays", metadata: ["file": "\(source)", "error": "\(error)"])
            return false
        }
    }

    /// The fallible steps first, each undone if a later one fails; then the
    /// steps that cannot fail.
    private func apply(_ new: DaemonConfiguration, over old: DaemonConfiguration) async throws {
        if (old.smtp == nil) != (new.smtp == nil) {
            throw ConfigError("smtp: adding or removing the SMTP relay needs a restart (its adapter is made at start)")
        }
        if (old.smtpInbound == nil) != (new.smtpInbound == nil) {
            throw ConfigError("smtp.inbound: adding or removing the SMTP listener needs a restart")
        }
        if (old.relayRole == nil) != (new.relayRole == nil) {
            throw ConfigError("relay: turning the relay role on or off needs a restart")
        }
        let undoWebhooks: @Sendable () -> Void
        do { undoWebhooks = try parts.webhook.replaceEndpoints(with: new.webhooks) } catch { throw ConfigError("webhooks: \(error)") }
        let undoRoutes: @Sendable () -> Void
        do { undoRoutes = try parts.gateway.replaceRoutes(new.routes) } catch {
            undoWebhooks()
            throw ConfigError("routes: \(error)")
        }
        if let smtp = parts.smtp, let settings = new.smtp {
            do { try smtp.reconfigure(relay: settings.relay, mail: settings.mail) } catch {
                undoRoutes()
                undoWebhooks()
                throw ConfigError("smtp: \(error)")
            }
        }
        if let intake = parts.mailIntake, let inbound = new.smtpInbound { intake.replace(inbound.addressing) }
        parts.gateway.replaceRooms(new.gateway.rooms)
        if let role = new.relayRole {
            parts.relayRole?.replaceUsers(role.users)
            parts.relayTokens.withLockedValue { $0 = role.tokens }
        }
        LogLevelControl.shared.level = new.logLevel
    }

    /// The paths of the leaves (and of tables present on one side only) that differ.
    static func changedKeys(_ a: ConfigTree, _ b: ConfigTree, at path: [String] = []) -> [[String]] {
        guard case .table(let x) = a, case .table(let y) = b else { return a == b ? [] : [path] }
        return Set(x.keys).union(y.keys).sorted().flatMap { key -> [[String]] in
            switch (x[key], y[key]) {
            case let (l?, r?): changedKeys(l, r, at: path + [key])
            default: [path + [key]]
            }
        }
    }
}

/// Runs a reload for each SIGHUP until shutdown.
struct ReloadService: Service {
    let reload: ConfigurationReload

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals { await reload.reload() }
        }
    }
}
