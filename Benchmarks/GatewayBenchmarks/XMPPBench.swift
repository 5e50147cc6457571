import Crypto
import Events
import Foundation
import Gateway
import Logging
import MSRPTransport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Queue
import XMPPAdapter
import XMPPClient
import XMPPWire

/// MSRP → XMPP end to end: `msrpgw serve` (release) as a component of a local
/// Prosody, the MSRP load in its own process (64 sessions, one message in
/// flight each, for 10 s), messages counted as they reach an XMPP user (a raw
/// c2s client here, that sends no receipts: `receipt_wait = "0s"`, delivered at
/// the server's proof). The reference of the same run: the same number of the
/// same message stanzas pushed into the same Prosody down a raw component
/// connection, as fast as it takes them, counted the same way.
func benchXMPP() async throws {
    let build = repository + "/.build/release/"
    guard FileManager.default.isExecutableFile(atPath: build + "msrpgw") else {
        say("xmpp: needs `swift build -c release --product msrpgw`")
        return
    }
    guard let prosody = ["/usr/bin/prosody"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        say("xmpp: skipped, prosody is not installed (apt-get install prosody)")
        return
    }
    let dir = try scratch()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let (c2s, componentPort) = (try freeTCPPort(), try freeTCPPort())
    try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
    try """
        run_as_root = true
        data_path = "\(dir)/data"; pidfile = "\(dir)/prosody.pid"
        log = { { levels = { min = "error" }, to = "console" } }
        interfaces = { "127.0.0.1" }; c2s_ports = { \(c2s) }; component_ports = { \(componentPort) }; component_interface = "127.0.0.1"
        s2s_ports = { }; http_ports = { }; https_ports = { }; c2s_direct_tls_ports = { }
        modules_enabled = { "roster", "saslauth", "disco", "ping", "posix" }; modules_disabled = { "s2s", "tls" }
        c2s_require_encryption = false; allow_unencrypted_plain_auth = true; authentication = "internal_plain"
        VirtualHost "localhost"
        Component "msrp.localhost"
            component_secret = "benchsecret"
        Component "bench.localhost"
            component_secret = "benchsecret"
        """.write(toFile: dir + "/prosody.cfg.lua", atomically: true, encoding: .utf8)
    let (register, _) = try run("/usr/bin/prosodyctl", ["--config", dir + "/prosody.cfg.lua", "register", "reader", "localhost", "readerpw"])
    register.waitUntilExit()
    let (server, _) = try run(prosody, ["-F", "--config", dir + "/prosody.cfg.lua"], capture: false)
    defer { stop(server) }
    let reader = try await XMPPReader.connect(port: c2s, user: "reader", password: "readerpw")

    let apiPort = try freeTCPPort()
    try daemonConfiguration(dir: dir, apiPort: apiPort, extra: """
        [xmpp.local]
        host = "127.0.0.1"
        port = \(componentPort)
        domain = "msrp.localhost"
        secret = "benchsecret"
        receipt_wait = "0s"
        [routes]
        "sip:ops@gw.example" = ["xmpp:reader@localhost"]
        """).write(toFile: dir + "/msrpgw.toml", atomically: true, encoding: .utf8)
    let gw = try await startDaemon(build + "msrpgw", dir: dir)
    defer { stop(gw) }

    var ours: [Double] = [], acked: [Double] = [], reference: [Double] = [], cpu: [Double] = []
    let rounds = Int(ProcessInfo.processInfo.environment["XMPP_ROUNDS"] ?? "") ?? 3
    // XMPP_SESSIONS: the MSRP load's sessions, one message in flight each (64).
    let loadSessions = Int(ProcessInfo.processInfo.environment["XMPP_SESSIONS"] ?? "") ?? 64
    // XMPP_BACKLOG_ONLY=1: only the in-process backlog rounds (for a profile of the delivery path).
    let serveRounds = ProcessInfo.processInfo.environment["XMPP_BACKLOG_ONLY"] != nil ? 0 : rounds
    for round in 0..<serveRounds {
        let before = reader.count
        let (load, loadPipe) = try run(CommandLine.arguments[0], ["e2e-load", "http://127.0.0.1:\(apiPort)", "0", "10", String(loadSessions)])
        let loadOut = LineReader(loadPipe)
        guard loadOut.line(startingWith: "OPEN") != nil else { fatalError("the load did not start") }
        let usage0 = ProcessUsage.of(gw.processIdentifier)
        let t0 = ContinuousClock.now
        guard let result = loadOut.line(startingWith: "ACKED "), let n = Int(result.split(separator: " ")[1]) else { fatalError("the load failed") }
        load.waitUntilExit()
        // Delivered: every acknowledged message at the reader; the rate counts until the last one.
        let deadline = ContinuousClock.now + .seconds(120)
        while reader.count - before < n, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let elapsed = seconds(reader.lastArrival - t0)
        let usage1 = ProcessUsage.of(gw.processIdentifier)
        ours.append(Double(reader.count - before) / elapsed)
        acked.append(Double(n) / 10)
        cpu.append((usage1.cpuSeconds - usage0.cpuSeconds) / Double(max(n, 1)) * 1000)
        say(String(format: "xmpp: round %d: %d acknowledged (%.0f msg/s), %d delivered in %.1f s: %.0f msg/s, daemon CPU %.3f ms/msg",
                   round + 1, n, Double(n) / 10, reader.count - before, elapsed, ours[round], cpu[round]))

        // Reference: the same count of stanzas down a raw component connection.
        let stanzas = (0..<n).map { i in
            XMPPElement("message", namespace: XMPPNamespace.component, [
                "from": "load\(i % 64)\\40example.com@bench.localhost", "to": "reader@localhost", "type": "chat", "id": "r\(round)-\(i)",
            ], children: [
                XMPPElement("body", namespace: XMPPNamespace.component, text: "benchmark message with some text to make it a typical chat line"),
                XMPPElement("request", namespace: XMPPNamespace.receipts),
                XMPPElement("origin-id", namespace: XMPPNamespace.stanzaID, ["id": "o\(round)-\(i)"]),
            ])
        }
        let before2 = reader.count
        let t1 = ContinuousClock.now
        try await rawComponentPush(port: componentPort, domain: "bench.localhost", secret: "benchsecret", stanzas: stanzas)
        while reader.count - before2 < n, ContinuousClock.now < t1 + .seconds(120) { try await Task.sleep(for: .milliseconds(5)) }
        reference.append(Double(reader.count - before2) / seconds(reader.lastArrival - t1))
    }
    stop(gw)
    // The adapter's own capacity: a backlog drained by the dispatcher and the xmpp
    // adapter in this process (the daemon above is bound by its MSRP ingest).
    var drained: [Double] = []
    for round in 0..<rounds {
        let count = acked.isEmpty ? 20_000 : Int(median(acked) * 10)
        guard !reference.isEmpty || serveRounds == 0 else { break }
        drained.append(try await xmppBacklogRound(componentPort: componentPort, reader: reader, count: count, round: round, prosody: server.processIdentifier))
    }
    reader.close()
    guard serveRounds > 0 else { return }
    say(String(format: "xmpp: backlog of %.0f messages drained by the xmpp adapter in-process (dispatcher, SQLite queue, component connection): %.0f msg/s (runs: %@); ours/reference = %.2f",
               median(acked) * 10, median(drained), drained.map { String(format: "%.0f", $0) }.joined(separator: ", "), median(drained) / median(reference)))
    say(String(format: "xmpp: MSRP → XMPP, msrpgw serve + MSRP load (%d sessions, 1 in flight each, 10 s at full speed) + Prosody 0.12, each its own process; delivered to an XMPP user %.0f msg/s (runs: %@; acknowledged %@ msg/s; daemon CPU %@ ms/msg); raw component push of the same stanzas into the same Prosody (reference) %.0f msg/s (runs: %@); ours/reference = %.2f  [target >= 0.8]",
               loadSessions, median(ours), ours.map { String(format: "%.0f", $0) }.joined(separator: ", "), acked.map { String(format: "%.0f", $0) }.joined(separator: ", "),
               cpu.map { String(format: "%.3f", $0) }.joined(separator: ", "), median(reference),
               reference.map { String(format: "%.0f", $0) }.joined(separator: ", "), median(ours) / median(reference)))
}

