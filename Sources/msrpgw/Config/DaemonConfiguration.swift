import Admission
import Events
import Foundation
import Gateway
import IRCAdapter
import IRCClient
import IRCWire
import XMPPAdapter
import XMPPClient
import XMPPWire
import Logging
import MSRP
import NIOCore
import Queue
import SIP
import SMTPAdapter
import SMTPWire
import WebhookAdapter

/// Everything `msrpgw serve` needs, read from TOML (see config/msrpgw.toml, the
/// documented example) with `MSRPGW_*` environment overrides.
struct DaemonConfiguration: Sendable {
    struct MSRP: Sendable {
        var listen = "127.0.0.1"
        var port = 2855
        var advertisedHost = "127.0.0.1"
        /// The msrps listener, when a certificate is configured.
        var tlsPort: Int?
        var tlsCertificate: String?
        var tlsKey: String?
        var idleTimeout: Duration = .seconds(300)
        /// A connection a peer opened is closed if it binds no session within this.
        var unboundTimeout: Duration = .seconds(30)
        var connectionLimits = ConnectionLimits()
        var transactionTimeout: Duration = .seconds(30)
        var chunkSize = 64 * 1024
        /// Event-loop threads for MSRP connections; 0: share the process's (one per core).
        var eventLoops = 1
        /// An extra CA (PEM) trusted for msrps connections we open (a relay's, a peer's).
        var caFile: String?
        /// MSRP over WebSocket (RFC 7977): plain WS (loopback only) and WSS listeners.
        var wsPort: Int?
        var wssPort: Int?
        /// Origins allowed to open a WebSocket; empty: any.
        var wsOrigins: [String] = []
        /// The MSRP relay our sessions go through (RFC 4976), and our credentials there.
        var relay: MSRPRelaySettings?
        /// Where connections a peer named (a=path, a relay hop) may go.
        var connectAllow: [CIDR] = []
        var connectDeny: [CIDR] = ConnectPolicy.defaultDeny
    }
    struct MSRPRelaySettings: Sendable {
        var uri: String
        var username: String
        var password: String
        /// Seconds asked for in AUTH; nil lets the relay choose.
        var expires: Int64?
    }

    struct QueueSettings: Sendable {
        enum Backend: String, Sendable, CaseIterable {
            /// One file under one process (the embedded default).
            case sqlite
            /// Several nodes sharing one database.
            case postgresql
        }
        var backend = Backend.sqlite
        var path = "var/queue.sqlite"
        /// PostgreSQL: where (a `postgresql://` URL, no password in it).
        var url: String?
        /// PostgreSQL: the password, read from this file (first line) ...
        var passwordFile: String?
        /// ... or from this environment variable.
        var passwordEnv: String?
        /// PostgreSQL: connections this node opens at most.
        var poolSize = 8
        /// PostgreSQL: an operation with no answer in this time fails (new work
        /// is refused, never acknowledged).
        var timeout: Duration = .seconds(10)
        /// PostgreSQL: how often this node says it is alive ...
        var heartbeat: Duration = .seconds(2)
        /// ... and how long after the last heartbeat the other nodes take over
        /// its leases.
        var nodeTimeout: Duration = .seconds(10)
        var synchronous: SQLiteEventQueue.Configuration.Synchronous = .full
        var retry = RetryPolicy.standard
        /// Delivered events are purged after this long.
        var retention: Duration = .seconds(7 * 86400)
    }

    struct API: Sendable {
        var listen = "127.0.0.1"
        var port = 8080
        /// Bearer token for `/v1/*`. Required unless the API listens on loopback.
        var token: String?
        var connectionLimits = ConnectionLimits(perListener: 1024, perSource: 64)
        /// Requests from one source address; nil: no limit.
        var requestRate: RateLimit? = RateLimit(rate: 500, burst: 1000)
        /// A request's head must arrive within this of the connection opening.
        var headerTimeout: Duration = .seconds(10)
        /// A kept-alive connection with no request for this long is closed (and
        /// the next request's head must arrive within it).
        var idleTimeout: Duration = .seconds(60)
    }

    struct Alertmanager: Sendable {
        /// Where alerts go: route addresses or MSRP peer addresses.
        var subscribers: [String] = []
    }

    var gateway = GatewayConfiguration()
    var dataDirectory = "var"
    var logLevel: Logger.Level = .info
    var logFormat = LogFormat.text
    /// The document as read, environment overrides applied: a reload compares
    /// it with the running one to name what takes effect only at restart.
    var tree = ConfigTree.table([:])
    var msrp = MSRP()
    var queue = QueueSettings()
    var api = API()
    var webhooks: [WebhookEndpoint] = []
    var webhookConcurrency = 256
    /// How long the webhook client waits for a connection: short enough that a
    /// receiver that is down is known quickly (loopback and LAN peers connect in
    /// milliseconds), long enough for a TLS handshake across the internet.
    var webhookConnectTimeout: Duration = .seconds(2)
    var routes: [String: [String]] = [:]
    var alertmanager = Alertmanager()
    /// The MSRP relay role (`[relay]`): the endpoint relays for these users.
    struct RelayRole: Sendable {
        /// The relay's own URI; nil: our msrps listener, else our msrp one.
        var uri: String?
        var realm: String
        var users: [String: String]
        /// Tokens a browser may present at the WebSocket handshake (RFC 7977 §7),
        /// with the name each stands for; the API token counts too (as "api").
        var tokens: [String: String]
        var expires: ClosedRange<Int64>
    }
    var relayRole: RelayRole?
    struct SIP: Sendable {
        var listen = "127.0.0.1"
        /// UDP and TCP on the same port.
        var port = 5060
        var transports: [String] = ["udp", "tcp"]
        /// Our domain: a call to `sip:ops@anything` uses the route `sip:ops@<domain>`.
        var domain: String?
        /// The host in our Contact header.
        var contactHost = "127.0.0.1"
        var t1: Duration = .milliseconds(500)
        /// The TLS listener (with "tls" in transports): its port and certificate.
        var tlsPort = 5061
        var tlsCertificate: String?
        var tlsKey: String?
        /// host:port every request of ours goes to first (RFC 3261 §8.1.2).
        var outboundProxy: (host: String, port: Int)?
        /// Who we are to proxies and registrars (digest credentials), when `aor` is set.
        var account: SIPAccount?
        /// Registration at a registrar, when `registrar` is set.
        var registration: Registration?
        /// Call peers that messages wait for (default: when there is an outbound proxy).
        var callOut = false
        var hangupAfter: Duration = .seconds(2)
        var redialAfter: Duration = .seconds(60)
        var connectionLimits = ConnectionLimits()
        /// A TCP/TLS connection that sends nothing for this long is closed.
        var tcpIdleTimeout: Duration = .seconds(300)
        /// New requests from one source address (behind a proxy: all of them).
        var requestRate: RateLimit? = RateLimit(rate: 1000, burst: 2000)
    }
    struct Registration: Sendable {
        var registrar: String
        var expires: Int
    }

