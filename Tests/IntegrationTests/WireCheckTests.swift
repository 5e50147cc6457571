import Foundation
import Testing
import TestPeers

/// What msrpgw sends, captured on loopback, decodes in tshark's MSRP dissector
/// without malformed-packet warnings. Both ends are real msrpgw processes.
/// Messages are kept small: tshark does not reassemble MSRP across TCP segments.
@Suite(.serialized) struct WireCheckTests {
    @Test(.enabled(if: Peers.available("tshark"), "needs tshark (Debian package tshark)"))
    func tsharkDecodesOurMSRP() async throws {
        let tshark = try Peers.require("tshark", package: "tshark")
        let port = try freePort()
        let dir = try Scratch.directory("wire")
        let pcap = dir + "/capture.pcap"

        let capture = try ChildProcess(tshark, ["-i", "lo", "-f", "tcp port \(port)", "-w", pcap], name: "tshark")
        defer { capture.stop() }
        try await capture.waitFor("Capturing on", in: \.stderr)

        let receiver = try ChildProcess(Executables.msrpgw, ["receive", "--port", "\(port)", "--session", "wirecheck01"], name: "msrpgw receive")
        defer { receiver.stop() }
        try await receiver.waitFor("listening")

        let texts = ["hello tshark", "second message with ✓ UTF-8", String(repeating: "chunked-", count: 200)]
        let sender = try ChildProcess(Executables.msrpgw, [
            "send", "--to", "msrp://127.0.0.1:\(port)/wirecheck01;tcp", "--success-report", "--chunk-size", "1000", "--wait", "0.5",
        ] + texts.flatMap { ["--text", $0] }, name: "msrpgw send")
        let status = try await sender.wait()
        #expect(status == 0, "send failed: \(sender.stderr)")
        #expect(sender.stdout.components(separatedBy: ": accepted").count - 1 == 3, "\(sender.stdout)")
        #expect(sender.stdout.components(separatedBy: "000 200 OK").count - 1 == 3, "no success REPORTs: \(sender.stdout)")
        #expect(receiver.stdout.contains("hello tshark"))

        try await Task.sleep(for: .milliseconds(500))
        capture.signal(SIGINT)
        _ = try await capture.wait()

        // Every TCP segment that holds a whole PDU ("MSRP ..." through its end-line)
        // decodes as MSRP. (tshark decodes only the first MSRP PDU of a segment and
        // does not reassemble: a chunk written in two pieces, as happens when the
        // socket fills under load, leaves both segments undecoded: no fault of ours.)
        let decoded = try await runTshark(tshark, ["-r", pcap, "-Y", "msrp", "-T", "fields", "-e", "frame.number", "-e", "msrp.request.line", "-e", "msrp.response.line"])
        // (A TCP retransmission repeats bytes already decoded; tshark does not decode them again.)
        let segments = try await runTshark(tshark, [
            "-r", pcap, "-Y", "tcp.len > 4 && tcp.payload[0:5] == 4d:53:52:50:20 && tcp.payload contains 0d:0a:2d:2d:2d:2d:2d:2d:2d && !tcp.analysis.retransmission",
            "-T", "fields", "-e", "frame.number",
        ])
        let decodedFrames = Set(decoded.split(separator: "\n").compactMap { $0.split(separator: "\t").first.map(String.init) })
        let payloadFrames = Set(segments.split(separator: "\n").map(String.init))
        #expect(!payloadFrames.isEmpty)
        #expect(payloadFrames == decodedFrames, "segments not decoded as MSRP: \(payloadFrames.subtracting(decodedFrames))\n\(decoded)")
        let lines = decoded.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.contains(" SEND") }.count >= 4, "\(decoded)")
        #expect(lines.filter { $0.contains(" 200 OK") }.count >= 4, "\(decoded)")
        // The three REPORTs, counted in the bytes: each may share a segment with
        // the 200 before it (both written in one loop tick, flushed once), and
        // tshark decodes only a segment's first PDU.
        let payloads = try await runTshark(tshark, ["-r", pcap, "-Y", "tcp.len > 0 && !tcp.analysis.retransmission", "-T", "fields", "-e", "tcp.payload"])
        let reports = payloads.split(separator: "\n").map { String(decoding: hexBytes($0), as: UTF8.self) }
            .map { $0.components(separatedBy: " REPORT\r\n").count - 1 }.reduce(0, +)
        // (A segment a REPORT begins is held to decoding by the check above.)
        #expect(reports == 3, "REPORT requests on the wire: \(reports)\n\(decoded)")
        let malformed = try await runTshark(tshark, ["-r", pcap, "-Y", "_ws.malformed || msrp && _ws.expert.severity >= warning"])
        #expect(malformed.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "tshark flags: \(malformed)")
    }

}

/// The bytes of tshark's hex field (with or without colons between them).
func hexBytes(_ hex: Substring) -> [UInt8] {
    let digits = Array(hex.utf8.filter { $0 != UInt8(ascii: ":") })
    return stride(from: 0, to: digits.count - 1, by: 2).compactMap { UInt8(String(decoding: digits[$0...$0 + 1], as: UTF8.self), radix: 16) }
}

/// Runs tshark (reading a capture, say) and returns what it printed.
func runTshark(_ tshark: String, _ args: [String]) async throws -> String {
    // Awaited by polling (ChildProcess): no thread held in Foundation's
    // waitUntilExit, which runs a run loop on the calling thread until the exit.
    let p = try ChildProcess(tshark, args, name: "tshark")
    _ = try await p.wait(timeout: .seconds(120))
    return p.stdout
}

/// The two commands a newcomer runs work: `msrpgw demo` shows a message flowing
/// end to end; `msrpgw msrp-demo` shows the bare transport.
@Suite struct DemoCommandTests {
    @Test func gatewayDemoShowsTheWholeFlow() async throws {
        let dir = Scratch.path("demo")
        let demo = try ChildProcess(Executables.msrpgw, ["demo", "--data-dir", dir], name: "msrpgw demo")
        let status = try await demo.wait(timeout: .seconds(60))
        #expect(status == 0, "\(demo.stdout)\n\(demo.stderr)")
        let out = demo.stdout
        #expect(out.contains("[sink] POST /ok"), "\(out)")
        #expect(out.contains("signature valid"))
        #expect(out.contains("REPORT for hello-ops: 000 200"))
        #expect(out.contains("IMDN delivered for imdn-hello-ops"))
        #expect(out.contains("REPORT for hello-broken: 000 400"))
        #expect(out.contains("rejected(code: 403"))
        #expect(out.contains("message (text/plain;charset=UTF-8, system): Maintenance at 22:00 UTC"))
        #expect(out.hasSuffix("demo done\n"))
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func transportDemoShowsMessagesReportsAndChunks() async throws {
        let demo = try ChildProcess(Executables.msrpgw, ["msrp-demo"], name: "msrpgw msrp-demo")
        let status = try await demo.wait(timeout: .seconds(60))
        #expect(status == 0, "\(demo.stderr)")
        let out = demo.stdout
        #expect(out.contains("[receiver] received message"))
        #expect(out.contains("102400 bytes application/octet-stream"))
        #expect(out.components(separatedBy: "REPORT for").count - 1 == 3, "\(out)")
        #expect(out.contains("system message (Failure-Report: no)") && out.contains(": sent"))
        #expect(out.contains("demo done"))
    }
}
