import Admission
import NIOCore
import Foundation
import TestPeers
import Testing

@testable import msrpgw

@Suite struct ConfigurationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func embeddedDefaultsMirrorTheExampleFile() throws {
        let file = try String(contentsOf: Self.root.appendingPathComponent("config/msrpgw.toml"), encoding: .utf8)
        #expect(EmbeddedDefaults.text == file, "the build embeds config/msrpgw.toml as it is")
        let c = try DaemonConfiguration.parse(EmbeddedDefaults.text, environment: [:])
        #expect(c.msrp.port == 2855)
        #expect(c.api.port == 8080)
        #expect(c.queue.retry.schedule.count == 10)
        #expect(c.queue.retry.maxAttempts == 11)
        #expect(c.gateway.acceptTypes.first == "message/cpim")
    }

    static let full = """
        [gateway]
        identity = "sip:gw@gw.example"
        default_route = "sip:ops@gw.example"
        [msrp]
        port = 2856
        [queue]
        retry_schedule = ["1s", "250ms", "2m"]
        max_age = "1h"
        [api]
        listen = "0.0.0.0"
        token = "secret-token"
        [routes]
        "sip:ops@gw.example" = ["webhook:ops", "sip:oncall@example.com"]
        "sip:alerts@gw.example" = "https://hooks.example.com/ops"
        [webhooks.ops]
        url = "https://hooks.example.com/ops"
        secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
        headers = { "X-Api-Key" = "k" }
        """

    @Test func readsEverySection() throws {
        let c = try DaemonConfiguration.parse(Self.full, environment: [:])
        #expect(c.gateway.identity == "sip:gw@gw.example")
        #expect(c.msrp.port == 2856)
        #expect(c.queue.retry.schedule == [.seconds(1), .milliseconds(250), .seconds(120)])
        #expect(c.queue.retry.maxAttempts == 4)
        #expect(c.queue.retry.maxAge == .seconds(3600))
        #expect(c.routes["sip:ops@gw.example"] == ["https://hooks.example.com/ops", "sip:oncall@example.com"])
        #expect(c.routes["sip:alerts@gw.example"] == ["https://hooks.example.com/ops"])
        #expect(c.webhooks.first?.headers == ["X-Api-Key": "k"])
    }

    @Test func readsAPostgreSQLQueue() throws {
        let c = try DaemonConfiguration.parse("""
            [gateway]
            node = 3
            [queue]
            backend = "postgresql"
            url = "postgresql://msrpgw@db.example:6432/queue?sslmode=verify-full"
            password_env = "MSRPGW_QUEUE_PASSWORD"
            pool_size = 16
            heartbeat = "1s"
            node_timeout = "5s"
            """, environment: [:])
        #expect(c.queue.backend == .postgresql)
        #expect(c.queue.url == "postgresql://msrpgw@db.example:6432/queue?sslmode=verify-full")
        #expect(c.queue.passwordEnv == "MSRPGW_QUEUE_PASSWORD")
        #expect(c.queue.poolSize == 16 && c.queue.heartbeat == .seconds(1) && c.queue.nodeTimeout == .seconds(5))
        #expect(c.gateway.clustered && c.gateway.node == 3)
        #expect(!(try DaemonConfiguration.parse("", environment: [:])).gateway.clustered)
    }

    @Test func readsTheDispatchersEndpointSettings() throws {
        let c = try DaemonConfiguration.parse("""
            [dispatch]
            endpoint_concurrency = 8
            breaker_failures = 3
            breaker_backoff = "500ms"
            breaker_max_backoff = "30s"
            webhook_connect_timeout = "750ms"
            """, environment: [:])
        let d = c.gateway.defaultDispatch
        #expect(d.endpointConcurrency == 8)
        #expect(d.breakerFailures == 3)
        #expect(d.breakerBackoff == .milliseconds(500))
        #expect(d.breakerMaximumBackoff == .seconds(30))
        #expect(c.webhookConnectTimeout == .milliseconds(750))
        // 0 (the default): the adapter's own figure.
        #expect(try DaemonConfiguration.parse("[dispatch]\nendpoint_concurrency = 0", environment: [:]).gateway.defaultDispatch.endpointConcurrency == nil)
    }

    @Test func readsListenerLimits() throws {
        let c = try DaemonConfiguration.parse("""
            [msrp]
            max_connections = 500
            max_connections_per_source = 900
            unbound_timeout = "5s"
            [api]
            max_connections_per_source = 4
            header_timeout = "2s"
            idle_timeout = "20s"
            [sip]
            max_connections = 100
            tcp_idle_timeout = "60s"
            """, environment: [:])
        // A source's share is never more than the listener's.
        #expect(c.msrp.connectionLimits == ConnectionLimits(perListener: 500, perSource: 500))
        #expect(c.msrp.unboundTimeout == .seconds(5))
        #expect(c.api.connectionLimits == ConnectionLimits(perListener: 1024, perSource: 4))
        #expect(c.api.headerTimeout == .seconds(2) && c.api.idleTimeout == .seconds(20))
        #expect(c.sip?.connectionLimits.perListener == 100 && c.sip?.tcpIdleTimeout == .seconds(60))
        // Rates: the defaults, a value, and 0 for none.
        #expect(c.gateway.sessionMessageRate == RateLimit(rate: 100, burst: 500))
        #expect(c.api.requestRate == RateLimit(rate: 500, burst: 1000))
        let r = try DaemonConfiguration.parse("[msrp]\nmax_messages_per_second = 0\n[api]\nmax_requests_per_second = 20\nrequest_burst = 5", environment: [:])
        #expect(r.gateway.sessionMessageRate == nil)
        #expect(r.api.requestRate == RateLimit(rate: 20, burst: 5))
    }

    @Test func theConnectPolicyDeniesLoopbackAndLinkLocalByDefault() throws {
        let c = try DaemonConfiguration.parse("", environment: [:])
        let policy = ConnectPolicy(allow: c.msrp.connectAllow, deny: c.msrp.connectDeny)
        for denied in ["127.0.0.1", "127.9.9.9", "::1", "169.254.169.254", "fe80::1", "0.0.0.0", "::ffff:127.0.0.1", "224.0.0.1"] {
            #expect(!policy.permits(try SocketAddress(ipAddress: denied, port: 80)), "\(denied)")
        }
        for allowed in ["10.1.2.3", "192.168.1.10", "192.0.2.7", "2001:db8::1"] {
            #expect(policy.permits(try SocketAddress(ipAddress: allowed, port: 80)), "\(allowed)")
        }
        let opened = try DaemonConfiguration.parse("[msrp]\nconnect_allow = [\"127.0.0.0/8\"]\nconnect_deny = [\"10.0.0.0/8\"]", environment: [:])
        let p = ConnectPolicy(allow: opened.msrp.connectAllow, deny: opened.msrp.connectDeny)
        #expect(p.permits(try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
        #expect(!p.permits(try SocketAddress(ipAddress: "10.0.0.1", port: 1)))
        #expect(p.permits(try SocketAddress(ipAddress: "169.254.169.254", port: 1)), "a deny list given replaces the default")
    }

    @Test func loopbackIsDecidedOnTheParsedAddress() {
        for host in ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "::ffff:127.0.0.1", "localhost"] {
            #expect(DaemonConfiguration.isLoopback(host), "\(host)")
        }
        for host in ["127.attacker.example", "0.0.0.0", "::", "10.0.0.1", "::ffff:10.0.0.1", "127", "example.com", ""] {
            #expect(!DaemonConfiguration.isLoopback(host), "\(host)")
        }
    }

    @Test func environmentOverridesAnyKey() throws {
        let env = [
            "MSRPGW_MSRP_PORT": "3000", "MSRPGW_API_TOKEN": "from-env", "MSRPGW_QUEUE_RETRY_SCHEDULE": #"["5s"]"#,
            "MSRPGW_WEBHOOKS_OPS_URL": "https://other.example.com/hook", "MSRPGW_GATEWAY_IDENTITY": "sip:env@gw.example",
            "MSRPGW_ROUTES": #"{ "sip:ops@gw.example" = ["webhook:ops"] }"#,
            "MSRPGW_WEBHOOKS_NEW_URL": "https://new.example.com/", "MSRPGW_WEBHOOKS_NEW_SECRETS": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ]
        let c = try DaemonConfiguration.parse(Self.full, environment: env)
        #expect(c.msrp.port == 3000)
        #expect(c.api.token == "from-env")
        #expect(c.queue.retry.schedule == [.seconds(5)])
        #expect(c.gateway.identity == "sip:env@gw.example")
        #expect(c.routes == ["sip:ops@gw.example": ["https://other.example.com/hook"]])
        #expect(c.webhooks.map(\.name).sorted() == ["new", "ops"])
        #expect(c.appliedEnvironment.count == env.count)
    }

    /// Each broken configuration and the words its error must contain.
    static let broken: [(String, String, String)] = [
        ("not TOML", "[gateway\nidentity = 1", "TOML"),
        // toml++ aborted the process on these (found by MutationFuzzTests).
        ("a non-ASCII table name", "[\u{E9}]\nport = 1", "TOML: a table header must begin with a key (line 1, column 1)"),
        ("a non-ASCII key", "[msrp]\npört = 1", "TOML: a non-ASCII character outside a string (line 2, column 2)"),
        ("a replacement character", "[m\u{FFFD}srp]", "TOML: a non-ASCII character outside a string (line 1, column 3)"),
        ("a control character in a key", "[msrp]\np\u{1}ort = 1", "TOML: a control character outside a string"),
        ("a table header without a key", "[~msrp]", "TOML: a table header must begin with a key (line 1, column 1)"),
        ("a table header with a comment", "[msrp]\nport = 1\n  [ #a]", "TOML: a table header must begin with a key (line 3, column 3)"),
        ("an array of tables without a key", "[[~a]]", "TOML: a table header must begin with a key"),
        ("an array closed by a brace", "[gateway]\naccept_types = [\"message/cpim\",}", "TOML: `}` closes `[` (line 2, column 32)"),
        ("an inline table closed by a bracket", "[rooms]\n\"sip:r@gw\" = { nicknames = true ]", "TOML: `]` closes `{`"),
        ("unknown section", "[gatway]\nnode = 1", "unknown section or key gatway"),
        ("unknown key", "[msrp]\nprot = 1", "unknown key msrp.prot"),
        ("wrong type", "[msrp]\nport = \"x\"", "msrp.port: expected an integer"),
        ("port out of range", "[msrp]\nport = 70000", "msrp.port: 70000 is outside"),
        ("bad duration", "[queue]\nmax_age = \"soon\"", "queue.max_age"),
        ("bad retry schedule", "[queue]\nretry_schedule = [\"1s\", \"x\"]", "queue.retry_schedule"),
        ("bad synchronous", "[queue]\nsynchronous = \"sometimes\"", "queue.synchronous"),
        ("unknown queue backend", "[queue]\nbackend = \"mysql\"", "queue.backend: \"mysql\" is not sqlite or postgresql"),
        ("postgresql without a url", "[queue]\nbackend = \"postgresql\"", "queue.url: backend postgresql needs a postgresql:// URL"),
        ("a queue url with a password", "[queue]\nbackend = \"postgresql\"\nurl = \"postgresql://gw:hunter2@db/q\"", "queue.url: queue url carries a password"),
        ("a queue url of another kind", "[queue]\nbackend = \"postgresql\"\nurl = \"redis://db/0\"", "is not a postgresql:// URL"),
        ("a url for sqlite", "[queue]\nurl = \"postgresql://gw@db/q\"", "set for backend sqlite"),
        ("two password sources", "[queue]\nbackend = \"postgresql\"\nurl = \"postgresql://gw@db/q\"\npassword_file = \"/p\"\npassword_env = \"P\"", "one source for the password"),
        ("a node time-out under three heartbeats", "[queue]\nbackend = \"postgresql\"\nurl = \"postgresql://gw@db/q\"\nheartbeat = \"2s\"\nnode_timeout = \"5s\"", "queue.node_timeout"),
        ("a pool of none", "[queue]\nbackend = \"postgresql\"\nurl = \"postgresql://gw@db/q\"\npool_size = 0", "queue.pool_size"),
        ("cpim not first", "[gateway]\naccept_types = [\"text/plain\", \"message/cpim\"]", "message/cpim must come first"),
        ("bad log level", "[gateway]\nlog_level = \"loud\"", "gateway.log_level"),
        ("node out of range", "[gateway]\nnode = 5000", "gateway.node"),
        ("token needed off loopback", "[api]\nlisten = \"0.0.0.0\"", "api.token: required"),
        ("a name that looks like loopback", "[api]\nlisten = \"127.attacker.example\"", "api.token: required"),
        ("a mapped address off loopback", "[api]\nlisten = \"::ffff:10.0.0.1\"", "api.token: required"),
        ("max connections zero", "[msrp]\nmax_connections = 0", "msrp.max_connections: 0 is outside"),
        ("per-source connections a word", "[sip]\nmax_connections_per_source = \"many\"", "sip.max_connections_per_source: expected an integer"),
        ("unbound time-out too short", "[msrp]\nunbound_timeout = \"10ms\"", "msrp.unbound_timeout: at least 100ms"),
        ("connect allow not an address block", "[msrp]\nconnect_allow = [\"10.0.0.0/33\"]", "msrp.connect_allow: \"10.0.0.0/33\" is not an address block"),
        ("connect deny a name", "[msrp]\nconnect_deny = [\"localhost\"]", "msrp.connect_deny"),
        ("message rate negative", "[msrp]\nmax_messages_per_second = -1", "msrp.max_messages_per_second: -1 is outside"),
        ("request burst a word", "[api]\nrequest_burst = \"lots\"", "api.request_burst: expected an integer"),
        ("header time-out a word", "[api]\nheader_timeout = \"soon\"", "api.header_timeout"),
        ("sip tcp idle time-out too short", "[sip]\ntcp_idle_timeout = \"500ms\"", "sip.tcp_idle_timeout: at least 1000ms"),
        ("webhook without url", "[webhooks.a]\nsecrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]", "webhooks.a.url: missing"),
        ("webhook without secret", "[webhooks.a]\nurl = \"https://x.example/\"", "no signing secret"),
        ("webhook bad secret", "[webhooks.a]\nurl = \"https://x.example/\"\nsecrets = [\"nope\"]", "whsec_"),
        ("webhook ca file missing", "[webhooks.a]\nurl = \"https://x.example/\"\nsecrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]\nca_file = \"/nonexistent/ca.pem\"", "webhooks.a.ca_file: cannot read"),
        ("webhook bad url", "[webhooks.a]\nurl = \"x\"\nsecrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]", "not an http(s) URL"),
        ("route to unknown webhook", "[routes]\n\"sip:a@b\" = [\"webhook:nope\"]", "names no [webhooks.nope]"),
        ("route with a number", "[routes]\n\"sip:a@b\" = 3", "expected a target URI"),
        ("default route not configured", "[gateway]\ndefault_route = \"sip:x@y\"", "gateway.default_route"),
        ("tls without key", "[msrp]\ntls_port = 2856\ntls_certificate = \"/etc/hostname\"", "tls_certificate and tls_key"),
        ("lease too short", "[dispatch]\nlease_duration = \"1s\"", "dispatch.lease_duration"),
        ("endpoint concurrency negative", "[dispatch]\nendpoint_concurrency = -1", "dispatch.endpoint_concurrency: -1 is outside"),
        ("breaker failures zero", "[dispatch]\nbreaker_failures = 0", "dispatch.breaker_failures: 0 is outside"),
        ("breaker back-off a word", "[dispatch]\nbreaker_backoff = \"later\"", "dispatch.breaker_backoff"),
        ("breaker back-off too short", "[dispatch]\nbreaker_backoff = \"1ms\"", "dispatch.breaker_backoff: at least 10ms"),
        ("breaker maximum below back-off", "[dispatch]\nbreaker_backoff = \"10s\"\nbreaker_max_backoff = \"5s\"", "breaker_max_backoff at least breaker_backoff"),
        ("webhook connect time-out zero", "[dispatch]\nwebhook_connect_timeout = \"0s\"", "dispatch.webhook_connect_timeout"),
        ("room setting unknown", "[rooms]\n\"sip:r@gw\" = { nicks = true }", "unknown key (nicknames"),
        ("room not a table", "[rooms]\n\"sip:r@gw\" = true", "expected { nicknames = true }"),
        ("irc without nick", "[irc.x]\nhost = \"irc.example\"", "irc.x.nick"),
        ("irc sasl plain in clear", "[irc.x]\nhost = \"h\"\nnick = \"n\"\ntls = false\nsasl = \"plain\"\nsasl_user = \"u\"\nsasl_password = \"p\"", "only over TLS"),
        ("msrp relay without credentials", "[msrp]\nrelay = \"msrps://relay.example:2855;tcp\"", "relay_username and msrp.relay_password"),
        ("msrp relay not a relay URI", "[msrp]\nrelay = \"msrps://relay.example:2855/abc;tcp\"\nrelay_username = \"u\"\nrelay_password = \"p\"", "not a relay URI"),
        ("msrp relay garbage", "[msrp]\nrelay = \"relay.example\"\nrelay_username = \"u\"\nrelay_password = \"p\"", "not a relay URI"),
        ("plain websocket off loopback", "[msrp]\nlisten = \"0.0.0.0\"\nws_port = 8080", "plain WebSocket only on loopback"),
        ("wss without certificate", "[msrp]\nwss_port = 8443", "tls_certificate and tls_key"),
        ("websocket port a word", "[msrp]\nws_port = \"some\"", "msrp.ws_port: expected a port (1-65535), 0 for off or \"any\""),
        ("websocket port out of range", "[msrp]\nwss_port = 70000", "msrp.wss_port: 70000 is outside 0...65535"),
        ("relay without users", "[relay]\nenabled = true", "relay.users"),
        ("msrp event loops too many", "[msrp]\nevent_loops = 1000", "msrp.event_loops"),
        ("relay token too short", "[relay]\nenabled = true\ntokens = { \"short\" = \"carol\" }", "16 characters or more"),
        ("relay token without a name", "[relay]\nenabled = true\ntokens = { \"0123456789abcdefghij\" = 3 }", "relay.tokens"),
        ("relay uri with a session", "[relay]\nenabled = true\nuri = \"msrp://h:1/x;tcp\"\nusers = { a = \"b\" }", "not a relay URI"),
        ("relay expires upside down", "[relay]\nenabled = true\nusers = { a = \"b\" }\nmin_expires = 600\nmax_expires = 60", "min_expires is above"),
        ("msrp ca file missing", "[msrp]\nca_file = \"/nonexistent/ca.pem\"", "msrp.ca_file: cannot read"),
        ("irc puppet suffix with a space", "[irc.x]\nhost = \"h\"\nnick = \"n\"\npuppets = 5\npuppet_suffix = \" m\"", "irc.x.puppet_suffix"),
        ("irc too many puppets", "[irc.x]\nhost = \"h\"\nnick = \"n\"\npuppets = 5000", "irc.x.puppets"),
        ("irc announce unknown", "[irc.x]\nhost = \"h\"\nnick = \"n\"\nannounce = [\"mode\"]", "is not one of"),
        ("irc bridge of a channel not joined", "[irc.x]\nhost = \"h\"\nnick = \"n\"\nbridges = { \"#a\" = \"sip:r@gw\" }", "not in irc.x.channels"),
        ("xmpp without host", "[xmpp.x]\ndomain = \"msrp.example.org\"\nsecret = \"s\"", "xmpp.x.host: missing"),
        ("xmpp domain with a user", "[xmpp.x]\nhost = \"h\"\ndomain = \"a@msrp.example.org\"\nsecret = \"s\"", "xmpp.x.domain"),
        ("xmpp without secret", "[xmpp.x]\nhost = \"h\"\ndomain = \"msrp.example.org\"", "xmpp.x.secret: missing"),
        ("xmpp alias to no peer", "[xmpp.x]\nhost = \"h\"\ndomain = \"msrp.example.org\"\nsecret = \"s\"\naliases = { alice = \"nope\" }", "xmpp.x.aliases.alice"),
        ("xmpp alias not a local part", "[xmpp.x]\nhost = \"h\"\ndomain = \"msrp.example.org\"\nsecret = \"s\"\naliases = { \"a b\" = \"sip:a@b\" }", "xmpp.x.aliases.a b"),
        ("xmpp stanza limit tiny", "[xmpp.x]\nhost = \"h\"\ndomain = \"msrp.example.org\"\nsecret = \"s\"\nmax_stanza_bytes = 10", "xmpp.x.max_stanza_bytes"),
        ("xmpp key unknown", "[xmpp.x]\nhost = \"h\"\ndomain = \"msrp.example.org\"\nsecret = \"s\"\npassword = \"p\"", "xmpp.x.password"),
        ("xmpp room not a room", "[xmpp.x]\nhost = \"h\"\ndomain = \"msrp.example.org\"\nsecret = \"s\"\nrooms = { \"sip:chat@gw\" = \"chat@conference.example.org\" }", "is not one of the [rooms]"),
        ("xmpp room to no MUC", "[xmpp.x]\nhost = \"h\"\ndomain = \"msrp.example.org\"\nsecret = \"s\"\nrooms = { \"sip:chat@gw\" = \"conference.example.org\" }", "xmpp.x.rooms.sip:chat@gw"),
        ("xmpp route to no server", "[routes]\n\"sip:a@b\" = [\"xmpp:bob@example.org\"]", "xmpp:bob@example.org"),
        ("sip registrar without aor", "[sip]\nregistrar = \"sip:example.com\"", "sip.aor and sip.password"),
        ("sip tls without certificate", "[sip]\ntransports = [\"tls\"]", "tls needs sip.tls_certificate"),
        ("smtp inbound without a relay", "[smtp.inbound]\ndomain = \"reply.example.com\"", "smtp.inbound: needs the [smtp] relay"),
        ("smtp inbound without a domain", "[smtp]\nhost = \"h\"\nfrom = \"gw@example.com\"\n[smtp.inbound]\nsecrets = [\"0123456789abcdef0123\"]", "smtp.inbound.domain: the reply domain is required"),
        ("smtp inbound domain with a user", "[smtp]\nhost = \"h\"\nfrom = \"gw@example.com\"\n[smtp.inbound]\ndomain = \"a@b.example\"\nsecrets = [\"0123456789abcdef0123\"]", "smtp.inbound.domain"),
        ("smtp inbound without secrets", "[smtp]\nhost = \"h\"\nfrom = \"gw@example.com\"\n[smtp.inbound]\ndomain = \"reply.example.com\"", "smtp.inbound.secrets: at least one secret"),
        ("smtp inbound short secret", "[smtp]\nhost = \"h\"\nfrom = \"gw@example.com\"\n[smtp.inbound]\ndomain = \"reply.example.com\"\nsecrets = [\"short\"]", "at least 16 bytes"),
        ("smtp inbound tokens outlive retention", "[queue]\nretention = \"1d\"\n[smtp]\nhost = \"h\"\nfrom = \"gw@example.com\"\n[smtp.inbound]\ndomain = \"reply.example.com\"\nsecrets = [\"0123456789abcdef0123\"]\ntoken_ttl = \"7d\"", "outlives queue.retention"),
        ("smtp inbound half a certificate", "[smtp]\nhost = \"h\"\nfrom = \"gw@example.com\"\n[smtp.inbound]\ndomain = \"reply.example.com\"\nsecrets = [\"0123456789abcdef0123\"]\ntls_certificate = \"/c.pem\"", "tls_certificate and tls_key go together"),
        ("smtp inbound tls required without one", "[smtp]\nhost = \"h\"\nfrom = \"gw@example.com\"\n[smtp.inbound]\ndomain = \"reply.example.com\"\nsecrets = [\"0123456789abcdef0123\"]\nrequire_tls = true", "smtp.inbound.require_tls"),
        ("smtp inbound key unknown", "[smtp]\nhost = \"h\"\nfrom = \"gw@example.com\"\n[smtp.inbound]\ndomain = \"reply.example.com\"\nsecrets = [\"0123456789abcdef0123\"]\nrelay = true", "smtp.inbound.relay"),
        ("smtp inbound tiny size", "[smtp]\nhost = \"h\"\nfrom = \"gw@example.com\"\n[smtp.inbound]\ndomain = \"reply.example.com\"\nsecrets = [\"0123456789abcdef0123\"]\nmax_message_size = 10", "smtp.inbound.max_message_size"),
        ("a secret twice", "[api]\ntoken = \"t\"\ntoken_file = \"/etc/hostname\"", "api.token and api.token_file: give one of them"),
        ("a secret file missing", "[api]\ntoken_file = \"/nonexistent/token\"", "api.token_file: cannot read /nonexistent/token"),
        ("a secret file too large", "[api]\ntoken_file = \"/proc/self/exe\"", "api.token_file"),
    ]

    /// Secrets from files: `*_file` keys, relative ones in systemd's credentials directory.
    @Test func secretsFromFiles() throws {
        let directory = try Scratch.directory("credentials")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "api-token-from-a-file\n".write(toFile: directory + "/api-token", atomically: true, encoding: .utf8)
        try "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\nwhsec_aGVsbG8gd29ybGQgb2YgbXNycGd3IHNlY3JldHM=\n".write(
            toFile: directory + "/hooks", atomically: true, encoding: .utf8)
        setenv("CREDENTIALS_DIRECTORY", directory, 1)
        defer { unsetenv("CREDENTIALS_DIRECTORY") }
        let c = try DaemonConfiguration.parse("""
            [api]
            token_file = "api-token"
            [webhooks.ops]
            url = "https://hooks.example.com/"
            secrets_file = "\(directory)/hooks"
            """, environment: [:])
        #expect(c.api.token == "api-token-from-a-file")
        #expect(c.webhooks.first?.secrets.count == 2)
    }

    @Test(arguments: broken.indices)
    func brokenConfigurationsSayWhatIsWrong(_ i: Int) {
        let (name, text, words) = Self.broken[i]
        do {
            _ = try DaemonConfiguration.parse(text, environment: [:])
            Issue.record("\(name): accepted")
        } catch {
            #expect(error.description.contains(words), "\(name): \(error.description)")
        }
    }

    @Test func smtpInboundSignsRepliesAndBounces() throws {
        let c = try DaemonConfiguration.parse("""
            [smtp]
            host = "h"
            from = "gw@example.com"
            [smtp.inbound]
            domain = "Reply.Example.com"
            secrets = ["0123456789abcdef0123", "an older secret, 16 bytes"]
            token_ttl = "2d"
            port = 0
            """, environment: [:])
        let inbound = try #require(c.smtpInbound)
        #expect(inbound.addressing.domain == "reply.example.com")
        #expect(inbound.addressing.lifetime == 2 * 86400)
        #expect(inbound.hostname == "reply.example.com")
        #expect(c.smtp?.mail.replies == inbound.addressing, "outgoing mail carries the same addresses")
        #expect(try DaemonConfiguration.parse("[smtp]\nhost = \"h\"\nfrom = \"gw@example.com\"", environment: [:]).smtpInbound == nil)
    }

    @Test func listenerPorts() throws {
        let off = try DaemonConfiguration.parse("[msrp]\nws_port = 0\n", environment: [:])
        #expect(off.msrp.wsPort == nil && off.msrp.wssPort == nil)
        let fixed = try DaemonConfiguration.parse("[msrp]\nws_port = 8080\n", environment: [:])
        #expect(fixed.msrp.wsPort == 8080)
        // "any": bound on a port the system picks (reported by serve --ports-file).
        let any = try DaemonConfiguration.parse("[msrp]\nws_port = \"any\"\n", environment: [:])
        #expect(any.msrp.wsPort == 0)
    }

    @Test func durations() {
        #expect(DurationText.parse("250ms") == .milliseconds(250))
        #expect(DurationText.parse("5m") == .seconds(300))
        #expect(DurationText.parse("1.5s") == .milliseconds(1500))
        #expect(DurationText.parse("3d") == .seconds(259_200))
        #expect(DurationText.parse("42") == .seconds(42))
        for bad in ["", "s", "-1s", "1x", "1e99s", "nan"] { #expect(DurationText.parse(bad) == nil, "\(bad)") }
    }
}

