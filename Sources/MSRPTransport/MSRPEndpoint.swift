import Admission
import DirectConnect
import Logging
import MSRP
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// An MSRP endpoint: listeners (TCP and TLS), outgoing connections shared by
/// sessions to the same peer, and the table of live sessions.
public final class MSRPEndpoint: Sendable {
    /// This endpoint's connection handlers that are alive (made, not yet
    /// freed): its open connections, once closed ones are freed. A leak shows here.
    public var connectionHandlersAlive: Int { handlersAlive.withLockedValue { $0 } }
    let handlersAlive = NIOLockedValueBox(0)

    public let configuration: MSRPTransportConfiguration
    public let group: any EventLoopGroup
    let logger: Logger
    let registry = MSRPSessionRegistry()

    struct Listener {
        var channel: any Channel
        var secure: Bool
        var port: Int
        /// An MSRP-over-WebSocket listener (RFC 7977), not a plain MSRP one.
        var webSocket = false
    }

    private struct State {
        var listeners: [Listener] = []
        /// Outgoing connections being opened or open, for reuse.
        var outgoing: [ConnectionKey: EventLoopFuture<MSRPConnection>] = [:]
        var all: Set<MSRPConnection> = []
        var shutDown = false
        /// One per event loop that has had a connection pause its writing.
        var pollGates: [ObjectIdentifier: LoopPollGate] = [:]
    }

    private let state = NIOLockedValueBox(State())
    private let relayBox = NIOLockedValueBox<MSRPRelayRole?>(nil)
    let serverTLS: NIOSSLContext?
    private let clientTLS: NIOSSLContext

    public init(
        configuration: MSRPTransportConfiguration, group: any EventLoopGroup,
        logger: Logger = Logger(label: "msrp")
    ) throws {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.serverTLS = try configuration.tlsServer.map { try NIOSSLContext(configuration: $0) }
        self.clientTLS = try NIOSSLContext(configuration: configuration.tlsClient)
    }

    // MARK: - Listening

    /// Starts a listener; port 0 picks a free one. Returns the bound port.
    @discardableResult
    public func listen(host: String, port: Int, secure: Bool = false) async throws -> Int {
        let bound = try await bindListener(host: host, port: port, secure: secure, webSocket: false) { [self] channel in
            _ = try self.configurePipeline(channel, secure: secure, key: nil, serverHostname: nil)
        }
        logger.info("MSRP listening", metadata: ["address": "\(host):\(bound)", "tls": "\(secure)"])
        return bound
    }

