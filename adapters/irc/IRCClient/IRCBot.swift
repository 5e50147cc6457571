import IRCWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A connection to one IRC network that stays up: it reconnects with
/// exponential backoff and jitter, joins its channels (with their keys)
/// after each registration, rejoins after a kick after a delay, and delivers
/// lines with a proof: the echo of the last line when the server offers
/// `echo-message`, else the PONG to a PING sent after them (the lines were
/// written and the connection survived them).
public final class IRCBot: Sendable {
    public let name: String
    public let configuration: IRCClientConfiguration
    /// Channels to be in, with their keys.
    public let channels: [String: String?]
    private let group: any EventLoopGroup
    private let logger: Logger
    private let rejoinDelay: Duration
    private let backoff: ClosedRange<Duration>

    private struct State {
        var connection: IRCConnection?
        /// The proofs awaited, by proof key (`echo:<target> <text>` or `pong:<token>`),
        /// oldest first: the same line said twice is proven by two echoes.
        var waiters: [String: [Proof]] = [:]
        /// Batches of deliveries waiting for their proofs.
        var batches: [Int: PendingBatch] = [:]
        var nextBatch = 0
        var stopped = false
        /// Channels we are in now (RFC 1459 folded), from our own JOIN, PART and KICK.
        var joined: Set<String> = []

        /// Records how items ended (nil: proven) and returns the batches now complete.
        mutating func settle(_ items: [(Proof, String?)]) -> [(CheckedContinuation<[String?], Never>, [String?])] {
            var done: [(CheckedContinuation<[String?], Never>, [String?])] = []
            for (proof, failure) in items {
                guard var b = batches[proof.batch] else { continue }
                b.failures[proof.index] = failure
                b.remaining -= 1
                if b.remaining == 0 {
                    batches[proof.batch] = nil
                    done.append((b.continuation, b.failures))
                } else {
                    batches[proof.batch] = b
                }
            }
            return done
        }

        /// Takes every awaited proof that `matches` out of the table.
        mutating func take(where matches: (String, Proof) -> Bool) -> [Proof] {
            var taken: [Proof] = []
            for (key, proofs) in waiters {
                let (out, keep) = (proofs.filter { matches(key, $0) }, proofs.filter { !matches(key, $0) })
                guard !out.isEmpty else { continue }
                taken += out
                waiters[key] = keep.isEmpty ? nil : keep
            }
            return taken
        }
    }

    /// One delivery of a batch waiting for its proof.
    private struct Proof {
        let batch: Int
        let index: Int
        let target: String
    }

    private struct PendingBatch {
        var failures: [String?]
        var remaining: Int
        let continuation: CheckedContinuation<[String?], Never>
    }

    private let state = NIOLockedValueBox(State())
    /// Lines from the network (after registration), for the bridge.
    public let incoming: AsyncStream<IRCMessage>
    private let incomingContinuation: AsyncStream<IRCMessage>.Continuation

    public init(
        name: String, configuration: IRCClientConfiguration, channels: [String: String?], group: any EventLoopGroup,
        rejoinDelay: Duration = .seconds(5), backoff: ClosedRange<Duration> = .seconds(1)...(.seconds(120)),
        logger: Logger = Logger(label: "msrpgw.irc")
    ) {
        self.name = name
        self.configuration = configuration
        self.channels = channels
        self.group = group
        self.rejoinDelay = rejoinDelay
        self.backoff = backoff
        self.logger = logger
        (incoming, incomingContinuation) = AsyncStream<IRCMessage>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
    }

    /// Whether a registered connection is up now.
    public var isConnected: Bool { state.withLockedValue { $0.connection != nil } }
    public var nick: String? { state.withLockedValue { $0.connection?.nick } }
    /// The capabilities the server enabled on the connection up now (none when down).
    public var capabilities: Set<String> { state.withLockedValue { $0.connection?.capabilities ?? [] } }