@Suite struct AlertmanagerTests {
    static let firing = #"""
        {"version":"4","groupKey":"{}:{alertname=\"HighLatency\"}","status":"firing","receiver":"msrpgw",
         "commonLabels":{"alertname":"HighLatency","severity":"page"},
         "alerts":[{"status":"firing","labels":{"alertname":"HighLatency","instance":"a"},"annotations":{"summary":"p99 over 2s on a"},"startsAt":"2026-11-24T10:00:00Z","fingerprint":"f1"},
                   {"status":"firing","labels":{"alertname":"HighLatency","instance":"b"},"annotations":{},"startsAt":"2026-11-24T10:00:05Z","fingerprint":"f2"}]}
        """#

    @Test func becomesAChatLine() throws {
        let n = try JSONDecoder().decode(AlertmanagerNotification.self, from: Data(Self.firing.utf8))
        try n.validate()
        #expect(n.text == "[FIRING:2] HighLatency (severity=page)\n- p99 over 2s on a\n- alertname=HighLatency instance=b")
        let again = try JSONDecoder().decode(AlertmanagerNotification.self, from: Data(Self.firing.utf8))
        #expect(n.idempotencyKey == again.idempotencyKey)
        let resolved = try JSONDecoder().decode(AlertmanagerNotification.self, from: Data(Self.firing.replacingOccurrences(of: #""status":"firing","receiver""#, with: #""status":"resolved","receiver""#).utf8))
        #expect(resolved.idempotencyKey != n.idempotencyKey)
    }

    @Test func wrongVersionOrNoAlertsAreRefused() throws {
        let v3 = try JSONDecoder().decode(AlertmanagerNotification.self, from: Data(Self.firing.replacingOccurrences(of: #""version":"4""#, with: #""version":"3""#).utf8))
        #expect(throws: APIError.self) { try v3.validate() }
        let empty = try JSONDecoder().decode(AlertmanagerNotification.self, from: Data(#"{"version":"4","groupKey":"g","status":"firing","alerts":[]}"#.utf8))
        #expect(throws: APIError.self) { try empty.validate() }
    }
}
