import Foundation
import Logging
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
        let a = try ConfigTree.parse(toml: "[msrp]\nport = 1\n[routes]\n\"sip:a@b\" = \"https://x\"\n[api]\ntoken = \"t\"")
        let b = try ConfigTree.parse(toml: "[msrp]\nport = 2\n[routes]\n\"sip:a@b\" = \"https://y\"\n[sip]\nport = 5060")
        let changed = ConfigurationReload.changedKeys(a, b).map { $0.joined(separator: ".") }
        #expect(changed == ["api", "msrp.port", "routes.sip:a@b", "sip"])
        let later = ConfigurationReload.changedKeys(a, b).filter { key in !ConfigurationReload.reloadable.contains { key.starts(with: $0) } }
        #expect(later.map { $0.joined(separator: ".") } == ["api", "msrp.port", "sip"])
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