    /// Connects and keeps connecting until the task is cancelled or `quit` is called.
    public func run() async {
        var delay = backoff.lowerBound
        while !Task.isCancelled, !state.withLockedValue({ $0.stopped }) {
            do {
                let c = try await IRCConnection.connect(configuration, group: group, logger: logger)
                delay = backoff.lowerBound
                for (channel, key) in channels.sorted(by: { $0.key < $1.key }) {
                    c.send(IRCMessage(command: "JOIN", params: key.map { [channel, $0] } ?? [channel]))
                }
                state.withLockedValue { $0.connection = c }
                await withTaskCancellationHandler {
                    await consume(c)
                } onCancel: {
                    c.close()
                }
                logger.warning("IRC connection lost", metadata: ["network": "\(name)"])
            } catch {
                logger.warning("IRC connect failed", metadata: ["network": "\(name)", "error": "\(error)", "retry-in": "\(delay)"])
            }
            let lost = "the connection to \(name) was lost before the proof"
            let pending = state.withLockedValue { s in
                s.connection = nil
                s.joined = []
                return s.settle(s.take { _, _ in true }.map { ($0, lost) })
            }
            for (k, failures) in pending { k.resume(returning: failures) }
            if state.withLockedValue({ $0.stopped }) { break }
            // Equal jitter: half the step, plus up to the other half at random, so a
            // server restart is not met by every bot at once, and never at once either.
            let half = max(1, delay.milliseconds / 2)
            let jittered = Duration.milliseconds(half + Int64.random(in: 0...half))
            do { try await Task.sleep(for: jittered) } catch { break }
            delay = min(delay * 2, backoff.upperBound)
        }
        state.withLockedValue { $0.stopped = true }
        incomingContinuation.finish()
    }

    /// Whether we are in `channel` now (a line sent to a channel we are not in is refused).
    public func isIn(_ channel: String) -> Bool {
        state.withLockedValue { $0.joined.contains(IRCChannelRoster.fold(channel)) }
    }

    private func consume(_ c: IRCConnection) async {
        for await m in c.messages {
            trackMembership(m, c)
            switch m.command.uppercased() {
            case "PONG":
                if let token = m.params.last { resolve("pong:" + token, all: true) }
            case "PRIVMSG" where isOurs(m, c), "NOTICE" where isOurs(m, c):
                // Our own line echoed back (echo-message).
                if let target = m.params.first, let text = m.params.last { resolve("echo:\(target.lowercased()) \(text)", all: false) }
            case "401", "403", "404", "442":
                // No such nick or channel, cannot send to the channel: what waits for
                // a proof for that target will not get one.
                if m.params.count >= 2 { refuse(target: m.params[1], because: "\(m.command) \(m.params.last ?? "")") }
            case "KICK" where m.params.count >= 2 && m.params[1] == c.nick:
                let channel = m.params[0]
                logger.warning("kicked from an IRC channel: rejoining later", metadata: ["network": "\(name)", "channel": "\(channel)", "in": "\(rejoinDelay)"])
                let key = channels[channel] ?? nil
                let delay = rejoinDelay
                Task {
                    try? await Task.sleep(for: delay)
                    c.send(IRCMessage(command: "JOIN", params: key.map { [channel, $0] } ?? [channel]))
                }
            default:
                break
            }
            incomingContinuation.yield(m)
        }
    }

    private func trackMembership(_ m: IRCMessage, _ c: IRCConnection) {
        let command = m.command.uppercased()
        guard ["JOIN", "PART", "KICK"].contains(command), let channels = m.params.first else { return }
        let ours = command == "KICK" ? m.params.count > 1 && m.params[1] == c.nick : m.sourceParts?.nick == c.nick
        guard ours else { return }
        state.withLockedValue { s in
            for channel in channels.split(separator: ",").map({ IRCChannelRoster.fold(String($0)) }) {
                if command == "JOIN" { s.joined.insert(channel) } else { s.joined.remove(channel) }
            }
        }
    }

    /// Leaves the network for good: QUIT with `reason`, and no reconnect
    /// (the task running `run` ends).
    public func quit(_ reason: String) async {
        let c = state.withLockedValue { s -> IRCConnection? in
            s.stopped = true
            return s.connection
        }
        await c?.quit(reason)
    }

    /// A line we sent, echoed: from our nick, or relayed for us (`draft/relaymsg`
    /// names the relaying nick in its tag; the source is the relayed name).
    private func isOurs(_ m: IRCMessage, _ c: IRCConnection) -> Bool {
        m.sourceParts?.nick == c.nick || m.tag("draft/relaymsg") == c.nick
    }

    /// A proof came: for the oldest delivery awaiting `key`, or for all of them (a PONG).
    private func resolve(_ key: String, all: Bool) {
        let done = state.withLockedValue { s -> [(CheckedContinuation<[String?], Never>, [String?])] in
            guard var proofs = s.waiters[key], !proofs.isEmpty else { return [] }
            let proven = all ? proofs : [proofs.removeFirst()]
            s.waiters[key] = all || proofs.isEmpty ? nil : proofs
            return s.settle(proven.map { ($0, nil) })
        }
        for (k, failures) in done { k.resume(returning: failures) }
    }

