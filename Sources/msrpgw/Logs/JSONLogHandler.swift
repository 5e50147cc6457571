import Foundation
import Logging

/// `log_format = "json"`: one JSON object per line on standard error, for
/// journald, Loki and the like. Stable keys: `time` (RFC 3339, UTC,
/// milliseconds), `level`, `logger`, `message`; then each metadata key at the
/// top level (one named like a stable key gets a `meta_` prefix). Values are
/// strings, arrays or objects; control characters are escaped as JSON wants.
struct JSONLogHandler: LogHandler {
    let label: String
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    var logLevel: Logger.Level {
        get { LogLevelControl.shared.level }
        // One level for the process: set through the control (the configuration).
        set {}
    }

    init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let own = event.metadata { all.merge(own) { _, new in new } }
        var line = Self.line(time: Date(), level: event.level, label: label, message: event.message.description, metadata: all)
        line.append("\n")
        line.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return }
            // One write per record: lines from several threads never interleave.
            var offset = 0
            while offset < bytes.count {
                let n = write(2, base + offset, bytes.count - offset)
                if n <= 0 { if n < 0 && errno == EINTR { continue } else { return } }
                offset += n
            }
        }
    }

    static let stableKeys: Set<String> = ["time", "level", "logger", "message"]

    static func line(time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var out = "{\"time\":"
        appendString(timestamp(time), to: &out)
        out += ",\"level\":"
        appendString(level.rawValue, to: &out)
        out += ",\"logger\":"
        appendString(label, to: &out)
        out += ",\"message\":"
        appendString(message, to: &out)
        for key in metadata.keys.sorted() {
            out += ","
            appendString(stableKeys.contains(key) ? "meta_" + key : key, to: &out)
            out += ":"
            // Sorted keys above; each value whole.
            appendValue(metadata[key] ?? .string(""), to: &out)
        }
        out += "}"
        return out
    }

    private static func appendValue(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let s): appendString(s, to: &out)
        case .stringConvertible(let c): appendString(c.description, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                appendValue(item, to: &out)
            }
            out += "]"
        case .dictionary(let d):
            out += "{"
            for (i, key) in d.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                appendString(key, to: &out)
                out += ":"
                appendValue(d[key] ?? .string(""), to: &out)
            }
            out += "}"
        }
    }

    /// A JSON string (RFC 8259 §7): quote, backslash and the C0 controls escaped;
    /// DEL and C1 controls too, so that no terminal acts on a log line.
    static func appendString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value):
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    private static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
    }
}