/// One backlog of `count` chat messages for the XMPP user, drained by a gateway
/// in this process through the `xmpp` adapter; msg/s from start to the last arrival.
func xmppBacklogRound(componentPort: Int, reader: XMPPReader, count: Int, round: Int, prosody: Int32) async throws -> Double {
    let queueDir = try scratch()
    defer { try? FileManager.default.removeItem(atPath: queueDir) }
    let queue = try SQLiteEventQueue(SQLiteEventQueue.Configuration(path: queueDir + "/queue.sqlite", followUps: Reporter(), synchronous: .full))
    let endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group, logger: quiet)
    let component = XMPPComponent(configuration: XMPPComponentConfiguration(host: "127.0.0.1", port: componentPort, domain: "msrp.localhost", secret: "benchsecret"),
                                  group: group, logger: quiet)
    let componentTask = Task { await component.run() }
    let bridge = XMPPBridge(name: "local", component: component, addresses: XMPPAddressBook(domain: "msrp.localhost"), receiptWait: .zero)
    var config = GatewayConfiguration(identity: "sip:gateway@gw.example", bodyDirectory: queueDir + "/bodies")
    config.defaultDispatch = DispatchSettings(leaseBatch: 256, leaseDuration: .seconds(60), pollInterval: .milliseconds(100))
    let gateway = try Gateway(configuration: config, queue: queue, endpoint: endpoint, adapters: [XMPPAdapter(bridges: [bridge], batchSize: Int(ProcessInfo.processInfo.environment["XMPP_BATCH"] ?? "") ?? 256, logger: quiet)],
                              routes: ["sip:ops@gw.example": ["xmpp:reader@localhost"]], logger: quiet)
    var events: [NewEvent] = []
    for i in 0..<count {
        events.append(NewEvent(adapter: "xmpp", target: "xmpp:reader@localhost", origin: EventOrigin(sessionID: "b", messageID: "xmpp-\(round)-\(i)"),
                               envelope: EventEnvelope(from: "Load <sip:load\(i % 64)@example.com>", to: ["<sip:ops@gw.example>"], contentType: "text/plain"),
                               body: .inline(Array("benchmark message with some text to make it a typical chat line".utf8))))
    }
    for chunk in stride(from: 0, to: count, by: 1000) { _ = try await queue.enqueue(Array(events[chunk..<min(count, chunk + 1000)])) }
    while !component.isConnected { try await Task.sleep(for: .milliseconds(20)) }
    if ProcessInfo.processInfo.environment["XMPP_DIRECT"] != nil {
        // The component alone, no queue: batches of 256 through deliver().
        let b0 = reader.count
        let d0 = ContinuousClock.now
        for batch in stride(from: 0, to: count, by: 256) {
            let stanzas = (batch..<min(count, batch + 256)).map { i in
                XMPPElement("message", namespace: XMPPNamespace.component, ["from": "x@msrp.localhost", "to": "reader@localhost", "type": "chat", "id": "d\(round)-\(i)"],
                            children: [XMPPElement("body", namespace: XMPPNamespace.component, text: "benchmark message with some text to make it a typical chat line")])
            }
            _ = await component.deliver(stanzas, receiptWait: .zero)
        }
        while reader.count - b0 < count, ContinuousClock.now < d0 + .seconds(60) { try await Task.sleep(for: .milliseconds(5)) }
        say(String(format: "xmpp: direct component deliver(): %.0f msg/s", Double(reader.count - b0) / seconds(reader.lastArrival - d0)))
    }
    let before = reader.count
    let (ours0, prosody0) = (ProcessUsage.of(getpid()), ProcessUsage.of(prosody))
    let t0 = ContinuousClock.now
    let runTask = Task { await gateway.run() }
    let deadline = ContinuousClock.now + .seconds(120)
    while reader.count - before < count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
    let elapsed = seconds(reader.lastArrival - t0)
    let rate = Double(reader.count - before) / elapsed
    let (ours1, prosody1) = (ProcessUsage.of(getpid()), ProcessUsage.of(prosody))
    say(String(format: "xmpp: backlog round %d: %.0f msg/s; CPU: this process (gateway and reader) %.0f%%, Prosody %.0f%%", round + 1, rate,
               (ours1.cpuSeconds - ours0.cpuSeconds) / elapsed * 100, (prosody1.cpuSeconds - prosody0.cpuSeconds) / elapsed * 100))
    gateway.stop()
    await runTask.value
    componentTask.cancel()
    await componentTask.value
    await endpoint.shutdown()
    return rate
}