    private func refuse(target: String, because reason: String) {
        let done = state.withLockedValue { s in
            s.settle(s.take { _, p in p.target.lowercased() == target.lowercased() }.map { ($0, IRCConnectionError.refusal + reason) })
        }
        for (k, failures) in done { k.resume(returning: failures) }
    }

    /// The connection, waiting up to `timeout` for one (polled: a reconnect takes seconds anyway).
    private func connection(within timeout: Duration) async -> IRCConnection? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (c, stopped) = state.withLockedValue { ($0.connection, $0.stopped) }
            if let c { return c }
            if stopped || ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Sends `lines` (to one target) and returns a proof once they have surely
    /// reached the server; throws when there is no connection or it broke before the proof.
    public func deliver(_ lines: [IRCMessage], waitForConnection: Duration = .seconds(10), proofTimeout: Duration = .seconds(30)) async throws -> String {
        guard let result = try await deliver(batch: [lines], waitForConnection: waitForConnection, proofTimeout: proofTimeout).first else {
            return "nothing to send"
        }
        return try result.get()
    }

    /// Sends several deliveries back to back, in order (each a few lines to one
    /// target), and waits for all their proofs at once: one round trip for the
    /// batch. With `echo-message` each delivery is proven by the echo of its last
    /// line; without it one PING after the batch proves every line before it.
    /// Throws when there is no connection; a delivery whose proof does not come is
    /// a failure in its own result.
    public func deliver(
        batch: [[IRCMessage]], waitForConnection: Duration = .seconds(10), proofTimeout: Duration = .seconds(30)
    ) async throws -> [Result<String, IRCConnectionError>] {
        guard let c = await connection(within: waitForConnection) else {
            throw IRCConnectionError("not connected to \(name)")
        }
        let echo = c.capabilities.contains("echo-message")
        let token = "msrpgw-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        // What proves each delivery; nil for one with nothing to say.
        let keys: [(key: String, target: String)?] = batch.map { lines in
            guard let last = lines.last, let target = last.params.first, let text = last.params.last else { return nil }
            return (echo ? "echo:\(target.lowercased()) \(text)" : "pong:" + token, target)
        }
        let awaited = keys.compactMap { $0 }.count
        // Flood control holds lines back: the proof of the last can only come once
        // everything queued before it has been paced out.
        let lineCount = batch.reduce(0) { $0 + $1.count } + c.queuedLines
        let pacing = configuration.linesPerSecond > 0
            ? Duration.milliseconds(Int64(Double(max(0, lineCount - configuration.burst)) / configuration.linesPerSecond * 1000)) : .zero
        let proofTimeout = proofTimeout + pacing
        var failures = [String?](repeating: nil, count: batch.count)
        if awaited > 0 {
            // The time-out is a child task cancelled as soon as the batch settles:
            // one sleeping task per delivery would pile up at thousands a second.
            failures = await withTaskGroup(of: Void.self) { group in
                let failures: [String?] = await withCheckedContinuation { k in
                    let id = state.withLockedValue { s -> Int in
                        let id = s.nextBatch
                        s.nextBatch += 1
                        s.batches[id] = PendingBatch(failures: .init(repeating: nil, count: batch.count), remaining: awaited, continuation: k)
                        for (i, key) in keys.enumerated() {
                            if let key { s.waiters[key.key, default: []].append(Proof(batch: id, index: i, target: key.target)) }
                        }
                        return id
                    }
                    for lines in batch { for l in lines { c.send(l) } }
                    if !echo { c.send(IRCMessage(command: "PING", params: [token])) }
                    group.addTask { [state, name] in
                        guard (try? await Task.sleep(for: proofTimeout)) != nil else { return }
                        let why = "no \(echo ? "echo" : "PONG") from \(name) within \(proofTimeout)"
                        let done = state.withLockedValue { s in s.settle(s.take { _, p in p.batch == id }.map { ($0, why) }) }
                        for (k, failures) in done { k.resume(returning: failures) }
                    }
                }
                group.cancelAll()
                return failures
            }
        }
        let proof = echo ? "echoed by \(name)" : "written to \(name), PONG received"
        return zip(keys, failures).map { key, failure in
            if let failure { return .failure(IRCConnectionError(failure)) }
            return .success(key == nil ? "nothing to send" : proof)
        }
    }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
