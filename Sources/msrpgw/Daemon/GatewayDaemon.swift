import Admission
import AsyncHTTPClient
import Events
import Foundation
import Gateway
import Hummingbird
import HummingbirdCore
import IRCAdapter
import IRCClient
import XMPPAdapter
import XMPPClient
import Logging
import MSRP
import MSRPTransport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Prometheus
import Queue
import SIP
import SIPAdapter
import SMTPAdapter
import SMTPInbound
import SMTPServer
import ServiceLifecycle
import WebhookAdapter

/// Builds the gateway from a configuration and runs it until SIGTERM/SIGINT:
/// the queue, the MSRP listeners, the adapters, the dispatcher, the HTTP API and
/// the maintenance loop, as services of one group that shuts down in order
/// (API first, then the gateway drains its deliveries and closes its sessions).
struct GatewayDaemon {
    /// Where things listen, once they do (the ports bound: a configured port 0
    /// is a free one picked by the system). `serve --ports-file` writes it as JSON.
    struct Ready: Sendable, Encodable {
        var msrpPort: Int
        var msrpsPort: Int?
        var apiPort: Int
        var wsPort: Int?
        var wssPort: Int?
        var sipPort: Int?
        var sipTLSPort: Int?
        var smtpPort: Int?

        enum CodingKeys: String, CodingKey {
            case msrpPort = "msrp", msrpsPort = "msrps", apiPort = "api", wsPort = "ws", wssPort = "wss", sipPort = "sip", sipTLSPort = "sip_tls"
            case smtpPort = "smtp"
        }
    }

    let configuration: DaemonConfiguration
    let registry: PrometheusCollectorRegistry
    let logger: Logger
    /// Extra services run in the same group (the demo's sink and client).
    var extraServices: [any Service] = []
    /// Where SIGHUP reads the configuration again: a file, or `.some(nil)` for
    /// the embedded defaults; nil (the demo's own configuration): no reload.
    var reloadFrom: String??

