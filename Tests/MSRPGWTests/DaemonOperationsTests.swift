import Dispatch
import Foundation
import Logging
import NIOPosix
import Testing

@testable import msrpgw

/// The pieces of the daemon's operations that need no process: JSON log
/// lines, the keys a reload names as needing a restart, the notify settings.
@Suite struct DaemonOperationsTests {
    @Test func jsonLineEscapesAndKeepsStableKeys() throws {
        let line = JSONLogHandler.line(
            time: Date(timeIntervalSince1970: 0), level: .warning, label: "msrpgw", message: "a \"quoted\"\nline\u{1B}[2J\u{85}",
            metadata: ["message": "shadow", "peer": .array(["a", .dictionary(["k": "v\\"])]), "n": .stringConvertible(42)])
        #expect(line == #"{"time":"1970-01-01T00:00:00.000Z","level":"warning","logger":"msrpgw","message":"a \"quoted\"\nline\u001b[2J\u0085","meta_message":"shadow","n":"42","peer":["a",{"k":"v\\"}]}"#)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "a \"quoted\"\nline\u{1B}[2J\u{85}")
    }

    @Test func reloadNamesChangedKeys() throws {
        let a = try ConfigTree.parse(toml: "[msrp]\nport = 1\n[routes]\n\"sip:a@b\" = \"https://x\"\n[api]\ntoken = \"t\"\n[smtp.inbound]\nport = 1\nsecrets = [\"a\"]")
        let b = try ConfigTree.parse(toml: "[msrp]\nport = 2\n[routes]\n\"sip:a@b\" = \"https://y\"\n[sip]\nport = 5060\n[smtp.inbound]\nport = 2\nsecrets = [\"b\"]")
        let changed = ConfigurationReload.changedKeys(a, b).map { $0.joined(separator: ".") }
        #expect(changed == ["api", "msrp.port", "routes.sip:a@b", "sip", "smtp.inbound.port", "smtp.inbound.secrets"])
        let later = ConfigurationReload.changedKeys(a, b).filter(ConfigurationReload.needsRestart)
        #expect(later.map { $0.joined(separator: ".") } == ["api", "msrp.port", "sip", "smtp.inbound.port"])
    }

    @Test func notifySettingsFromTheEnvironment() {
        #expect(!SystemdNotifier(environment: [:]).isActive)
        #expect(!SystemdNotifier(environment: ["NOTIFY_SOCKET": "relative/path"]).isActive)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "@abstract"]).isActive)
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "30000000"]).watchdogInterval == .seconds(30))
        // A watchdog meant for another process (WATCHDOG_PID) is not ours.
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"]).watchdogInterval == nil)
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "zero"]).watchdogInterval == nil)
    }
}

/// The watchdog withholds `WATCHDOG=1` when the queue or an event loop does not
/// answer in time, and says which.
@Suite struct WatchdogCheckTests {
    /// Its own loops for each test: one test blocks a loop.
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    func watchdog(interval: Duration = .seconds(2), readQueue: @escaping @Sendable () async -> Void) -> WatchdogService {
        WatchdogService(notifier: SystemdNotifier(environment: [:]), interval: interval, readQueue: readQueue,
                        status: { "ok" }, loops: group.makeIterator().map { $0 }, logger: Logger(label: "test"))
    }

    @Test func healthyWhenAllAnswer() async throws {
        // A long interval: on a loaded machine a task may wait a while for a thread.
        #expect(await watchdog(interval: .seconds(60), readQueue: {}).check() == nil)
        try await group.shutdownGracefully()
    }

    @Test func aWedgedQueueIsNamed() async throws {
        let problem = await watchdog(readQueue: { try? await Task.sleep(for: .seconds(5)) }).check()
        #expect(problem?.hasPrefix("the queue did not answer a read within") == true, "\(problem ?? "nil")")
        try await group.shutdownGracefully()
    }

    @Test func aBlockedEventLoopIsNamed() async throws {
        let loops = group.makeIterator().map { $0 }
        // The second loop is busy until the check has given its verdict.
        let held = DispatchSemaphore(value: 0)
        loops[1].execute { held.wait() }
        let problem = await watchdog(readQueue: {}).check()
        held.signal()
        #expect(problem?.hasPrefix("event loop 1 did not run a task within") == true, "\(problem ?? "nil")")
        try await group.shutdownGracefully()
    }
}
