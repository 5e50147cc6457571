// MSRP benchmarks. Not tests: they print figures beside a reference measured in
// the same run. Usage: swift run -c release MSRPBenchmarks [NAME ...]
// Names: parse-small, parse-large, loopback, latency, receive-1gib (default: all).
import Foundation

let all = ["parse-small", "parse-large", "loopback", "latency", "receive-1gib"]
let chosen = CommandLine.arguments.dropFirst().isEmpty ? all : Array(CommandLine.arguments.dropFirst())
if chosen.count > 1 || chosen == all { Harness.print("machine: \(Harness.machineLine())") }
for name in chosen {
    switch name {
    case "parse-small": ParserBenchmarks.runSmallSends()
    case "parse-large": ParserBenchmarks.runLargeBodies()
    case "loopback": try await TransportBenchmarks.runLoopback()
    case "receive-1gib" where chosen.count > 1:
        // Peak RSS is per process: measure it in a fresh one.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["receive-1gib"]
        try child.run()
        child.waitUntilExit()
    case "receive-1gib": try await TransportBenchmarks.runOneGiB()
    case "latency": try await LatencyBenchmark.run()
    default: Harness.print("unknown benchmark \(name); known: \(all.joined(separator: " "))")
    }
}
