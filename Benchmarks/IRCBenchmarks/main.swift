// IRC benchmarks. Not tests: figures beside a reference measured in the same run.
// Usage: swift run -c release IRCBenchmarks
// parse: frame and parse a stream of server lines (tags, sources, numerics)
// on one core; the reference cuts the same lines into space-separated words
// with the standard library's split, no tags, no unescaping, no strings.
import Foundation
import IRCWire
import NIOCore

let sample = [
    "@time=2026-11-24T10:00:00.000Z;msgid=4f9a2c;account=alice :alice!alice@users.test PRIVMSG #ops :deploy of db1 finished in 42 s, all green",
    ":irc.test 353 msrpgw = #ops :msrpgw @alice bob carol dave",
    "PING :irc.test",
    "@time=2026-11-24T10:00:01.000Z;msgid=4f9a2d :bob!bob@users.test PRIVMSG #ops :thanks ✓",
    ":carol!c@users.test JOIN #ops",
    "@batch=x1;time=2026-11-24T10:00:02.000Z :irc.test NOTICE msrpgw :*** You are connected using TLS",
]
let linesPerRun = 2_000_000
let stream: ByteBuffer = {
    var b = ByteBuffer()
    for i in 0..<linesPerRun { b.writeString(sample[i % sample.count] + "\r\n") }
    return b
}()
let bytes = stream.readableBytes

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

@MainActor func parseRun() -> Double {
    var buffer = stream
    var framer = IRCLineFramer()
    var params = 0
    let t0 = ContinuousClock.now
    while let event = framer.next(&buffer) {
        if case .line(let line) = event, let (m, _) = try? IRCParser.parse(line) { params &+= m.params.count + m.tags.count }
    }
    let dt = seconds(ContinuousClock.now - t0)
    precondition(params > linesPerRun, "parsed nothing")
    return Double(linesPerRun) / dt
}

@MainActor func referenceRun() -> Double {
    var words = 0
    let t0 = ContinuousClock.now
    stream.withUnsafeReadableBytes { raw in
        for line in raw.split(separator: 0x0A) { words &+= line.split(separator: 0x20).count }
    }
    let dt = seconds(ContinuousClock.now - t0)
    precondition(words > linesPerRun)
    return Double(linesPerRun) / dt
}

_ = parseRun()
var ours: [Double] = []
var reference: [Double] = []
for _ in 0..<5 {
    ours.append(parseRun())
    reference.append(referenceRun())
}
print(String(format: "irc parse: %d server lines (%.0f MB, tags and sources), framed and parsed on one core: %.2f M lines/s (runs: %@); split into words (reference): %.2f M lines/s; parse/reference = %.2f  [target >= 2 M lines/s]",
             linesPerRun, Double(bytes) / 1e6, median(ours) / 1e6, ours.map { String(format: "%.2f", $0 / 1e6) }.joined(separator: ", "),
             median(reference) / 1e6, median(ours) / median(reference)))
