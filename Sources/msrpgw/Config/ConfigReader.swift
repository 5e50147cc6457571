import Admission
import Foundation

/// Reads typed values out of one table of a `ConfigTree`, and remembers which
/// keys it read, so that a key nobody reads (a typo) is an error, not silence.
struct ConfigReader {
    let section: String
    let table: [String: ConfigTree]
    private(set) var seen: Set<String> = []

    init(_ tree: ConfigTree, section: String) throws(ConfigError) {
        self.section = section
        guard let node = tree[section.split(separator: ".").map(String.init)] else {
            self.table = [:]
            return
        }
        guard let t = node.tableValue else { throw ConfigError("\(section): expected a table, found \(node.typeName)") }
        self.table = t
    }

    private func key(_ k: String) -> String { section.isEmpty ? k : "\(section).\(k)" }

    mutating func value(_ k: String) -> ConfigTree? {
        seen.insert(k)
        return table[k]
    }

    mutating func string(_ k: String) throws(ConfigError) -> String? {
        guard let v = value(k) else { return nil }
        guard case .string(let s) = v else { throw ConfigError("\(key(k)): expected a string, found \(v.typeName)") }
        return s
    }

    mutating func string(_ k: String, default d: String) throws(ConfigError) -> String { try string(k) ?? d }

    /// A secret: `k` in the file, or `k_file` naming a file that holds it (a
    /// trailing newline dropped). A relative `k_file` is looked up in
    /// `$CREDENTIALS_DIRECTORY` when systemd set it (`LoadCredential=`), so
    /// secrets stay out of the configuration and the environment.
    mutating func secret(_ k: String) throws(ConfigError) -> String? {
        let inline = try string(k)
        guard let path = try string(k + "_file") else { return inline }
        guard inline == nil else { throw ConfigError("\(key(k)) and \(key(k + "_file")): give one of them") }
        return try Self.readSecretFile(path, key: key(k + "_file")).trimmingCharacters(in: .newlines)
    }