    func run(onReady: @escaping @Sendable (Ready) async -> Void = { _ in }) async throws {
        let c = configuration
        let notifier = SystemdNotifier()
        try FileManager.default.createDirectory(atPath: c.dataDirectory + "/spool", withIntermediateDirectories: true)
        let queue = try await QueueOpening.open(
            c.queue, node: c.gateway.node, ownerPrefix: c.gateway.leaseOwnerPrefix, dataDirectory: c.dataDirectory, logger: logger)
        let group = MultiThreadedEventLoopGroup.singleton

        // Before any listener: strangers' connections never use the last descriptors.
        let (budget, descriptorLimit) = DescriptorBudget.forThisProcess()
        logger.info("descriptor limit: listeners hold at most part of it, together", metadata: [
            "limit": "\(descriptorLimit)", "connections": "\(budget.capacity)"])
        if budget.capacity < 64 {
            logger.warning("the descriptor limit leaves room for few connections: raise it (LimitNOFILE, ulimit -n)", metadata: [
                "limit": "\(descriptorLimit)", "connections": "\(budget.capacity)"])
        }
        var tlsServer: TLSConfiguration?
        if let cert = c.msrp.tlsCertificate, let key = c.msrp.tlsKey {
            tlsServer = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        }
        var tlsClient = TLSConfiguration.makeClientConfiguration()
        if let ca = c.msrp.caFile { tlsClient.trustRoots = .file(ca) }
        let transport = MSRPTransportConfiguration(
            advertisedHost: c.msrp.advertisedHost,
            parserLimits: MSRPParserLimits(maxMessageBytes: c.gateway.maxMessageBytes),
            assemblerLimits: ChunkAssemblerLimits(maxMessageBytes: c.gateway.maxMessageBytes, spoolDirectory: c.dataDirectory + "/spool"),
            chunkSize: c.msrp.chunkSize, transactionTimeout: .nanoseconds(c.msrp.transactionTimeout.nanoseconds),
            idleTimeout: .nanoseconds(c.msrp.idleTimeout.nanoseconds), bindTimeout: .nanoseconds(c.msrp.unboundTimeout.nanoseconds),
            connectionLimits: c.msrp.connectionLimits, descriptorBudget: budget,
            connectPolicy: ConnectPolicy(allow: c.msrp.connectAllow, deny: c.msrp.connectDeny,
                                         exempt: Set(c.msrp.relay.flatMap { try? MSRPURI($0.uri).host.address }.map { [$0] } ?? [])),
            tlsServer: tlsServer, tlsClient: tlsClient)
        // MSRP on threads of its own (one by default, see msrp.event_loops).
        let msrpGroup: any EventLoopGroup = c.msrp.eventLoops == 0 ? group : MultiThreadedEventLoopGroup(numberOfThreads: c.msrp.eventLoops)
        defer { if c.msrp.eventLoops != 0 { msrpGroup.shutdownGracefully { _ in } } }
        let endpoint = try MSRPEndpoint(configuration: transport, group: msrpGroup, logger: logger)
        let msrpPort = try await endpoint.listen(host: c.msrp.listen, port: c.msrp.port)
        let msrpsPort: Int? = if let p = c.msrp.tlsPort { try await endpoint.listen(host: c.msrp.listen, port: p, secure: true) } else { nil }
        var ws = MSRPWebSocketSettings(allowedOrigins: c.msrp.wsOrigins)
        let relayTokens = NIOLockedValueBox(c.relayRole?.tokens ?? [:])
        if c.relayRole != nil { ws.tokenCheck = Self.webSocketTokenCheck(relayTokens, apiToken: c.api.token) }
        let wsPort: Int? = if let p = c.msrp.wsPort { try await endpoint.listenWebSocket(host: c.msrp.listen, port: p, secure: false, settings: ws) } else { nil }
        let wssPort: Int? = if let p = c.msrp.wssPort { try await endpoint.listenWebSocket(host: c.msrp.listen, port: p, secure: true, settings: ws) } else { nil }
        if (c.msrp.wsPort != nil || c.msrp.wssPort != nil), c.msrp.wsOrigins.isEmpty {
            logger.warning("MSRP WebSocket open to pages from any origin (set msrp.ws_origins)")
        }
        if let role = c.relayRole {
            // By default the relay is what peers reach us at: msrps when we listen for it.
            let uri = try role.uri.map { try MSRPURI($0) } ?? endpoint.listenerURI(secure: msrpsPort != nil)
            endpoint.relayRole = MSRPRelayRole(settings: .init(uri: uri, realm: role.realm, users: role.users, expires: role.expires), logger: logger)
            logger.info("acting as an MSRP relay", metadata: ["uri": "\(uri)", "users": "\(role.users.count)"])
        }
        let relay = try c.msrp.relay.map { r in
            MSRPRelayClient(endpoint: endpoint, relay: try MSRPURI(r.uri), username: r.username, password: r.password, expires: r.expires, logger: logger)
        }
        if let relay {
            // Sessions answered before the first grant would advertise a path without
            // the relay: try now, and keep trying in the background if it fails.
            do {
                try await relay.authenticate()
            } catch {
                logger.error("MSRP relay AUTH failed at start: sessions go direct until it succeeds", metadata: ["relay": "\(relay.relay)", "error": "\(error)"])
            }
        }

        let http = WebhookHTTPClient(group: group, connectTimeout: c.webhookConnectTimeout, connectionsPerOrigin: max(1, c.webhookConcurrency / 4))
        for w in c.webhooks where w.isCleartextOffHost {
            logger.warning("webhook uses plain http to a remote host: payloads and signatures travel in clear", metadata: ["webhook": "\(w.name)"])
        }
        let webhook = try WebhookAdapter(endpoints: c.webhooks, client: http, concurrency: c.webhookConcurrency, logger: logger)
        var adapters: [any Adapter] = [webhook]
        var smtp: SMTPAdapter?
        if let s = c.smtp {
            let adapter = try SMTPAdapter(relay: s.relay, mail: s.mail, group: group, logger: logger)
            adapters.append(adapter)
            smtp = adapter
        }
        let bots = c.ircNetworks.map { n in
            IRCBot(name: n.name, configuration: n.client, channels: n.channels, group: group, backoff: n.reconnect, logger: logger)
        }
        for n in c.ircNetworks where n.client.tls && !n.client.verifyCertificate {
            logger.warning("IRC server certificate is not verified", metadata: ["network": "\(n.name)"])
        }
        for n in c.ircNetworks where !n.client.tls {
            logger.warning("IRC without TLS: messages travel in clear", metadata: ["network": "\(n.name)"])
        }
        let puppets = Dictionary(uniqueKeysWithValues: c.ircNetworks.filter { $0.puppets > 0 && !$0.bridges.isEmpty }.map {
            ($0.name, IRCPuppets(network: $0, group: group, logger: logger))
        })
        if !bots.isEmpty {
            let lookup: IRCAdapter.PuppetLookup = { sender, network in puppets[network]?.puppet(for: sender) }
            let maxLines = Dictionary(uniqueKeysWithValues: c.ircNetworks.map { ($0.name, $0.maxLines) })
            adapters.append(IRCAdapter(bots: bots, maxLines: maxLines, puppets: puppets.isEmpty ? nil : lookup, logger: logger))
        }
        let xmppBridges = c.xmppServers.map { x in
            let component = XMPPComponent(configuration: x.component, group: group, logger: logger)
            let rooms = x.rooms.isEmpty ? nil : XMPPRooms(component: component, addresses: x.addresses, rooms: x.rooms, nick: x.roomNick, logger: logger)
            return XMPPBridge(name: x.name, component: component, addresses: x.addresses, receiptWait: x.receiptWait, rooms: rooms,
                              senderDomains: x.senderDomains)
        }
        for x in c.xmppServers where !DaemonConfiguration.isLoopback(x.component.host) {
            logger.warning("XMPP component connection to another host: XEP-0114 has no TLS, messages travel in clear", metadata: ["server": "\(x.name)"])
        }
        if !xmppBridges.isEmpty { adapters.append(XMPPAdapter(bridges: xmppBridges, logger: logger)) }
        let pageMode = c.sip.map { _ in SIPMessageAdapter(identity: c.gateway.identity, logger: logger) }
        if let pageMode { adapters.append(pageMode) }
        let gateway = try Gateway(configuration: c.gateway, queue: queue, endpoint: endpoint, adapters: adapters, routes: c.routes, relay: relay, logger: logger)
        var sip: SIPUserAgentServer?
        var sipServices: [any Service] = []
        var boundSIPPort: Int?
        var boundSIPTLSPort: Int?
        if let s = c.sip {
            let ua = SIPUserAgentServer(
                configuration: .init(contactHost: s.contactHost, t1: .nanoseconds(s.t1.nanoseconds), connectionLimits: s.connectionLimits,
                                     descriptorBudget: budget, streamIdleTimeout: .nanoseconds(s.tcpIdleTimeout.nanoseconds),
                                     requestRate: s.requestRate),
                handler: GatewayCallHandler(gateway: gateway, domain: s.domain, logger: logger), group: group, logger: logger)
            var port = s.port
            switch (s.transports.contains("udp"), s.transports.contains("tcp")) {
            case (true, true): port = try await ua.listenUDPAndTCP(host: s.listen, port: port)
            case (true, false): port = try await ua.listenUDP(host: s.listen, port: port)
            case (false, true): port = try await ua.listenTCP(host: s.listen, port: port)
            case (false, false): break
            }
            if s.transports.contains("tls"), let cert = s.tlsCertificate, let key = s.tlsKey {
                let tls = TLSConfiguration.makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
                boundSIPTLSPort = try await ua.listenTLS(host: s.listen, port: s.tlsPort, context: try NIOSSLContext(configuration: tls))
            }
            sip = ua
            boundSIPPort = port
            let proxy = try s.outboundProxy.map { p in try SocketAddress.makeAddressResolvingHost(p.host, port: p.port) }
            let client = SIPClient(ua: ua, outboundProxy: proxy, account: s.account, logger: logger)
            pageMode?.attach(client)
            if (s.registration != nil || s.callOut), ua.udpPort == nil {
                throw ConfigError("sip: registration and outbound calls are sent over UDP; add udp to sip.transports")
            }
            if let reg = s.registration, let account = s.account {
                let registration = SIPRegistration(client: client, registrar: reg.registrar, account: account, expires: reg.expires, logger: logger)
                sipServices.append(LoopService { await registration.run() })
            }
            var outbound: OutboundCalls?
            if s.callOut {
                let calls = OutboundCalls(
                    gateway: gateway, client: client,
                    configuration: .init(hangupAfter: s.hangupAfter, redialAfter: s.redialAfter, identity: c.gateway.identity), logger: logger)
                gateway.onPeerNeedsSession { peer in calls.dial(peer) }
                outbound = calls
            }
            // A session that ends takes its call with it: a BYE for calls we placed
            // (unless the peer's BYE ended it); dialogs of calls we answered are forgotten.
            gateway.onSessionClosed { [weak ua, outbound] id in
                let dialogOpen = ua?.sessionEnded(id) ?? false
                outbound?.sessionEnded(id, dialogOpen: dialogOpen)
            }
        }
        for n in c.ircNetworks {
            for (channel, route) in n.bridges where !gateway.hasRoute(route) {
                throw ConfigError("irc.\(n.name).bridges.\(channel): \(route) is not a configured route")
            }
        }
        let ircToMSRP = zip(bots, c.ircNetworks).filter { !$0.1.bridges.isEmpty }.map { bot, n in
            IRCToMSRP(bot: bot, bridges: n.bridges, gateway: gateway, logger: logger, announce: n.announce,
                      isPuppet: { [puppets] nick in puppets[n.name]?.isPuppet(nick) ?? false })
        }
        let xmppToMSRP = zip(xmppBridges, c.xmppServers).map { bridge, x in
            XMPPToMSRP(bridge: bridge, gateway: gateway, senderDomains: x.senderDomains, version: MSRPGW.version, logger: logger)
        }
        let sipPort = boundSIPPort
        let sipTLSPort = boundSIPTLSPort
        var smtpServer: SMTPServer?
        var mailIntake: MailIntake?
        if let s = c.smtpInbound {
            let intake = MailIntake(gateway: gateway, addressing: s.addressing, messageIDDomain: c.smtp?.mail.domain ?? s.addressing.domain, logger: logger)
            smtpServer = try await Self.startSMTPListener(s, intake: intake, group: group, budget: budget, logger: logger)
            mailIntake = intake
        }
        let smtpPort = smtpServer?.port
        if c.api.token == nil { logger.warning("the HTTP API has no token: anyone on this host can use it (set api.token)") }

        var api = GatewayAPI(gateway: gateway, token: c.api.token, alertSubscribers: c.alertmanager.subscribers, registry: registry, logger: logger)
        api.webSocketPorts = (wsPort, wssPort)
        api.webClientAuths = c.relayRole != nil
        api.requestRate = c.api.requestRate
        let apiDoor = ListenerGuard(name: "api", limits: c.api.connectionLimits, budget: budget, logger: logger)
        let (headerTimeout, idleTimeout) = (TimeAmount.nanoseconds(c.api.headerTimeout.nanoseconds), TimeAmount.nanoseconds(c.api.idleTimeout.nanoseconds))
        let app = Application(
            router: api.router(),
            server: .http1(configuration: HTTP1Channel.Configuration(
                additionalChannelHandlers: [APIConnectionGuard(door: apiDoor, headerTimeout: headerTimeout, idleTimeout: idleTimeout)],
                idleTimeout: idleTimeout)),
            configuration: ApplicationConfiguration(address: .hostname(c.api.listen, port: c.api.port), serverName: "msrpgw"),
            onServerRunning: { channel in
                do { try await apiDoor.guardListening(channel) } catch {
                    logger.warning("the API listener has no pause on accept errors", metadata: ["error": "\(error)"])
                }
                let apiPort = channel.localAddress?.port ?? c.api.port
                logger.notice("msrpgw ready", metadata: [
                    "msrp": "\(c.msrp.listen):\(msrpPort)", "msrps": "\(msrpsPort.map(String.init) ?? "off")", "api": "http://\(c.api.listen):\(apiPort)",
                    "sip": "\(sipPort.map { "\(c.sip?.listen ?? ""):\($0)" } ?? "off")", "sip-tls": "\(sipTLSPort.map(String.init) ?? "off")",
                    "smtp": "\(smtpPort.map { "\(c.smtpInbound?.listen ?? ""):\($0)" } ?? "off")",
                    "routes": "\(c.routes.count)", "webhooks": "\(c.webhooks.count)",
                ])
                if let shared = gateway.sharedQueue {
                    // Where the other nodes' API answers send an operator for this node's sessions.
                    let apiHost = ["0.0.0.0", "::"].contains(c.api.listen) ? c.msrp.advertisedHost : c.api.listen
                    let addresses = ["api=http://\(apiHost.contains(":") ? "[\(apiHost)]" : apiHost):\(apiPort)",
                                     "msrp=\(endpoint.listenerURI(secure: msrpsPort != nil))"]
                    do { try await shared.advertise(addresses: addresses) } catch {
                        logger.warning("cannot publish this node's addresses to the cluster", metadata: ["error": "\(error)"])
                    }
                }
                await onReady(Ready(msrpPort: msrpPort, msrpsPort: msrpsPort, apiPort: apiPort, wsPort: wsPort, wssPort: wssPort,
                                   sipPort: sipPort, sipTLSPort: sipTLSPort, smtpPort: smtpPort))
                notifier.ready(status: WatchdogService.status(gateway))
            },
            logger: logger)

        let services: [any Service] = [
            GatewayService(gateway: gateway, endpoint: endpoint, logger: logger),
            MaintenanceService(gateway: gateway, retention: c.queue.retention, logger: logger),
        ] + sipServices + bots.map { bot in LoopService { await bot.run() } } + ircToMSRP.map { bridge in LoopService { await bridge.run() } }
            + puppets.values.map { p in LoopService { await p.run(gateway: gateway) } }
            + xmppBridges.map { b in LoopService { await b.component.run() } } + xmppToMSRP.map { x in LoopService { await x.run() } }
            + xmppBridges.compactMap(\.rooms).map { r in LoopService { await r.run(gateway: gateway) } } + (relay.map { r in [LoopService { await r.run() }] } ?? [])
            + (reloadFrom.map { path in
                [ReloadService(reload: ConfigurationReload(
                    path: path, running: c,
                    parts: .init(gateway: gateway, webhook: webhook, smtp: smtp, mailIntake: mailIntake, relayRole: endpoint.relayRole, relayTokens: relayTokens),
                    notifier: notifier, logger: logger))]
            } ?? [])
            + extraServices + [app] + (smtpServer.map { server in [ListenerService { await server.close() }] } ?? []) + Self.systemdServices(
                notifier, gateway: gateway, loops: c.msrp.eventLoops == 0 ? [group] : [group, msrpGroup], logger: logger)
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // Graceful for 15 s (deliveries in flight finish), then cancelled; gone by 20 s in any case.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(15)
        let deadline = ShutdownDeadline(limit: .seconds(20), logger: logger)
        defer { withExtendedLifetime(deadline) {} }
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            await smtpServer?.close()
            await smtp?.shutdown()
            await http.shutdown()
            await (queue as? PostgresEventQueue)?.shutdown()
            throw error
        }
        await smtp?.shutdown()
        await sip?.shutdown()
        await http.shutdown()
        // Out of the cluster at once: the other nodes need not wait for the heartbeat to lapse.
        await (queue as? PostgresEventQueue)?.shutdown()
        logger.notice("msrpgw stopped")
    }

    /// The listener replies and bounces come back to (`[smtp.inbound]`).
    static func startSMTPListener(_ s: SMTPInboundSettings, intake: MailIntake, group: any EventLoopGroup, budget: DescriptorBudget,
                                  logger: Logger) async throws -> SMTPServer {
        var tls: TLSConfiguration?
        if let cert = s.tlsCertificate, let key = s.tlsKey {
            tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        } else {
            logger.warning("SMTP listener without STARTTLS: replies travel in clear (set smtp.inbound.tls_certificate)")
        }
        return try await SMTPServer.start(
            SMTPServer.Configuration(host: s.listen, port: s.port, hostname: s.hostname, limits: s.limits, connectionLimits: s.connectionLimits,
                                     commandTimeout: .nanoseconds(s.commandTimeout.nanoseconds), tls: tls, requireTLS: s.requireTLS),
            sink: intake, group: group, budget: budget, logger: logger)
    }

    /// With systemd: `STOPPING=1` as the shutdown begins (listed last, so shut
    /// down first) and the watchdog when the unit asks for one.
    static func systemdServices(_ notifier: SystemdNotifier, gateway: Gateway, loops groups: [any EventLoopGroup], logger: Logger) -> [any Service] {
        guard notifier.isActive else { return [] }
        var services: [any Service] = [SystemdStoppingService(notifier: notifier)]
        if let interval = notifier.watchdogInterval {
            let loops = groups.flatMap { group in group.makeIterator().map { $0 } }
            services.append(WatchdogService(notifier: notifier, interval: interval, gateway: gateway, loops: loops, logger: logger))
            logger.info("systemd watchdog on", metadata: ["interval": "\(interval)"])
        }
        return services
    }

    /// Whom a token at the WebSocket handshake names: one of `[relay] tokens`, or
    /// the API token (what the web client signs in with) as "api". Compared in
    /// constant time. The tokens are read at each handshake: a reload replaces them.
    static func webSocketTokenCheck(_ tokens: NIOLockedValueBox<[String: String]>, apiToken: String?) -> @Sendable (String) -> String? {
        { token in
            var known = tokens.withLockedValue { $0 }.map { (Array($0.key.utf8), $0.value) }
            if let apiToken { known.append((Array(apiToken.utf8), "api")) }
            let presented = Array(token.utf8)
            var found: String?
            for (bytes, name) in known where constantTimeEqual(presented, bytes) { found = name }
            return found
        }
    }
}

