import Logging
import Synchronization

/// The log level every handler of the process reads on each record, so that
/// a configuration reload (SIGHUP) changes it for loggers already made.
final class LogLevelControl: Sendable {
    static let shared = LogLevelControl()

    private let raw = Atomic<UInt8>(LogLevelControl.code(.info))

    var level: Logger.Level {
        get { Self.levels[Int(raw.load(ordering: .relaxed))] }
        set { raw.store(Self.code(newValue), ordering: .relaxed) }
    }

    private static let levels = Logger.Level.allCases

    private static func code(_ level: Logger.Level) -> UInt8 { UInt8(levels.firstIndex(of: level) ?? 2) }
}

/// How log records are written (`gateway.log_format`).
enum LogFormat: String, Sendable {
    /// One line per record: time, level, label, message, metadata (for people).
    case text
    /// One JSON object per line (for journald, Loki and other collectors).
    case json
}
