import Events
import Foundation
import Gateway
import MSRP
import MSRPTransport
import NIOPosix
import Queue
import TestPeers

/// An adapter whose outcomes the test decides, per target; it records what it got.
public final class ScriptedAdapter: Adapter, @unchecked Sendable {
    public let name: String
    public let schemes: [String]
    public let concurrency = 8
    private let lock = NSLock()
    private var outcomes: [String: [DeliveryOutcome]] = [:]
    private(set) var deliveries: [QueuedEvent] = []
    private var held: Set<String> = []
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public init(name: String = "webhook", schemes: [String] = ["https"]) {
        self.name = name
        self.schemes = schemes
    }

    /// The outcomes for `target`, in order; the last one repeats. Default: delivered.
    public func script(_ target: String, _ list: [DeliveryOutcome]) { lock.withLock { outcomes[target] = list } }

    public var delivered: [QueuedEvent] { lock.withLock { deliveries } }

    /// Deliveries to `target` wait (after they are recorded) until `releaseHeld()`.
    public func hold(_ target: String) { lock.withLock { _ = held.insert(target) } }

    /// Lets every held delivery go, and the next ones to any target.
    public func releaseHeld() {
        let go = lock.withLock { defer { held = []; waiting = [] }; return waiting }
        for w in go { w.resume() }
    }

    public func deliver(_ event: QueuedEvent) async -> DeliveryOutcome {
        let wait = lock.withLock { held.contains(event.target) }
        if wait {
            lock.withLock { deliveries.append(event) }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = lock.withLock { () -> Bool in
                    if held.isEmpty { return true }
                    waiting.append(c)
                    return false
                }
                if now { c.resume() }
            }
            return .delivered(proof: "HTTP 204 (held)")
        }
        return lock.withLock {
            deliveries.append(event)
            var list = outcomes[event.target] ?? [.delivered(proof: "HTTP 204")]
            let next = list.first ?? .delivered(proof: "HTTP 204")
            if list.count > 1 { list.removeFirst() }
            outcomes[event.target] = list
            return next
        }
    }
}

/// A gateway on loopback with a scripted webhook adapter and a temporary queue:
/// the gateway tests' and the adapters' tests' in-process gateway.
public struct TestGateway {
    public let gateway: Gateway
    public let adapter: ScriptedAdapter
    public let queue: SQLiteEventQueue
    let run: Task<Void, Never>
    public let directory: String

    public static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    public init(routes: [String: [String]] = ["sip:ops@gw.example": ["https://hooks.test/ops"], "sip:both@gw.example": ["https://hooks.test/a", "https://hooks.test/b"]],
         defaultRoute: String? = nil, retry: RetryPolicy = RetryPolicy(schedule: [.zero], maxAttempts: 3, maxAge: .seconds(3600), jitter: false),
         inlineBodyLimit: Int = 256 * 1024, bindTimeout: Duration = .seconds(60), rooms: [String: ChatRoom] = [:]) async throws {
        directory = try Scratch.directory("gw")
        queue = try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: directory + "/q.sqlite", followUps: Reporter(), defaultRetry: retry))
        let endpoint = try MSRPEndpoint(
            // Connections bind at their first request, sent right after the
            // connect; a loaded run's first minute once starved a test past the
            // default 30 s in between, and its connection was closed.
            configuration: MSRPTransportConfiguration(
                assemblerLimits: ChunkAssemblerLimits(memoryThreshold: 64 * 1024, spoolDirectory: directory), bindTimeout: .seconds(600)),
            group: Self.group)
        try await endpoint.listen(host: "127.0.0.1", port: 0)
        adapter = ScriptedAdapter()
        var config = GatewayConfiguration(
            identity: "sip:gateway@gw.example", inlineBodyLimit: inlineBodyLimit, bodyDirectory: directory + "/bodies", defaultRoute: defaultRoute)
        config.sessionBindTimeout = bindTimeout
        config.rooms = rooms
        config.defaultDispatch = DispatchSettings(leaseBatch: 16, leaseDuration: .seconds(10), pollInterval: .milliseconds(50))
        gateway = try Gateway(configuration: config, queue: queue, endpoint: endpoint, adapters: [adapter], routes: routes)
        let g = gateway
        run = Task { await g.run() }
    }

    /// Stops the gateway; `keepingFiles` leaves the queue to be read (the caller removes `directory`).
    public func stop(keepingFiles: Bool = false) async {
        gateway.stop()
        await run.value
        gateway.closeAllSessions()
        await gateway.endpoint.shutdown()
        if !keepingFiles { try? FileManager.default.removeItem(atPath: directory) }
    }
}