/// The gateway's dispatcher as a service: on graceful shutdown it stops leasing,
/// lets deliveries in flight finish, then closes the MSRP sessions and listeners.
struct GatewayService: Service {
    let gateway: Gateway
    let endpoint: MSRPEndpoint
    let logger: Logger

    func run() async throws {
        await withGracefulShutdownHandler {
            await gateway.run()
        } onGracefulShutdown: {
            logger.notice("shutting down: finishing deliveries in flight")
            gateway.stop()
        }
        gateway.closeAllSessions()
        await endpoint.shutdown()
    }
}

/// Tells systemd the shutdown began (`STOPPING=1`), so `systemctl status`
/// shows it and the stop timeout applies.
struct SystemdStoppingService: Service {
    let notifier: SystemdNotifier

    func run() async throws {
        try? await gracefulShutdown()
        notifier.stopping()
    }
}

/// A listener that takes no new work once the shutdown begins (the SMTP
/// listener: listed beside the API, so it closes before the gateway drains).
struct ListenerService: Service {
    let close: @Sendable () async -> Void

    func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}

/// A loop that keeps something going until graceful shutdown cancels it: an
/// IRC network's connection, its bridged channels, its puppets, the MSRP relay's
/// grant (AUTH again before it expires), the SIP registration (the loop ends
/// with its un-REGISTER when cancelled).
struct LoopService: Service {
    let loop: @Sendable () async -> Void

    func run() async throws {
        await cancelWhenGracefulShutdown { await loop() }
    }
}

/// Periodic upkeep: purges delivered events past their retention and refreshes
/// the queue gauges.
struct MaintenanceService: Service {
    let gateway: Gateway
    let retention: Duration
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let cutoff = Date().addingTimeInterval(-Double(retention.components.seconds))
                    let n = try await gateway.queue.purge(deliveredBefore: cutoff)
                    if n > 0 { logger.info("purged delivered events", metadata: ["count": "\(n)"]) }
                    try await gateway.recordGauges()
                } catch {
                    logger.error("maintenance failed", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: .seconds(60))
            }
        }
    }
}
