import Admission
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

extension SIPSource: SIPReplyPath {}

/// The UAS side of RFC 3261 over UDP, TCP and TLS: the sockets, timers and the
/// call handler around `SIPServerStateMachine`, which decides everything
/// (transactions, dialogs, page mode). It also owns the client transactions
/// for requests we send (REGISTER, MESSAGE, INVITE, BYE) from the same UDP socket.
public final class SIPUserAgentServer: SIPTransportReceiver, @unchecked Sendable {
    public typealias Configuration = SIPServerConfiguration
    typealias Machine = SIPServerStateMachine<SIPSource>

    public let configuration: Configuration
    private let handler: any SIPCallHandler
    private let logger: Logger
    private let group: any EventLoopGroup
    /// The loop our timers run on.
    private let loop: any EventLoop
    private let parser = SIPParser()
    private let state: NIOLockedValueBox<State>
    private var channels: [any Channel] = []
    private var sweeper: RepeatedTask?
    /// The UDP socket requests of ours leave from (so responses come back to it).
    private let udpChannel = NIOLockedValueBox<(any Channel)?>(nil)
    /// Requests we send: REGISTER, MESSAGE, INVITE, BYE.
    let clientTransactions: SIPClientTransactions

    private struct State {
        var machine: Machine
        /// Each timer the machine asked for, with a generation so that one
        /// replaced or cancelled after it fired is not delivered.
        var timers: [Machine.Timer: (generation: UInt64, task: Scheduled<Void>)] = [:]
        var generation: UInt64 = 0
        /// The handler's work on an INVITE, cancelled by a CANCEL.
        var work: [SIPServerTransactionKey: Task<Void, Never>] = [:]
    }