/// Connects as a component, hands the stanzas over in 64 KiB writes, and closes
/// once the server has answered a ping written after them.
func rawComponentPush(port: Int, domain: String, secret: String, stanzas: [XMPPElement]) async throws {
    let stream = try await RawXMPPStream.connect(port: port, header: "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='\(domain)'>")
    guard case .streamStart(let head) = try await stream.next(), let id = head["id"] else { fatalError("no stream header from the server") }
    let digest = Insecure.SHA1.hash(data: Array((id + secret).utf8)).map { String(format: "%02x", $0) }.joined()
    stream.write(Array("<handshake>\(digest)</handshake>".utf8))
    guard case .stanza(let ok) = try await stream.next(), ok.name == "handshake" else { fatalError("handshake refused") }
    var out: [UInt8] = []
    for s in stanzas {
        s.write(into: &out, inheritedNamespace: XMPPNamespace.component)
        if out.count >= 65_536 {
            stream.write(out)
            out.removeAll(keepingCapacity: true)
        }
    }
    out += Array("<iq type='get' id='done' from='\(domain)' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>".utf8)
    stream.write(out)
    while true {
        guard case .stanza(let s) = try await stream.next() else { break }
        if s.name == "iq", s["id"] == "done" { break }
    }
    stream.close()
}