    /// Secrets (a list): `k`, or `k_file` with one secret per line.
    mutating func secrets(_ k: String) throws(ConfigError) -> [String]? {
        let inline = try strings(k)
        guard let path = try string(k + "_file") else { return inline }
        guard inline == nil else { throw ConfigError("\(key(k)) and \(key(k + "_file")): give one of them") }
        return try Self.readSecretFile(path, key: key(k + "_file")).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func readSecretFile(_ path: String, key: String,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> String {
        var full = path
        if !path.hasPrefix("/"), let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty {
            full = directory + "/" + path
        }
        guard let data = FileManager.default.contents(atPath: full) else {
            throw ConfigError("\(key): cannot read \(full) (missing, or not readable by this user)")
        }
        guard data.count <= 64 << 10, let text = String(data: data, encoding: .utf8) else {
            throw ConfigError("\(key): \(full) is not a secret (UTF-8 text up to 64 KiB)")
        }
        return text
    }

    mutating func int(_ k: String, default d: Int, in range: ClosedRange<Int> = Int.min...Int.max) throws(ConfigError) -> Int {
        guard let v = value(k) else { return d }
        guard case .int(let n) = v else { throw ConfigError("\(key(k)): expected an integer, found \(v.typeName)") }
        guard range.contains(n) else { throw ConfigError("\(key(k)): \(n) is outside \(range.lowerBound)...\(range.upperBound)") }
        return n
    }

    /// The port of a listener that is off unless configured: absent or 0 is
    /// off, a number is that port, and "any" is a port the system picks when it
    /// binds (returned as 0; `serve --ports-file` reports which).
    mutating func optionalListenerPort(_ k: String) throws(ConfigError) -> Int? {
        guard let v = value(k) else { return nil }
        switch v {
        case .string("any"): return 0
        case .int(0): return nil
        case .int(let n) where (1...65535).contains(n): return n
        case .int(let n): throw ConfigError("\(key(k)): \(n) is outside 0...65535")
        default: throw ConfigError("\(key(k)): expected a port (1-65535), 0 for off or \"any\", found \(v.typeName)")
        }
    }

    mutating func bool(_ k: String, default d: Bool) throws(ConfigError) -> Bool {
        guard let v = value(k) else { return d }
        guard case .bool(let b) = v else { throw ConfigError("\(key(k)): expected true or false, found \(v.typeName)") }
        return b
    }

    /// A listener's `max_connections` and `max_connections_per_source`.
    mutating func connectionLimits(default d: ConnectionLimits) throws(ConfigError) -> ConnectionLimits {
        let all = try int("max_connections", default: d.perListener, in: 1...1_000_000)
        let perSource = try int("max_connections_per_source", default: d.perSource, in: 1...1_000_000)
        return ConnectionLimits(perListener: all, perSource: min(perSource, all))
    }

    /// A rate limit from `<rateKey>` (a second; 0: none) and `<burstKey>`.
    mutating func rateLimit(_ rateKey: String, burst burstKey: String, default d: RateLimit?) throws(ConfigError) -> RateLimit? {
        let rate = try int(rateKey, default: Int(d?.rate ?? 0), in: 0...1_000_000)
        let burst = try int(burstKey, default: Int(d?.burst ?? Double(rate * 2)), in: 0...10_000_000)
        guard rate > 0 else { return nil }
        return RateLimit(rate: Double(rate), burst: Double(max(burst, 1)))
    }

    /// A list of address blocks (`10.0.0.0/8`, `::1`).
    mutating func cidrs(_ k: String) throws(ConfigError) -> [CIDR]? {
        guard let texts = try strings(k) else { return nil }
        return try texts.map { t throws(ConfigError) in
            guard let c = CIDR(t) else { throw ConfigError("\(key(k)): \(t.debugDescription) is not an address block (like 10.0.0.0/8 or ::1)") }
            return c
        }
    }

    /// A time-out: a duration of at least `minimum`.
    mutating func timeout(_ k: String, default d: Duration, minimum: Duration = .milliseconds(100)) throws(ConfigError) -> Duration {
        let t = try duration(k, default: d)
        let ms = minimum.components.seconds * 1000 + minimum.components.attoseconds / 1_000_000_000_000_000
        guard t >= minimum else { throw ConfigError("\(key(k)): at least \(ms)ms") }
        return t
    }

    mutating func duration(_ k: String, default d: Duration) throws(ConfigError) -> Duration {
        guard let v = value(k) else { return d }
        switch v {
        case .int(let n) where n >= 0: return .seconds(n)
        case .string(let s):
            guard let parsed = DurationText.parse(s) else {
                throw ConfigError("\(key(k)): \(s.debugDescription) is not a duration (like 250ms, 30s, 5m, 2h, 3d)")
            }
            return parsed
        default: throw ConfigError("\(key(k)): expected a duration (like \"30s\"), found \(v.typeName)")
        }
    }

    /// A list of strings; a single string counts as a list of one.
    mutating func strings(_ k: String) throws(ConfigError) -> [String]? {
        guard let v = value(k) else { return nil }
        switch v {
        case .string(let s): return [s]
        case .array(let items):
            var out: [String] = []
            for item in items {
                guard case .string(let s) = item else { throw ConfigError("\(key(k)): expected strings, found \(item.typeName)") }
                out.append(s)
            }
            return out
        default: throw ConfigError("\(key(k)): expected a list of strings, found \(v.typeName)")
        }
    }

    mutating func table(_ k: String) throws(ConfigError) -> [String: ConfigTree]? {
        guard let v = value(k) else { return nil }
        guard let t = v.tableValue else { throw ConfigError("\(key(k)): expected a table, found \(v.typeName)") }
        return t
    }

    /// Throws for keys present that were never read.
    func finish() throws(ConfigError) {
        let unknown = Set(table.keys).subtracting(seen).sorted()
        guard unknown.isEmpty else {
            throw ConfigError("unknown key\(unknown.count > 1 ? "s" : "") \(unknown.map { key($0) }.joined(separator: ", "))")
        }
    }
}