    /// Binds a server socket whose connections `configure` sets up, and records it.
    func bindListener(
        host: String, port: Int, secure: Bool, webSocket: Bool, configure: @escaping @Sendable (any Channel) throws -> Void
    ) async throws -> Int {
        if secure, serverTLS == nil { throw MSRPEndpointError.tlsNotConfigured }
        let door = ListenerGuard(
            name: "msrp" + (secure ? "s" : "") + (webSocket ? "-ws" : ""), limits: configuration.connectionLimits,
            budget: configuration.descriptorBudget, logger: logger)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in door.initializeServerChannel(channel) }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try door.admit(channel)
                    try configure(channel)
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        let bound = channel.localAddress?.port ?? port
        state.withLockedValue { $0.listeners.append(Listener(channel: channel, secure: secure, port: bound, webSocket: webSocket)) }
        return bound
    }

    /// The port of the first MSRP (not WebSocket) listener of that kind, if any.
    public func listeningPort(secure: Bool) -> Int? {
        state.withLockedValue { $0.listeners.first { $0.secure == secure && !$0.webSocket }?.port }
    }

    @discardableResult
    func configurePipeline(
        _ channel: any Channel, secure: Bool, key: ConnectionKey?, serverHostname: String?, overWebSocket: Bool = false, authenticatedAs: String? = nil
    ) throws -> MSRPConnection {
        if secure {
            if key == nil {
                guard let serverTLS else { throw MSRPEndpointError.tlsNotConfigured }
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverTLS))
            } else {
                try channel.pipeline.syncOperations.addHandler(
                    try NIOSSLClientHandler(context: clientTLS, serverHostname: serverHostname))
            }
        }
        let handler = MSRPConnectionHandler(endpoint: self, configuration: configuration, logger: logger)
        let connection = MSRPConnection(channel: channel, handler: handler, key: key, overWebSocket: overWebSocket, authenticatedAs: authenticatedAs)
        handler.connection = connection
        try channel.pipeline.syncOperations.addHandler(handler)
        let accepted = state.withLockedValue { s -> Bool in
            if s.shutDown { return false }
            s.all.insert(connection)
            return true
        }
        if !accepted { channel.close(promise: nil) }
        return connection
    }

    // MARK: - Connecting

    /// A connection to the authority of `uri`: an existing one to the same
    /// host, port and scheme, or a new one.
    func connection(to uri: MSRPURI) async throws -> MSRPConnection {
        try await connectionFuture(to: uri).get()
    }

    /// The same as a future: callers that queue work on it in turn (a relay
    /// forwarding the parts of a chunk) see it run in that order, on the
    /// connection's event loop, with no task in between.
    func connectionFuture(to uri: MSRPURI) -> EventLoopFuture<MSRPConnection> {
        let key = ConnectionKey(uri)
        // Under the lock only the lookup, or a promise as the entry for a new
        // connection; it is opened outside (setting a channel up can run at once,
        // and takes the lock). The promise is made on the loop the connection
        // will live on, so that connections spread over the loops.
        enum Found { case existing(EventLoopFuture<MSRPConnection>), new(EventLoopPromise<MSRPConnection>, local: Bool), shutDown }
        let found = state.withLockedValue { s -> Found in
            if s.shutDown { return .shutDown }
            if let existing = s.outgoing[key] { return .existing(existing) }
            let p = group.next().makePromise(of: MSRPConnection.self)
            s.outgoing[key] = p.futureResult
            return .new(p, local: Self.isOwnListener(key, among: s.listeners, advertisedHost: configuration.advertisedHost))
        }
        switch found {
        case .existing(let future):
            return future
        case .shutDown:
            return group.next().makeFailedFuture(MSRPEndpointError.shutDown)
        case .new(let promise, let local):
            let future = promise.futureResult
            // A failed attempt is forgotten, so that the next one tries again.
            future.whenFailure { [self] _ in
                state.withLockedValue { s in
                    if s.outgoing[key] === future { s.outgoing[key] = nil }
                }
            }
            let loop = future.eventLoop
            (local ? openLocal(key, on: loop) : open(key, uri: uri, on: loop)).cascade(to: promise)
            return future
        }
    }

    private func open(_ key: ConnectionKey, uri: MSRPURI, on loop: any EventLoop) -> EventLoopFuture<MSRPConnection> {
        guard let policy = configuration.connectPolicy, !policy.exempt.contains(uri.host.address.lowercased()) else {
            return connect(key, uri: uri, to: nil, on: loop)
        }
        // The address is checked before any packet leaves: a denied one is never
        // tried, so that its ports cannot be told apart. A name is resolved first
        // (on the thread pool: getaddrinfo blocks) and the address checked is the
        // one connected to.
        let host = uri.host.address
        let resolved: EventLoopFuture<SocketAddress> = switch uri.host {
        case .ipv4, .ipv6: loop.makeCompletedFuture { try SocketAddress(ipAddress: host, port: key.port) }
        case .name: NIOThreadPool.singleton.runIfActive(eventLoop: loop) { try SocketAddress.makeAddressResolvingHost(host, port: key.port) }
        }
        return resolved.flatMap { [self] address in
            guard policy.permits(address) else {
                logger.warning("refusing to connect: the address is not allowed (msrp.connect_allow, connect_deny)", metadata: [
                    "uri": "\(uri)", "address": "\(address.ipAddress ?? "?")"])
                return loop.makeFailedFuture(MSRPEndpointError.connectNotAllowed(host))
            }
            return connect(key, uri: uri, to: address, on: loop)
        }
    }

    /// Connects to `address`, or to the URI's host as NIO resolves it when nil.
    private func connect(_ key: ConnectionKey, uri: MSRPURI, to address: SocketAddress?, on loop: any EventLoop) -> EventLoopFuture<MSRPConnection> {
        let hostname: String? = if case .name(let n) = uri.host { n } else { nil }
        let connection = NIOLockedValueBox<MSRPConnection?>(nil)
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let c = try self.configurePipeline(channel, secure: key.secure, key: key, serverHostname: hostname)
                    connection.withLockedValue { $0 = c }
                }
            }
        let connected = address.map { bootstrap.connect(to: $0) } ?? bootstrap.connect(hostOrAddress: uri.host.address, port: key.port)
        return connected
            .flatMapThrowing { _ in
                guard let c = connection.withLockedValue({ $0 }) else { throw MSRPEndpointError.shutDown }
                return c
            }
    }

    /// Whether `key` names one of our own MSRP listeners (as our relay role's
    /// paths and our sessions' URIs do): the advertised host or the listener's
    /// address (loopback too when it listens on every address), and its port.
    private static func isOwnListener(_ key: ConnectionKey, among listeners: [Listener], advertisedHost: String) -> Bool {
        let loopback: Set<String> = ["127.0.0.1", "::1", "localhost"]
        return listeners.contains { l in
            guard !l.webSocket, l.secure == key.secure, l.port == key.port else { return false }
            let bound = l.channel.localAddress?.ipAddress ?? ""
            let any = bound == "0.0.0.0" || bound == "::"
            return key.host == advertisedHost.lowercased() || key.host == bound || (any && loopback.contains(key.host))
        }
    }

    /// A connection to ourselves without the network: the two ends of a socket
    /// pair, one as if we had connected, one as if we had accepted; no TLS, since
    /// nothing leaves the process. Traffic our relay role forwards to our own
    /// sessions (and back) is delivered this way.
    private func openLocal(_ key: ConnectionKey, on loop: any EventLoop) -> EventLoopFuture<MSRPConnection> {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
            return loop.makeFailedFuture(IOError(errnoCode: errno, reason: "socketpair"))
        }
        let connection = NIOLockedValueBox<MSRPConnection?>(nil)
        let accepted = ClientBootstrap(group: group)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { _ = try self.configurePipeline(channel, secure: false, key: nil, serverHostname: nil) }
            }
            .withConnectedSocket(fds[1])
        let opened = ClientBootstrap(group: loop)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let c = try self.configurePipeline(channel, secure: false, key: key, serverHostname: nil)
                    connection.withLockedValue { $0 = c }
                }
            }
            .withConnectedSocket(fds[0])
        return accepted.and(opened).flatMapThrowing { _ in
            guard let c = connection.withLockedValue({ $0 }) else { throw MSRPEndpointError.shutDown }
            return c
        }
    }

    /// The relay role, when this endpoint relays for clients (RFC 4976).
    public var relayRole: MSRPRelayRole? {
        get { relayBox.withLockedValue { $0 } }
        set { relayBox.withLockedValue { $0 = newValue } }
    }

    func connectionClosed(_ connection: MSRPConnection) {
        relayRole?.connectionClosed(connection)
        state.withLockedValue { s in
            s.all.remove(connection)
            // The entry for its key is this connection's: a new one is opened only
            // once the entry is gone.
            if let key = connection.key { s.outgoing[key] = nil }
        }
    }

    // MARK: - Sessions

    /// What peers reach our msrp (or msrps) listener at: the advertised host and
    /// the listener's port, no session part (9, the discard port, without one).
    public func listenerURI(secure: Bool) -> MSRPURI {
        let advertised = configuration.advertisedHost
        let host: MSRPURI.Host =
            advertised.contains(":") ? .ipv6(advertised)
            : (advertised.allSatisfy { $0.isNumber || $0 == "." } ? .ipv4(advertised) : .name(advertised))
        return MSRPURI(scheme: secure ? .msrps : .msrp, host: host, port: listeningPort(secure: secure) ?? 9, sessionID: nil, transport: "tcp")
    }

    /// Creates a session with a fresh random id. Its URI uses the advertised host
    /// and the port of the matching listener.
    public func createSession(
        id: String = MSRPIdentifier.make(length: 20), secure: Bool = false, setup: MSRPSession.Setup = .passive,
        remotePath: [MSRPURI] = [], acceptTypes: [MediaType] = [], delegate: (any MSRPSessionDelegate)?
    ) -> MSRPSession {
        var uri = listenerURI(secure: secure)
        uri.sessionID = id
        let session = MSRPSession(
            id: id, localURI: uri, setup: setup, remotePath: remotePath, acceptTypes: acceptTypes,
            delegate: delegate, endpoint: self)
        registry.insert(session)
        return session
    }

    public func session(id: String) -> MSRPSession? { registry.session(id: id) }

    public var sessionCount: Int { registry.count }

    public var connectionCount: Int { state.withLockedValue { $0.all.count } }

    /// The connections open now (for tests and diagnostics).
    var allConnections: [MSRPConnection] { state.withLockedValue { Array($0.all) } }

    /// Bytes queued in memory on all connections, not yet handed to the network
    /// (what back-pressure bounds; for tests and diagnostics).
    func queuedOutboundBytes() async -> Int {
        var total = 0
        for c in state.withLockedValue({ Array($0.all) }) {
            total += (try? await c.withHandler { $0.queuedOutboundBytes }.get()) ?? 0
        }
        return total
    }

    // MARK: - Shutdown

    /// Stops listening, closes every session and connection.
    public func shutdown() async {
        let (listeners, connections) = state.withLockedValue { s in
            s.shutDown = true
            return (s.listeners, s.all)
        }
        for l in listeners { try? await l.channel.close() }
        for session in registry.all { session.close() }
        for c in connections { try? await c.channel.close() }
        let gates = state.withLockedValue { s in
            defer { s.pollGates = [:] }
            return Array(s.pollGates.values)
        }
        for gate in gates { try? await gate.eventLoop.submit { gate.stop() }.get() }
    }

    /// The poll gate of `loop`, made on first use (see `LoopPollGate`).
    func pollGate(for loop: any EventLoop) -> LoopPollGate {
        let (gate, isNew) = state.withLockedValue { s -> (LoopPollGate, Bool) in
            let key = ObjectIdentifier(loop as AnyObject)
            if let g = s.pollGates[key] { return (g, false) }
            let g = LoopPollGate(eventLoop: loop)
            // After shutdown a gate opens no pipe (nothing would close it).
            if s.shutDown { return (g, false) }
            s.pollGates[key] = g
            return (g, true)
        }
        if isNew { gate.start() }
        return gate
    }
}

public enum MSRPEndpointError: Error, Sendable, CustomStringConvertible {
    case tlsNotConfigured
    case shutDown
    /// The connect policy does not allow this host's address.
    case connectNotAllowed(String)

    public var description: String {
        switch self {
        case .tlsNotConfigured: return "an msrps listener needs a TLS server configuration"
        case .shutDown: return "the MSRP endpoint is shut down"
        case .connectNotAllowed(let host): return "connections to \(host) are not allowed (msrp.connect_allow, connect_deny)"
        }
    }
}