    public init(configuration: Configuration, handler: any SIPCallHandler, group: any EventLoopGroup, logger: Logger = Logger(label: "msrpgw.sip")) {
        self.configuration = configuration
        self.handler = handler
        self.group = group
        self.loop = group.next()
        self.logger = logger
        self.state = NIOLockedValueBox(State(machine: Machine(configuration: configuration)))
        let udp = udpChannel
        self.clientTransactions = SIPClientTransactions(loop: loop, t1: configuration.t1, t2: configuration.t2) { bytes, destination in
            guard let channel = udp.withLockedValue({ $0 }) else { return false }
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: destination, data: ByteBuffer(bytes: bytes)), promise: nil)
            return true
        }
    }

    /// Sends a request we built as a client transaction; returns its final response.
    public func request(_ request: SIPRequest, to destination: SocketAddress) async throws -> SIPResponse {
        try await clientTransactions.start(request, to: destination)
    }

    /// Sends an ACK for a 2xx (not a transaction of its own, §13.2.2.4) and keeps
    /// it to answer retransmissions of that 2xx.
    public func sendAck(_ ack: SIPRequest, to destination: SocketAddress) {
        let bytes = SIPMessage.request(ack).serialized
        clientTransactions.rememberAck(bytes, callID: ack.headers.callID ?? "", cseq: ack.headers.cseq?.number ?? 0, destination: destination)
        udpChannel.withLockedValue { $0 }?.writeAndFlush(AddressedEnvelope(remoteAddress: destination, data: ByteBuffer(bytes: bytes)), promise: nil)
    }

    /// The port requests of ours are sent from (Via and Contact), if listening on UDP.
    public var udpPort: Int? { state.withLockedValue { $0.machine.ports["UDP"] } }

    // MARK: - Listening

    /// Binds a UDP listener; returns the port.
    @discardableResult
    public func listenUDP(host: String, port: Int) async throws -> Int {
        started(try await bindUDP(host: host, port: port), "UDP")
    }

    /// Binds a TCP listener; returns the port.
    @discardableResult
    public func listenTCP(host: String, port: Int) async throws -> Int {
        started(try await bindStream(host: host, port: port, tls: nil), "TCP")
    }

    /// Binds UDP and TCP on one port, as a SIP port serves both. With port 0
    /// the system picks one for UDP and TCP takes the same; when that port is
    /// in use for TCP, both are released and another is tried.
    @discardableResult
    public func listenUDPAndTCP(host: String, port: Int) async throws -> Int {
        var attempt = 0
        while true {
            let udp = try await bindUDP(host: host, port: port)
            let picked = udp.localAddress?.port ?? port
            do {
                let tcp = try await bindStream(host: host, port: picked, tls: nil)
                _ = started(udp, "UDP")
                return started(tcp, "TCP")
            } catch let error as IOError where port == 0 && error.errnoCode == EADDRINUSE && attempt < 20 {
                attempt += 1
                try? await udp.close()
            }
        }
    }

    /// Binds a TLS listener (RFC 3261 §26.2: SIP over TLS, `transport=tls`); returns the port.
    @discardableResult
    public func listenTLS(host: String, port: Int, context: NIOSSLContext) async throws -> Int {
        started(try await bindStream(host: host, port: port, tls: context), "TLS")
    }

    private func bindUDP(host: String, port: Int) async throws -> any Channel {
        let handler = SIPDatagramHandler(parser: parser, receiver: self)
        return try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            // Bursts of calls must not overflow the default ~200 KB socket buffer:
            // a dropped BYE leaves a session nobody ends.
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) } }
            .bind(host: host, port: port).get()
    }

    private func bindStream(host: String, port: Int, tls: NIOSSLContext?) async throws -> any Channel {
        let parser = self.parser
        let transport = tls == nil ? "TCP" : "TLS"
        let door = ListenerGuard(name: "sip-" + transport.lowercased(), limits: configuration.connectionLimits,
                                 budget: configuration.descriptorBudget, logger: logger)
        let idle = configuration.streamIdleTimeout
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in door.initializeServerChannel(channel) }
            .childChannelInitializer { [weak self] ch in
                ch.eventLoop.makeCompletedFuture {
                    guard let self else { return }
                    try door.admit(ch)
                    if let tls { try ch.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try ch.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                    try ch.pipeline.syncOperations.addHandler(SIPStreamHandler(parser: parser, transport: transport, receiver: self))
                }
            }
            .bind(host: host, port: port).get()
    }

    private func started(_ channel: any Channel, _ transport: String) -> Int {
        if transport == "UDP" { udpChannel.withLockedValue { $0 = channel } }
        let port = channel.localAddress?.port ?? 0
        state.withLockedValue { s in
            channels.append(channel)
            s.machine.ports[transport] = port
        }
        if sweeper == nil {
            sweeper = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [weak self] _ in self?.sweep() }
        }
        logger.info("SIP listening", metadata: ["transport": "\(transport)", "port": "\(port)"])
        return port
    }

    public func shutdown() async {
        sweeper?.cancel()
        clientTransactions.cancelAll()
        let (all, work) = state.withLockedValue { s in
            for (_, timer) in s.timers { timer.task.cancel() }
            s.timers = [:]
            defer { s.work = [:] }
            return (channels, Array(s.work.values))
        }
        // Outside the lock, as in run: a cancelled task may call back in.
        for task in work { task.cancel() }
        for c in all { try? await c.close() }
    }

    /// The session ended on our side (closed through the API, its connection
    /// lost, nobody connected): its dialog goes too. Returns whether it had one
    /// (false when a BYE from the peer already ended it).
    @discardableResult
    public func sessionEnded(_ session: String) -> Bool {
        var hadDialog = false
        run { machine, _ in
            let (had, actions) = machine.sessionEnded(session)
            hadDialog = had
            return actions
        }
        return hadDialog
    }

    /// A dialog of a call we placed: a BYE from the peer then ends `session`.
    public func addDialog(callID: String, localTag: String, remoteTag: String, session: String) {
        state.withLockedValue { $0.machine.addDialog(callID: callID, localTag: localTag, remoteTag: remoteTag, session: session) }
    }

    /// Live dialogs (calls), for the API and tests.
    public var dialogCount: Int { state.withLockedValue { $0.machine.dialogCount } }

    // MARK: - Inputs

    func receiveInvalid(_ error: SIPParseError, from source: SIPSource) {
        run { machine, _ in machine.invalid(error, from: source) }
    }

    func receive(_ message: SIPMessage, from source: SIPSource) {
        switch message {
        case .request(let request):
            run { machine, now in machine.receive(request, from: source, now: now) }
        case .response(let response):
            if !clientTransactions.receive(response) {
                logger.debug("response matching no request of ours", metadata: ["from": "\(source)", "code": "\(response.code)"])
            }
        }
    }

    private func sweep() {
        run { machine, now in machine.expire(now: now) }
    }

    /// Feeds the machine one input under the lock, applies its timer actions
    /// there (so they keep the machine's order), and performs the rest after.
    /// Nothing called under the lock may call back into this object.
    private func run(_ input: (inout Machine, NIODeadline) -> [Machine.Action]) {
        runState { s, now in input(&s.machine, now) }
    }

    private func runState(_ input: (inout State, NIODeadline) -> [Machine.Action]) {
        let (actions, cancelled) = state.withLockedValue { s in
            let actions = input(&s, .now())
            var cancelled: [Task<Void, Never>] = []
            for action in actions {
                switch action {
                case .schedule(let timer, let delay): schedule(timer, in: delay, &s)
                case .cancelTimer(let timer): s.timers.removeValue(forKey: timer)?.task.cancel()
                case .cancelWork(let key): if let task = s.work.removeValue(forKey: key) { cancelled.append(task) }
                default: break
                }
            }
            return (actions, cancelled)
        }
        // Outside the lock: a task's cancellation handlers run right here, and may
        // call back in (a session closed by the cancel ends its call).
        for task in cancelled { task.cancel() }
        for action in actions { perform(action) }
    }

    private func schedule(_ timer: Machine.Timer, in delay: TimeAmount, _ s: inout State) {
        s.timers[timer]?.task.cancel()
        s.generation &+= 1
        let generation = s.generation
        let task = loop.scheduleTask(in: delay) { [weak self] () -> Void in self?.fire(timer, generation: generation) }
        s.timers[timer] = (generation, task)
    }

    private func fire(_ timer: Machine.Timer, generation: UInt64) {
        runState { s, now in
            // Only the timer's latest arming counts: one replaced or cancelled after it fired is stale.
            guard s.timers[timer]?.generation == generation else { return [] }
            s.timers[timer] = nil
            return s.machine.timerFired(timer, now: now)
        }
    }

    // MARK: - Actions

    private func perform(_ action: Machine.Action) {
        switch action {
        case .send(let bytes, let source):
            source.send(bytes)
        case .offer(let key, let request, let sdp):
            startWork(key) { [handler] in
                do throws(SIPRejection) {
                    return .success(try await handler.offer(request, sdp: sdp))
                } catch { return .failure(error) }
            } answered: { machine, result, now in machine.offerAnswered(key, result, now: now) }
        case .update(let key, let session, let request, let sdp):
            startWork(key) { [handler] in
                do throws(SIPRejection) {
                    return .success(try await handler.update(session: session, invite: request, sdp: sdp))
                } catch { return .failure(error) }
            } answered: { machine, result, now in machine.updateAnswered(key, session: session, result, now: now) }
        case .store(let key, let request):
            startWork(key) { [handler] in
                do throws(SIPRejection) {
                    try await handler.message(request)
                    return .success(())
                } catch { return .failure(error) }
            } answered: { machine, result, now in machine.messageStored(key, result, now: now) }
        case .endSession(let session, let reason):
            handler.end(session: session, reason: reason)
        case .bye(let bye, let route):
            sendBye(bye, route: route)
        case .log(let level, let message, let metadata):
            logger.log(level: level, "\(message)", metadata: metadata)
        case .schedule, .cancelTimer, .cancelWork:
            break // applied under the lock in run
        }
    }

    /// Asks the call handler something in a task and feeds its answer back.
    private func startWork<T: Sendable>(_ key: SIPServerTransactionKey, _ ask: @escaping @Sendable () async -> Result<T, SIPRejection>,
                                        answered: @escaping @Sendable (inout Machine, Result<T, SIPRejection>, NIODeadline) -> [Machine.Action]) {
        // Made under the lock, so the task cannot end (and remove itself) before it is stored.
        state.withLockedValue { s in
            s.work[key] = Task { [weak self] in
                let result = await ask()
                guard let self else { return }
                self.runState { s, now in
                    s.work[key] = nil
                    return answered(&s.machine, result, now)
                }
            }
        }
    }

    private func sendBye(_ bye: SIPRequest, route: Machine.ByeRoute) {
        let callID = bye.headers.callID ?? ""
        switch route {
        case .connection(let source):
            source.send(SIPMessage.request(bye).serialized)
            logger.info("call hung up", metadata: ["call-id": "\(callID)"])
        case .transaction(let destination):
            let logger = self.logger
            Task {
                do {
                    let r = try await self.request(bye, to: destination)
                    logger.info("call hung up", metadata: ["call-id": "\(callID)", "bye": "\(r.code)"])
                } catch {
                    logger.info("BYE got no answer", metadata: ["call-id": "\(callID)", "error": "\(error)"])
                }
            }
        }
    }

    public static func makeTag() -> String {
        var rng = SystemRandomNumberGenerator()
        return String(rng.next() & 0xFFFF_FFFF_FFFF, radix: 36)
    }
}
