import Foundation
import TOMLKit

/// A configuration document as plain values: TOML parsed into this, environment
/// overrides applied to it, then read into typed settings with errors that name
/// the key (`queue.max_attempts: expected an integer`).
indirect enum ConfigTree: Sendable, Equatable {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case array([ConfigTree])
    case table([String: ConfigTree])

    /// Parses TOML text.
    static func parse(toml text: String) throws(ConfigError) -> ConfigTree {
        try TOMLPrecheck.check(text)
        do {
            return ConfigTree(try TOMLTable(string: text))
        } catch let error as TOMLParseError {
            throw ConfigError("TOML: \(error.description) (line \(error.source.begin.line), column \(error.source.begin.column))")
        } catch {
            throw ConfigError("TOML: \(error)")
        }
    }

    init(_ table: TOMLTable) {
        var out: [String: ConfigTree] = [:]
        for key in table.keys {
            if let v = table[key] { out[key] = ConfigTree(value: v) }
        }
        self = .table(out)
    }

    init(value v: any TOMLValueConvertible) {
        switch v.type {
        case .table: self = v.table.map(ConfigTree.init) ?? .table([:])
        case .array: self = .array((v.array.map { Array($0) } ?? []).map { ConfigTree(value: $0) })
        case .string: self = .string(v.string ?? "")
        case .int: self = .int(v.int ?? 0)
        case .double: self = .double(v.double ?? 0)
        case .bool: self = .bool(v.bool ?? false)
        case .date, .time, .dateTime: self = .string(v.tomlValue.debugDescription)
        }
    }

    var tableValue: [String: ConfigTree]? { if case .table(let t) = self { return t } else { return nil } }

    subscript(path: [String]) -> ConfigTree? {
        var node: ConfigTree? = self
        for p in path { node = node?.tableValue?[p] }
        return node
    }

    /// Sets the value at `path`, creating tables on the way.
    mutating func set(_ path: [String], _ value: ConfigTree) {
        guard let first = path.first else {
            self = value
            return
        }
        var table = tableValue ?? [:]
        var child = table[first] ?? .table([:])
        child.set(Array(path.dropFirst()), value)
        table[first] = child
        self = .table(table)
    }

    var typeName: String {
        switch self {
        case .string: return "a string"
        case .int: return "an integer"
        case .double: return "a number"
        case .bool: return "a boolean"
        case .array: return "an array"
        case .table: return "a table"
        }
    }
}

/// A configuration that cannot be used, and why (the key and what is wrong).
struct ConfigError: Error, Sendable, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension ConfigTree {
    /// Applies `MSRPGW_<SECTION>_<KEY>` environment variables: each known key
    /// (given as its path) is looked up by its upper-cased name, and the value is
    /// read as a TOML value when it parses as one (`["a", "b"]`, `30`, `true`),
    /// else taken as a string. Returns the variables that applied.
    mutating func applyEnvironment(_ env: [String: String], keys: [[String]]) throws(ConfigError) -> [String] {
        var applied: [String] = []
        for path in keys {
            let name = "MSRPGW_" + path.map { $0.uppercased().replacingOccurrences(of: ".", with: "_").replacingOccurrences(of: "-", with: "_") }.joined(separator: "_")
            guard let raw = env[name] else { continue }
            set(path, try Self.parseValue(raw, variable: name))
            applied.append(name)
        }
        return applied
    }

    static func parseValue(_ raw: String, variable: String) throws(ConfigError) -> ConfigTree {
        if let t = try? ConfigTree.parse(toml: "v = " + raw), let v = t.tableValue?["v"] { return v }
        guard !raw.contains("\n") else { throw ConfigError("\(variable): a value on one line, or a TOML value") }
        return .string(raw)
    }
}