    /// IRC networks (`[irc.NAME]`): one bot connection each.
    var ircNetworks: [IRCNetworkSettings] = []
    /// XMPP servers (`[xmpp.NAME]`) the gateway is a component of.
    var xmppServers: [XMPPSettings] = []
    /// SIP user agent; nil when `[sip]` is absent or `enabled = false`.
    var sip: SIP?
    /// The SMTP relay and how mails look; nil when `[smtp]` has no host.
    var smtp: (relay: SMTPRelay, mail: MailSettings)?
    /// The SMTP listener for replies and bounces (`[smtp.inbound]`).
    var smtpInbound: SMTPInboundSettings?
    /// The environment variables that changed something, for the start-up log.
    var appliedEnvironment: [String] = []

    /// Reads a configuration file, or the embedded defaults when `path` is nil.
    static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> DaemonConfiguration {
        let text: String
        if let path {
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw ConfigError("cannot read \(path): \(error.localizedDescription)")
            }
        } else {
            text = EmbeddedDefaults.text
        }
        do {
            return try parse(text, environment: environment)
        } catch {
            throw ConfigError("\(path ?? "embedded defaults"): \(error.description)")
        }
    }

    /// The keys environment variables may override (besides the webhooks ones).
    static let overridableKeys: [[String]] = [
        ["gateway", "identity"], ["gateway", "node"], ["gateway", "data_dir"], ["gateway", "log_level"], ["gateway", "log_format"], ["gateway", "max_message_bytes"],
        ["gateway", "inline_body_limit"], ["gateway", "default_route"], ["gateway", "accept_types"], ["gateway", "accept_wrapped_types"],
        ["msrp", "listen"], ["msrp", "port"], ["msrp", "advertised_host"], ["msrp", "tls_port"], ["msrp", "tls_certificate"],
        ["msrp", "tls_key"], ["msrp", "idle_timeout"], ["msrp", "bind_timeout"], ["msrp", "unbound_timeout"],
        ["msrp", "max_connections"], ["msrp", "max_connections_per_source"], ["msrp", "max_messages_per_second"], ["msrp", "message_burst"],
        ["msrp", "max_connection_messages_per_second"], ["msrp", "connection_message_burst"],
        ["msrp", "connect_allow"], ["msrp", "connect_deny"], ["msrp", "transaction_timeout"], ["msrp", "chunk_size"], ["msrp", "event_loops"],
        ["queue", "path"], ["queue", "synchronous"], ["queue", "retry_schedule"], ["queue", "max_attempts"], ["queue", "max_age"],
        ["queue", "jitter"], ["queue", "retention"], ["queue", "backend"], ["queue", "url"], ["queue", "password_file"], ["queue", "password_env"],
        ["queue", "pool_size"], ["queue", "timeout"], ["queue", "heartbeat"], ["queue", "node_timeout"],
        ["dispatch", "lease_batch"], ["dispatch", "lease_duration"], ["dispatch", "poll_interval"], ["dispatch", "webhook_concurrency"],
        ["dispatch", "endpoint_concurrency"], ["dispatch", "breaker_failures"], ["dispatch", "breaker_backoff"],
        ["dispatch", "breaker_max_backoff"], ["dispatch", "webhook_connect_timeout"],
        ["api", "listen"], ["api", "port"], ["api", "token"], ["api", "max_connections"], ["api", "max_connections_per_source"],
        ["api", "header_timeout"], ["api", "idle_timeout"], ["api", "max_requests_per_second"], ["api", "request_burst"],
        ["alertmanager", "subscribers"],
        ["smtp", "host"], ["smtp", "port"], ["smtp", "security"], ["smtp", "verify_certificate"], ["smtp", "ca_file"],
        ["smtp", "username"], ["smtp", "password"], ["smtp", "auth"], ["smtp", "helo"], ["smtp", "max_connections"],
        ["smtp", "from"], ["smtp", "reply_to"], ["smtp", "subject_template"], ["smtp", "connect_timeout"],
        ["smtp", "reply_timeout"], ["smtp", "data_timeout"],
        ["sip", "enabled"], ["sip", "listen"], ["sip", "port"], ["sip", "transports"], ["sip", "domain"], ["sip", "contact_host"], ["sip", "t1"],
        ["sip", "outbound_proxy"], ["sip", "registrar"], ["sip", "aor"], ["sip", "username"], ["sip", "password"], ["sip", "register_expires"],
        ["sip", "call_out"], ["sip", "hangup_after"], ["sip", "redial_after"], ["sip", "tls_port"], ["sip", "tls_certificate"], ["sip", "tls_key"],
        ["sip", "max_connections"], ["sip", "max_connections_per_source"], ["sip", "tcp_idle_timeout"],
        ["sip", "max_requests_per_second"], ["sip", "request_burst"],
        ["routes"],
        // Secrets in files (`LoadCredential=`): the *_file form of each secret key.
        ["smtp", "inbound", "listen"], ["smtp", "inbound", "port"], ["smtp", "inbound", "domain"], ["smtp", "inbound", "secrets_file"],
        ["smtp", "inbound", "tls_certificate"], ["smtp", "inbound", "tls_key"],
        ["api", "token_file"], ["smtp", "password_file"], ["sip", "password_file"], ["msrp", "relay_password_file"],
    ]

    static let webhookKeys = ["url", "secrets", "secrets_file", "timeout", "headers", "ca_file"]

    static func parse(_ text: String, environment: [String: String]) throws(ConfigError) -> DaemonConfiguration {
        var tree = try ConfigTree.parse(toml: text)
        // Webhooks named in the file, and new ones named by MSRPGW_WEBHOOKS_<NAME>_URL.
        var names = Set(tree[["webhooks"]]?.tableValue?.keys.map { $0 } ?? [])
        for key in environment.keys where key.hasPrefix("MSRPGW_WEBHOOKS_") && key.hasSuffix("_URL") {
            names.insert(String(key.dropFirst(16).dropLast(4)).lowercased())
        }
        let keys = overridableKeys + names.sorted().flatMap { n in webhookKeys.map { ["webhooks", n, $0] } }
        let applied = try tree.applyEnvironment(environment, keys: keys)

        guard let top = tree.tableValue else { throw ConfigError("the document is not a table") }
        let sections: Set<String> = ["gateway", "msrp", "queue", "dispatch", "api", "routes", "webhooks", "alertmanager", "smtp", "sip", "irc", "xmpp", "rooms", "relay"]
        if let unknown = Set(top.keys).subtracting(sections).sorted().first {
            throw ConfigError("unknown section or key \(unknown) (sections: \(sections.sorted().joined(separator: ", ")))")
        }
        var c = DaemonConfiguration()
        c.appliedEnvironment = applied
        c.tree = tree
        try c.readGateway(tree)
        try c.readMSRP(tree)
        try c.readQueue(tree)
        try c.readDispatch(tree)
        try c.readAPI(tree)
        try c.readWebhooks(tree)
        try c.readSMTP(tree)
        try c.readSIP(tree)
        try c.readIRC(tree)
        try c.readXMPP(tree)
        try c.readRoutes(tree)
        try c.readRooms(tree)
        try c.readRelayRole(tree)
        var am = try ConfigReader(tree, section: "alertmanager")
        c.alertmanager.subscribers = try am.strings("subscribers") ?? []
        try am.finish()
        try c.validate()
        return c
    }

    private mutating func readGateway(_ tree: ConfigTree) throws(ConfigError) {
        var r = try ConfigReader(tree, section: "gateway")
        gateway.identity = try r.string("identity", default: gateway.identity)
        gateway.node = try r.int("node", default: 0, in: 0...1023)
        dataDirectory = try r.string("data_dir", default: dataDirectory)
        let level = try r.string("log_level", default: "info")
        guard let l = Logger.Level(rawValue: level) else {
            throw ConfigError("gateway.log_level: \(level.debugDescription) is not one of trace, debug, info, notice, warning, error, critical")
        }
        logLevel = l
        let format = try r.string("log_format", default: "text")
        guard let f = LogFormat(rawValue: format) else { throw ConfigError("gateway.log_format: \(format.debugDescription) is not text or json") }
        logFormat = f
        gateway.maxMessageBytes = Int64(try r.int("max_message_bytes", default: Int(gateway.maxMessageBytes), in: 1...(1 << 40)))
        gateway.inlineBodyLimit = try r.int("inline_body_limit", default: gateway.inlineBodyLimit, in: 0...(16 << 20))
        gateway.defaultRoute = try r.string("default_route")
        gateway.acceptTypes = try r.strings("accept_types") ?? gateway.acceptTypes
        gateway.acceptWrappedTypes = try r.strings("accept_wrapped_types") ?? gateway.acceptWrappedTypes
        gateway.bodyDirectory = dataDirectory + "/bodies"
        queue.path = dataDirectory + "/queue.sqlite"
        try r.finish()
        guard gateway.acceptTypes.first?.lowercased() == "message/cpim" else {
            throw ConfigError("gateway.accept_types: message/cpim must come first (the gateway is a CPIM gateway)")
        }
        guard RouteTable.normalize(gateway.identity) != nil else { throw ConfigError("gateway.identity: \(gateway.identity.debugDescription) is not a URI") }
    }

    private mutating func readMSRP(_ tree: ConfigTree) throws(ConfigError) {
        var r = try ConfigReader(tree, section: "msrp")
        msrp.listen = try r.string("listen", default: msrp.listen)
        msrp.port = try r.int("port", default: msrp.port, in: 0...65535)
        msrp.advertisedHost = try r.string("advertised_host", default: msrp.listen == "0.0.0.0" || msrp.listen == "::" ? "127.0.0.1" : msrp.listen)
        let tlsPort = try r.int("tls_port", default: 0, in: 0...65535)
        msrp.tlsCertificate = try r.string("tls_certificate")
        msrp.tlsKey = try r.string("tls_key")
        msrp.idleTimeout = try r.timeout("idle_timeout", default: msrp.idleTimeout)
        msrp.unboundTimeout = try r.timeout("unbound_timeout", default: msrp.unboundTimeout)
        msrp.connectionLimits = try r.connectionLimits(default: msrp.connectionLimits)
        gateway.sessionMessageRate = try r.rateLimit(
            "max_messages_per_second", burst: "message_burst", default: gateway.sessionMessageRate ?? Self.defaultSessionMessageRate)
        gateway.connectionMessageRate = try r.rateLimit(
            "max_connection_messages_per_second", burst: "connection_message_burst",
            default: gateway.connectionMessageRate ?? Self.defaultConnectionMessageRate)
        gateway.sessionBindTimeout = try r.duration("bind_timeout", default: gateway.sessionBindTimeout)
        msrp.transactionTimeout = try r.duration("transaction_timeout", default: msrp.transactionTimeout)
        msrp.chunkSize = try r.int("chunk_size", default: msrp.chunkSize, in: 256...(16 << 20))
        msrp.eventLoops = try r.int("event_loops", default: msrp.eventLoops, in: 0...256)
        msrp.wsPort = try r.optionalListenerPort("ws_port")
        msrp.wssPort = try r.optionalListenerPort("wss_port")
        msrp.wsOrigins = try r.strings("ws_origins") ?? []
        if msrp.wsPort != nil, !["127.0.0.1", "::1", "localhost"].contains(msrp.listen) {
            throw ConfigError("msrp.ws_port: plain WebSocket only on loopback (msrp.listen = \"127.0.0.1\"); use wss_port")
        }
        msrp.connectAllow = try r.cidrs("connect_allow") ?? msrp.connectAllow
        msrp.connectDeny = try r.cidrs("connect_deny") ?? msrp.connectDeny
        msrp.caFile = try r.string("ca_file")
        if let f = msrp.caFile, !FileManager.default.isReadableFile(atPath: f) { throw ConfigError("msrp.ca_file: cannot read \(f)") }
        if let relay = try r.string("relay") {
            guard (try? MSRPURI(relay)).map({ $0.sessionID == nil }) == true else {
                throw ConfigError("msrp.relay: \(relay.debugDescription) is not a relay URI (msrps://host:port;tcp)")
            }
            guard let user = try r.string("relay_username"), let password = try r.secret("relay_password") else {
                throw ConfigError("msrp.relay needs msrp.relay_username and msrp.relay_password")
            }
            let expires = try r.int("relay_expires", default: 0, in: 0...86_400)
            msrp.relay = MSRPRelaySettings(uri: relay, username: user, password: password, expires: expires == 0 ? nil : Int64(expires))
        }
        try r.finish()
        if tlsPort != 0 || msrp.tlsCertificate != nil || msrp.wssPort != nil {
            guard let cert = msrp.tlsCertificate, let key = msrp.tlsKey, !cert.isEmpty, !key.isEmpty else {
                throw ConfigError("msrp: an msrps listener needs both tls_certificate and tls_key")
            }
            for f in [cert, key] where !FileManager.default.isReadableFile(atPath: f) {
                throw ConfigError("msrp: cannot read \(f)")
            }
            msrp.tlsPort = tlsPort != 0 || msrp.wssPort == nil ? tlsPort : nil  // a certificate only for wss_port opens no msrps listener
        }
    }

    private mutating func readRelayRole(_ tree: ConfigTree) throws(ConfigError) {
        var r = try ConfigReader(tree, section: "relay")
        guard try r.bool("enabled", default: false) else {
            try r.finish()
            return
        }
        let uri = try r.string("uri")
        if let uri, (try? MSRPURI(uri)).map({ $0.sessionID == nil }) != true {
            throw ConfigError("relay.uri: \(uri.debugDescription) is not a relay URI (msrps://relay.example.com:2855;tcp, on one of our listeners)")
        }
        var users: [String: String] = [:]
        for (user, value) in try r.table("users") ?? [:] {
            guard case .string(let password) = value, !password.isEmpty else { throw ConfigError("relay.users.\(user): expected a password") }
            users[user] = password
        }
        var tokens: [String: String] = [:]
        for (token, value) in try r.table("tokens") ?? [:] {
            guard case .string(let name) = value, !name.isEmpty, token.utf8.count >= 16 else {
                throw ConfigError("relay.tokens: expected \"<token of 16 characters or more>\" = \"<name>\"")
            }
            tokens[token] = name
        }
        // The API token also opens the relay to a browser (the web client's sign-in).
        guard !users.isEmpty || !tokens.isEmpty || api.token != nil else {
            throw ConfigError("relay.users: nobody may use the relay (users = { name = \"password\" }, tokens = { \"<token>\" = \"name\" } or api.token)")
        }
        let min = Int64(try r.int("min_expires", default: 60, in: 1...86_400))
        let max = Int64(try r.int("max_expires", default: 3600, in: 1...86_400))
        guard min <= max else { throw ConfigError("relay.min_expires is above relay.max_expires") }
        relayRole = RelayRole(uri: uri, realm: try r.string("realm", default: "msrpgw"), users: users, tokens: tokens, expires: min...max)
        try r.finish()
    }

    private mutating func readQueue(_ tree: ConfigTree) throws(ConfigError) {
        var r = try ConfigReader(tree, section: "queue")
        let backend = try r.string("backend", default: queue.backend.rawValue)
        guard let b = QueueSettings.Backend(rawValue: backend) else {
            throw ConfigError("queue.backend: \(backend.debugDescription) is not \(QueueSettings.Backend.allCases.map(\.rawValue).joined(separator: " or "))")
        }
        queue.backend = b
        queue.url = try r.string("url")
        queue.passwordFile = try r.string("password_file")
        queue.passwordEnv = try r.string("password_env")
        queue.poolSize = try r.int("pool_size", default: queue.poolSize, in: 1...1000)
        queue.timeout = try r.duration("timeout", default: queue.timeout)
        queue.heartbeat = try r.duration("heartbeat", default: queue.heartbeat)
        queue.nodeTimeout = try r.duration("node_timeout", default: queue.nodeTimeout)
        guard queue.nodeTimeout >= queue.heartbeat * 3 else {
            throw ConfigError("queue.node_timeout: \(queue.nodeTimeout) is under three heartbeats (\(queue.heartbeat)): a node would be taken out while alive")
        }
        if b == .postgresql {
            gateway.clustered = true
            guard let url = queue.url else { throw ConfigError("queue.url: backend postgresql needs a postgresql:// URL") }
            do {
                _ = try PostgresLocation(url: url)
            } catch {
                throw ConfigError("queue.url: \(error.detail)")
            }
            if queue.passwordFile != nil, queue.passwordEnv != nil {
                throw ConfigError("queue: password_file and password_env both given: one source for the password")
            }
        } else if queue.url != nil {
            throw ConfigError("queue.url: set for backend sqlite, which uses queue.path (set backend = \"postgresql\")")
        }
        queue.path = try r.string("path", default: queue.path)
        let sync = try r.string("synchronous", default: "full").uppercased()
        guard let s = SQLiteEventQueue.Configuration.Synchronous(rawValue: sync) else {
            throw ConfigError("queue.synchronous: \(sync.lowercased().debugDescription) is not full, normal or off")
        }
        queue.synchronous = s
        var schedule = RetryPolicy.standard.schedule
        if let texts = try r.strings("retry_schedule") {
            guard !texts.isEmpty else { throw ConfigError("queue.retry_schedule: at least one delay") }
            schedule = []
            for t in texts {
                guard let d = DurationText.parse(t) else { throw ConfigError("queue.retry_schedule: \(t.debugDescription) is not a duration") }
                schedule.append(d)
            }
        }
        queue.retry = RetryPolicy(
            schedule: schedule, maxAttempts: try r.int("max_attempts", default: schedule.count + 1, in: 1...1000),
            maxAge: try r.duration("max_age", default: RetryPolicy.standard.maxAge), jitter: try r.bool("jitter", default: true))
        queue.retention = try r.duration("retention", default: queue.retention)
        try r.finish()
    }

    private mutating func readDispatch(_ tree: ConfigTree) throws(ConfigError) {
        var r = try ConfigReader(tree, section: "dispatch")
        gateway.defaultDispatch = DispatchSettings(
            leaseBatch: try r.int("lease_batch", default: 64, in: 1...10_000),
            leaseDuration: try r.duration("lease_duration", default: .seconds(120)),
            pollInterval: try r.duration("poll_interval", default: .seconds(1)),
            endpointConcurrency: try Optional(r.int("endpoint_concurrency", default: 0, in: 0...10_000)).flatMap { $0 == 0 ? nil : $0 },
            breakerFailures: try r.int("breaker_failures", default: 5, in: 1...1000),
            breakerBackoff: try r.duration("breaker_backoff", default: .seconds(2)),
            breakerMaximumBackoff: try r.duration("breaker_max_backoff", default: .seconds(60)))
        webhookConcurrency = try r.int("webhook_concurrency", default: webhookConcurrency, in: 1...10_000)
        webhookConnectTimeout = try r.duration("webhook_connect_timeout", default: webhookConnectTimeout)
        try r.finish()
        guard gateway.defaultDispatch.breakerBackoff >= .milliseconds(10),
              gateway.defaultDispatch.breakerMaximumBackoff >= gateway.defaultDispatch.breakerBackoff
        else { throw ConfigError("dispatch.breaker_backoff: at least 10ms, and breaker_max_backoff at least breaker_backoff") }
        guard webhookConnectTimeout >= .milliseconds(10) else { throw ConfigError("dispatch.webhook_connect_timeout: at least 10ms") }
        guard gateway.defaultDispatch.leaseDuration >= .seconds(2) else { throw ConfigError("dispatch.lease_duration: at least 2s") }
        guard gateway.defaultDispatch.pollInterval >= .milliseconds(10) else { throw ConfigError("dispatch.poll_interval: at least 10ms") }
    }

    private mutating func readAPI(_ tree: ConfigTree) throws(ConfigError) {
        var r = try ConfigReader(tree, section: "api")
        api.listen = try r.string("listen", default: api.listen)
        api.port = try r.int("port", default: api.port, in: 0...65535)
        api.token = try r.secret("token").flatMap { $0.isEmpty ? nil : $0 }
        api.connectionLimits = try r.connectionLimits(default: api.connectionLimits)
        api.requestRate = try r.rateLimit("max_requests_per_second", burst: "request_burst", default: api.requestRate)
        api.headerTimeout = try r.timeout("header_timeout", default: api.headerTimeout)
        api.idleTimeout = try r.timeout("idle_timeout", default: api.idleTimeout)
        try r.finish()
        if api.token == nil, !Self.isLoopback(api.listen) {
            throw ConfigError("api.token: required when the API listens on \(api.listen) (not loopback)")
        }
    }

    private mutating func readWebhooks(_ tree: ConfigTree) throws(ConfigError) {
        guard let all = tree[["webhooks"]] else { return }
        guard let table = all.tableValue else { throw ConfigError("webhooks: expected tables like [webhooks.NAME]") }
        for name in table.keys.sorted() {
            var r = try ConfigReader(tree, section: "webhooks.\(name)")
            guard let url = try r.string("url") else { throw ConfigError("webhooks.\(name).url: missing") }
            var headers: [String: String] = [:]
            for (k, v) in try r.table("headers") ?? [:] {
                guard case .string(let s) = v else { throw ConfigError("webhooks.\(name).headers.\(k): expected a string") }
                headers[k] = s
            }
            let caFile = try r.string("ca_file").flatMap { $0.isEmpty ? nil : $0 }
            if let caFile, !FileManager.default.isReadableFile(atPath: caFile) { throw ConfigError("webhooks.\(name).ca_file: cannot read \(caFile)") }
            let endpoint = WebhookEndpoint(
                name: name, url: url, secrets: try r.secrets("secrets") ?? [], timeout: try r.duration("timeout", default: .seconds(10)),
                headers: headers, caFile: caFile)
            try r.finish()
            do { try endpoint.validate() } catch { throw ConfigError(error.description) }
            webhooks.append(endpoint)
        }
    }

    private mutating func readIRC(_ tree: ConfigTree) throws(ConfigError) {
        guard let all = tree[["irc"]] else { return }
        guard let table = all.tableValue else { throw ConfigError("irc: expected tables like [irc.NAME]") }
        for name in table.keys.sorted() {
            var r = try ConfigReader(tree, section: "irc.\(name)")
            guard let host = try r.string("host"), !host.isEmpty else { throw ConfigError("irc.\(name).host: missing") }
            let tls = try r.bool("tls", default: true)
            guard let nick = try r.string("nick"), !nick.isEmpty, !nick.contains(" ") else { throw ConfigError("irc.\(name).nick: missing or has a space") }
            var client = IRCClientConfiguration(
                host: host, port: try r.int("port", default: tls ? 6697 : 6667, in: 1...65535), tls: tls,
                verifyCertificate: try r.bool("verify_certificate", default: true), caFile: try r.string("ca_file"), nick: nick,
                user: try r.string("user"), realName: try r.string("real_name", default: "msrpgw bridge"), password: try r.secret("password"))
            switch try r.string("sasl", default: "none").lowercased() {
            case "none": break
            case "plain":
                guard let user = try r.string("sasl_user"), let password = try r.secret("sasl_password") else {
                    throw ConfigError("irc.\(name): sasl = \"plain\" needs sasl_user and sasl_password")
                }
                client.sasl = .plain(user: user, password: password)
            case "external": client.sasl = .external
            case let other: throw ConfigError("irc.\(name).sasl: \(other.debugDescription) is not none, plain or external")
            }
            if case .plain = client.sasl, !tls { throw ConfigError("irc.\(name): SASL PLAIN only over TLS (tls = true)") }
            client.burst = try r.int("burst", default: client.burst, in: 1...1000)
            client.linesPerSecond = Double(try r.int("lines_per_second", default: Int(client.linesPerSecond), in: 0...100_000))
            var channels: [String: String?] = [:]
            for c in try r.strings("channels") ?? [] {
                let parts = c.split(separator: " ", maxSplits: 1).map(String.init)
                guard let channel = parts.first, channel.hasPrefix("#") || channel.hasPrefix("&") else {
                    throw ConfigError("irc.\(name).channels: \(c.debugDescription) is not \"#channel\" or \"#channel key\"")
                }
                channels[channel] = parts.count > 1 ? parts[1] : nil
            }
            let maxLines = try r.int("max_lines", default: 10, in: 1...1000)
            let reconnectMin = try r.duration("reconnect_min", default: .seconds(2))
            let reconnectMax = try r.duration("reconnect_max", default: .seconds(120))
            guard reconnectMin > .zero, reconnectMin <= reconnectMax else {
                throw ConfigError("irc.\(name): reconnect_min must be above 0 and at most reconnect_max")
            }
            var bridges: [String: String] = [:]
            for (channel, value) in try r.table("bridges") ?? [:] {
                guard case .string(let route) = value else { throw ConfigError("irc.\(name).bridges.\(channel): expected a route address") }
                guard channels[channel] != nil else {
                    throw ConfigError("irc.\(name).bridges: \(channel) is not in irc.\(name).channels")
                }
                bridges[channel] = route
            }
            let announce = Set((try r.strings("announce") ?? IRCToMSRP.announcements.sorted()).map { $0.lowercased() })
            for a in announce where !IRCToMSRP.announcements.contains(a) {
                throw ConfigError("irc.\(name).announce: \(a.debugDescription) is not one of \(IRCToMSRP.announcements.sorted().joined(separator: ", "))")
            }
            let puppets = try r.int("puppets", default: 0, in: 0...1000)
            let suffix = try r.string("puppet_suffix", default: "[m]")
            guard suffix.count <= 8, IRCNick.isNickText(suffix) else {
                throw ConfigError("irc.\(name).puppet_suffix: \(suffix.debugDescription) is not up to 8 characters a nick may hold")
            }
            try r.finish()
            ircNetworks.append(IRCNetworkSettings(
                name: name, client: client, channels: channels, maxLines: maxLines, reconnect: reconnectMin...reconnectMax, bridges: bridges,
                announce: announce, puppets: puppets, puppetSuffix: suffix))
        }
    }

    private mutating func readXMPP(_ tree: ConfigTree) throws(ConfigError) {
        guard let all = tree[["xmpp"]] else { return }
        guard let table = all.tableValue else { throw ConfigError("xmpp: expected tables like [xmpp.NAME]") }
        for name in table.keys.sorted() {
            var r = try ConfigReader(tree, section: "xmpp.\(name)")
            guard let host = try r.string("host"), !host.isEmpty else { throw ConfigError("xmpp.\(name).host: missing") }
            guard let domainText = try r.string("domain"), let domain = JID(domainText), domain.local == nil, domain.resource == nil else {
                throw ConfigError("xmpp.\(name).domain: missing or not a domain (the component's address, msrp.example.org)")
            }
            guard let secret = try r.secret("secret"), !secret.isEmpty else { throw ConfigError("xmpp.\(name).secret: missing (the component secret)") }
            let serverDomain = try r.string("server_domain")
            if let serverDomain, JID(serverDomain)?.local != nil || JID(serverDomain) == nil {
                throw ConfigError("xmpp.\(name).server_domain: \(serverDomain.debugDescription) is not a domain")
            }
            let reconnectMin = try r.duration("reconnect_min", default: .seconds(1))
            let reconnectMax = try r.duration("reconnect_max", default: .seconds(60))
            guard reconnectMin > .zero, reconnectMin <= reconnectMax else {
                throw ConfigError("xmpp.\(name): reconnect_min must be above 0 and at most reconnect_max")
            }
            let component = XMPPComponentConfiguration(
                host: host, port: try r.int("port", default: 5347, in: 1...65535), domain: domain.domain, secret: secret,
                serverDomain: serverDomain, connectTimeout: .nanoseconds(try r.duration("connect_timeout", default: .seconds(5)).nanoseconds),
                pingInterval: .nanoseconds(try r.duration("ping_interval", default: .seconds(60)).nanoseconds),
                limits: .init(maxStanzaBytes: try r.int("max_stanza_bytes", default: 262_144, in: 4096...16_777_216)),
                reconnect: reconnectMin...reconnectMax)
            var aliases: [String: String] = [:]
            for (alias, value) in try r.table("aliases") ?? [:] {
                guard case .string(let peer) = value, RouteTable.normalize(peer) != nil, JID(local: alias, domain: domain.domain) != nil else {
                    throw ConfigError("xmpp.\(name).aliases.\(alias): expected a local part = an MSRP peer address (sip:alice@example.com)")
                }
                aliases[alias] = peer
            }
            let msrpDomains = try r.strings("msrp_domains") ?? []
            let senderDomains = try r.strings("sender_domains") ?? [component.serverDomain]
            let receiptWait = try r.duration("receipt_wait", default: .seconds(10))
            var rooms: [String: JID] = [:]
            for (room, value) in try r.table("rooms") ?? [:] {
                guard case .string(let muc) = value, let jid = JID(muc), jid.local != nil, jid.resource == nil else {
                    throw ConfigError("xmpp.\(name).rooms.\(room): expected the MUC room's address (room@conference.example.org)")
                }
                guard RouteTable.normalize(room) != nil else { throw ConfigError("xmpp.\(name).rooms: \(room) is not an MSRP room address") }
                rooms[room] = jid
            }
            let roomNick = try r.string("room_nick", default: "msrpgw")
            guard JID(local: "r", domain: "x", resource: roomNick) != nil else { throw ConfigError("xmpp.\(name).room_nick: \(roomNick.debugDescription) is not a nickname") }
            try r.finish()
            xmppServers.append(XMPPSettings(
                name: name, component: component, addresses: XMPPAddressBook(domain: domain.domain, aliases: aliases, msrpDomains: msrpDomains),
                senderDomains: senderDomains, receiptWait: receiptWait, rooms: rooms, roomNick: roomNick))
        }
    }

    private mutating func readSMTP(_ tree: ConfigTree) throws(ConfigError) {
        var r = try ConfigReader(tree, section: "smtp")
        guard let host = try r.string("host"), !host.isEmpty else {
            if !r.table.isEmpty, r.table.keys.contains(where: { $0 != "host" }) {
                if r.table.keys.contains("inbound") { throw ConfigError("smtp.inbound: needs the [smtp] relay (the mails it answers go out there)") }
                throw ConfigError("smtp.host: missing (the other [smtp] keys need a relay)")
            }
            return
        }
        let securityText = try r.string("security", default: "starttls")
        guard let security = SMTPRelay.Security(rawValue: securityText) else {
            throw ConfigError("smtp.security: \(securityText.debugDescription) is not starttls, tls or none")
        }
        let auth = try r.string("auth", default: "auto").lowercased()
        guard ["auto", "plain", "login"].contains(auth) else { throw ConfigError("smtp.auth: \(auth.debugDescription) is not auto, plain or login") }
        let username = try r.string("username").flatMap { $0.isEmpty ? nil : $0 }
        let password = try r.secret("password").flatMap { $0.isEmpty ? nil : $0 }
        guard (username == nil) == (password == nil) else { throw ConfigError("smtp: username and password go together") }
        if username != nil, security == .none { throw ConfigError("smtp: credentials are only sent over TLS: set security to starttls or tls") }
        let caFile = try r.string("ca_file").flatMap { $0.isEmpty ? nil : $0 }
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) { throw ConfigError("smtp.ca_file: cannot read \(caFile)") }
        let defaults = SMTPTimeouts()
        let replyTimeout = try r.duration("reply_timeout", default: defaults.command)
        let relay = SMTPRelay(
            name: host, host: host, port: try r.int("port", default: security == .implicitTLS ? 465 : 587, in: 1...65535), security: security,
            verifyCertificate: try r.bool("verify_certificate", default: true), caFile: caFile, username: username, password: password,
            authMechanism: auth == "auto" ? nil : auth.uppercased(), heloName: try r.string("helo", default: "msrpgw.invalid"),
            maxConnections: try r.int("max_connections", default: 4, in: 1...256),
            timeouts: SMTPTimeouts(
                connect: try r.duration("connect_timeout", default: defaults.connect), greeting: replyTimeout, command: replyTimeout,
                dataStart: min(replyTimeout, defaults.dataStart), dataEnd: try r.duration("data_timeout", default: defaults.dataEnd)))
        guard let from = try r.string("from"), MailAddress(address: from).isValid else {
            throw ConfigError("smtp.from: the address mails are sent from is required (like msrpgw@example.com)")
        }
        let replyTo = try r.string("reply_to").flatMap { $0.isEmpty ? nil : $0 }
        if let replyTo, !MailAddress(address: replyTo).isValid { throw ConfigError("smtp.reply_to: \(replyTo.debugDescription) is not an address") }
        var mail = MailSettings(from: from, replyTo: replyTo, subjectTemplate: try r.string("subject_template", default: "Message from {from}"))
        _ = r.value("inbound")  // its own table, read below
        try r.finish()
        smtpInbound = try SMTPInboundSettings.read(tree, retention: queue.retention)
        mail.replies = smtpInbound?.addressing
        smtp = (relay, mail)
    }

    private mutating func readSIP(_ tree: ConfigTree) throws(ConfigError) {
        var r = try ConfigReader(tree, section: "sip")
        guard !r.table.isEmpty else { return }
        var s = SIP()
        let enabled = try r.bool("enabled", default: true)
        s.listen = try r.string("listen", default: s.listen)
        s.port = try r.int("port", default: s.port, in: 0...65535)
        s.transports = (try r.strings("transports") ?? s.transports).map { $0.lowercased() }
        for t in s.transports where !["udp", "tcp", "tls"].contains(t) {
            throw ConfigError("sip.transports: \(t.debugDescription) is not udp, tcp or tls")
        }
        s.tlsPort = try r.int("tls_port", default: s.port == 0 ? 0 : s.port + 1, in: 0...65535)
        // The msrps certificate serves SIP too unless SIP has its own.
        s.tlsCertificate = try r.string("tls_certificate") ?? msrp.tlsCertificate
        s.tlsKey = try r.string("tls_key") ?? msrp.tlsKey
        if s.transports.contains("tls") {
            guard let cert = s.tlsCertificate, let key = s.tlsKey, !cert.isEmpty, !key.isEmpty else {
                throw ConfigError("sip.transports: tls needs sip.tls_certificate and sip.tls_key (or msrp's)")
            }
            for f in [cert, key] where !FileManager.default.isReadableFile(atPath: f) {
                throw ConfigError("sip: cannot read \(f)")
            }
        }
        guard !s.transports.isEmpty else { throw ConfigError("sip.transports: at least one") }
        s.domain = try r.string("domain").flatMap { $0.isEmpty ? nil : $0 }
        s.contactHost = try r.string("contact_host", default: s.listen == "0.0.0.0" ? msrp.advertisedHost : s.listen)
        s.t1 = try r.duration("t1", default: s.t1)
        guard s.t1 >= .milliseconds(10), s.t1 <= .seconds(10) else { throw ConfigError("sip.t1: between 10ms and 10s") }
        if let proxy = try r.string("outbound_proxy"), !proxy.isEmpty {
            guard let colon = proxy.lastIndex(of: ":"), let port = Int(proxy[proxy.index(after: colon)...]), (1...65535).contains(port),
                  colon != proxy.startIndex else {
                throw ConfigError("sip.outbound_proxy: \(proxy.debugDescription) is not host:port")
            }
            s.outboundProxy = (String(proxy[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
        }
        if let aor = try r.string("aor"), !aor.isEmpty {
            guard SIPAddress(aor)?.user != nil else {
                throw ConfigError("sip.aor: \(aor.debugDescription) is not a sip: URI with a user (sip:msrpgw@example.com)")
            }
            let username = try r.string("username", default: SIPAddress(aor)?.user ?? "")
            guard let password = try r.secret("password") else { throw ConfigError("sip.password: needed with sip.aor, to answer digest challenges") }
            s.account = SIPAccount(aor: aor, username: username, password: password)
        }
        if let registrar = try r.string("registrar"), !registrar.isEmpty {
            guard SIPAddress(registrar) != nil else { throw ConfigError("sip.registrar: \(registrar.debugDescription) is not a sip: URI") }
            guard s.account != nil else { throw ConfigError("sip.registrar: set sip.aor and sip.password, the address registered and its credentials") }
            s.registration = Registration(registrar: registrar, expires: try r.int("register_expires", default: 3600, in: 1...86400))
        }
        s.callOut = try r.bool("call_out", default: s.outboundProxy != nil)
        s.hangupAfter = try r.duration("hangup_after", default: s.hangupAfter)
        s.connectionLimits = try r.connectionLimits(default: s.connectionLimits)
        s.tcpIdleTimeout = try r.timeout("tcp_idle_timeout", default: s.tcpIdleTimeout, minimum: .seconds(1))
        s.requestRate = try r.rateLimit("max_requests_per_second", burst: "request_burst", default: s.requestRate)
        s.redialAfter = try r.duration("redial_after", default: s.redialAfter)
        try r.finish()
        if enabled { sip = s }
    }

    /// `[routes]`: address = target or [targets]; `webhook:NAME` names a configured webhook.
    /// `[rooms]`: address = { nicknames = true }. A room may also be a route (to IRC, say).
    private mutating func readRooms(_ tree: ConfigTree) throws(ConfigError) {
        var r = try ConfigReader(tree, section: "")
        guard let table = try r.table("rooms") else { return }
        for (address, value) in table {
            guard RouteTable.normalize(address) != nil else { throw ConfigError("rooms.\"\(address)\": not a URI") }
            guard case .table(let settings) = value else { throw ConfigError("rooms.\"\(address)\": expected { nicknames = true }") }
            var room = ChatRoom()
            for (k, v) in settings {
                guard k == "nicknames", case .bool(let b) = v else { throw ConfigError("rooms.\"\(address)\".\(k): unknown key (nicknames = true|false)") }
                room.nicknames = b
            }
            gateway.rooms[address] = room
        }
    }

    private mutating func readRoutes(_ tree: ConfigTree) throws(ConfigError) {
        var r = try ConfigReader(tree, section: "")
        guard let table = try r.table("routes") else { return }
        for (address, value) in table {
            var targets: [String]
            switch value {
            case .string(let s): targets = [s]
            case .array(let items):
                targets = []
                for i in items {
                    guard case .string(let s) = i else { throw ConfigError("routes.\"\(address)\": expected target URIs") }
                    targets.append(s)
                }
            default: throw ConfigError("routes.\"\(address)\": expected a target URI or a list of them")
            }
            routes[address] = try targets.map { t throws(ConfigError) in
                guard t.lowercased().hasPrefix("webhook:") else { return t }
                let name = String(t.dropFirst(8))
                guard let w = webhooks.first(where: { $0.name == name }) else {
                    throw ConfigError("routes.\"\(address)\": \(t) names no [webhooks.\(name)]")
                }
                return w.url
            }
        }
    }

    private func validate() throws(ConfigError) {
        if let d = gateway.defaultRoute, routes.keys.first(where: { RouteTable.normalize($0) == RouteTable.normalize(d) }) == nil {
            throw ConfigError("gateway.default_route: \(d) is not one of the [routes]")
        }
        for x in xmppServers {
            for room in x.rooms.keys where !gateway.rooms.keys.contains(where: { RouteTable.normalize($0) == RouteTable.normalize(room) }) {
                throw ConfigError("xmpp.\(x.name).rooms: \(room) is not one of the [rooms]")
            }
        }
        for (address, targets) in routes {
            for t in targets where t.lowercased().hasPrefix("xmpp:") {
                guard XMPPTarget(t) != nil else { throw ConfigError("routes.\"\(address)\": \(t) is not xmpp:user@domain") }
                guard !xmppServers.isEmpty else { throw ConfigError("routes.\"\(address)\": \(t) needs an XMPP server ([xmpp.NAME])") }
            }
        }
    }

    /// Whether `host` is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x) or
    /// `localhost` (RFC 6761): decided on the parsed address, so that a name like
    /// `127.attacker.example` is not loopback.
    /// Messages one MSRP session may send: far above a person's, below a flood.
    static let defaultSessionMessageRate = RateLimit(rate: 100, burst: 500)
    /// Messages one MSRP connection may carry: room for a relay's many sessions.
    static let defaultConnectionMessageRate = RateLimit(rate: 2000, burst: 4000)

    static func isLoopback(_ host: String) -> Bool {
        if host.lowercased() == "localhost" { return true }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        guard let address = try? SocketAddress(ipAddress: bare, port: 0) else { return false }
        return loopbackBlocks.contains { $0.contains(address) }
    }

    private static let loopbackBlocks = ["127.0.0.0/8", "::1/128", "::ffff:127.0.0.0/104"].compactMap { CIDR($0) }

}
