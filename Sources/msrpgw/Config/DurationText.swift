import Foundation

/// Durations in configuration: `250ms`, `30s`, `5m`, `2h`, `3d`, or a bare
/// number of seconds.
enum DurationText {
    static func parse(_ text: String) -> Duration? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            let number = t.dropLast(suffix.count)
            // "ms" ends in "s": make sure "5ms" is not read as "5m" + "s".
            if suffix == "s", number.hasSuffix("m") { continue }
            guard let v = Double(number), v >= 0, v.isFinite, v < 1e9 else { return nil }
            return .milliseconds(Int64((v * scale * 1000).rounded()))
        }
        guard let v = Double(t), v >= 0, v.isFinite, v < 1e9 else { return nil }
        return .milliseconds(Int64((v * 1000).rounded()))
    }
}

