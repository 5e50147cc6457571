import Foundation

/// Runs a measurement several times and reports the median: these machines are
/// shared and noisy, so single runs mean little and ratios to a reference
/// measured in the same run mean most.
enum Harness {
    /// Results are added here so the optimiser cannot drop the work that made them.
    nonisolated(unsafe) static var sink = 0
    /// Repetitions per measurement (BENCH_RUNS overrides; profiling uses 1).
    static let runs = Int(ProcessInfo.processInfo.environment["BENCH_RUNS"] ?? "") ?? 7

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Times `body` `runs` times; returns the median seconds.
    static func time(runs: Int, _ body: () throws -> Void) rethrows -> Double {
        var samples: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return median(samples)
    }

    static func print(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func format(_ x: Double) -> String {
        if x >= 1e9 { return String(format: "%.2f G", x / 1e9) }
        if x >= 1e6 { return String(format: "%.2f M", x / 1e6) }
        if x >= 1e3 { return String(format: "%.1f k", x / 1e3) }
        return String(format: "%.1f", x)
    }

    /// Peak resident set size of this process (VmHWM), in bytes.
    static func peakRSS() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }

    static func machineLine() -> String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        return "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpu), \(ProcessInfo.processInfo.physicalMemory >> 30) GiB"
    }
}