/// An XMPP user that only counts the messages it gets: plain c2s (the bench
/// Prosody allows PLAIN without TLS), SASL PLAIN, bind, presence.
final class XMPPReader: @unchecked Sendable {
    private let stream: RawXMPPStream
    private let state = NIOLockedValueBox((count: 0, last: ContinuousClock.now))
    var count: Int { state.withLockedValue { $0.count } }
    var lastArrival: ContinuousClock.Instant { state.withLockedValue { $0.last } }

    private init(stream: RawXMPPStream) { self.stream = stream }

    static func connect(port: Int, user: String, password: String) async throws -> XMPPReader {
        let header = "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        var stream: RawXMPPStream?
        for _ in 0..<100 where stream == nil {
            stream = try? await RawXMPPStream.connect(port: port, header: header)
            if stream == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        guard let s = stream else { fatalError("prosody did not come up") }
        func stanza(_ name: String) async throws -> XMPPElement {
            while true {
                if case .stanza(let e) = try await s.next(), e.name == name { return e }
            }
        }
        _ = try await stanza("features")
        let auth = Data(([0] + Array(user.utf8) + [0] + Array(password.utf8))).base64EncodedString()
        s.write(Array("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>\(auth)</auth>".utf8))
        guard try await stanza("success").name == "success" else { fatalError("login refused") }
        s.restart(header: header)
        _ = try await stanza("features")
        s.write(Array("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench</resource></bind></iq>".utf8))
        _ = try await stanza("iq")
        s.write(Array("<presence/>".utf8))
        let reader = XMPPReader(stream: s)
        Task {
            while let event = try? await s.next() {
                if case .stanza(let e) = event, e.name == "message", e.child("body") != nil {
                    reader.state.withLockedValue { $0 = ($0.count + 1, .now) }
                }
            }
        }
        return reader
    }

    func close() { stream.close() }
}

/// A TCP connection that reads an XMPP stream with our parser: events one at a time.
final class RawXMPPStream: @unchecked Sendable {
    private let channel: any Channel
    private let events: AsyncThrowingStream<XMPPStreamParser.Event, any Error>
    private var iterator: AsyncThrowingStream<XMPPStreamParser.Event, any Error>.Iterator
    private let handler: Handler

    private init(channel: any Channel, handler: Handler, events: AsyncThrowingStream<XMPPStreamParser.Event, any Error>) {
        self.channel = channel
        self.handler = handler
        self.events = events
        self.iterator = events.makeAsyncIterator()
    }

    static func connect(port: Int, header: String) async throws -> RawXMPPStream {
        let (events, continuation) = AsyncThrowingStream<XMPPStreamParser.Event, any Error>.makeStream()
        let handler = Handler(continuation: continuation)
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) } }
            .connect(host: "127.0.0.1", port: port).get()
        let s = RawXMPPStream(channel: channel, handler: handler, events: events)
        s.write(Array(header.utf8))
        return s
    }

    func next() async throws -> XMPPStreamParser.Event? { try await iterator.next() }
    func write(_ bytes: [UInt8]) { channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil) }
    /// After SASL: a new stream on the same connection, read from its start.
    func restart(header: String) {
        channel.eventLoop.execute { self.handler.parser = XMPPStreamParser() }
        write(Array(header.utf8))
    }
    func close() { channel.close(promise: nil) }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var parser = XMPPStreamParser(limits: .init(maxStanzaBytes: 1 << 20))
        let continuation: AsyncThrowingStream<XMPPStreamParser.Event, any Error>.Continuation
        init(continuation: AsyncThrowingStream<XMPPStreamParser.Event, any Error>.Continuation) { self.continuation = continuation }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            do {
                for e in try parser.feed(unwrapInboundIn(data).readableBytesView) { continuation.yield(e) }
            } catch {
                continuation.finish(throwing: error)
            }
        }

        func channelInactive(context: ChannelHandlerContext) { continuation.finish() }
    }
}
