import Foundation
import TestPeers

/// The executables built beside the test bundle.
enum Executables {
    static var msrpgw: String { ProcessInfo.processInfo.environment["MSRPGW_BIN"] ?? built("msrpgw") }
    /// The queue crash tests' load generator (a test tool, not in the daemon).
    static var queueTorture: String { built("msrpgw-queue-torture") }
    /// A fast webhook receiver that counts what it gets (a test tool).
    static var webhookSink: String { built("msrpgw-webhook-sink") }

    private static func built(_ name: String) -> String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let p = candidate.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/" + name).path
    }
}

