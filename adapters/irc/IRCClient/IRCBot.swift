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
        /// Deliveries waiting for their proof, by proof key: resumed with nil when
        /// proven, or with why not.
        var waiters: [String: (target: String, continuation: CheckedContinuation<String?, Never>)] = [:]
        var stopped = false
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

    /// Connects and keeps connecting until the task is cancelled.
    public func run() async {
        var delay = backoff.lowerBound
        while !Task.isCancelled {
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
            let pending = state.withLockedValue { s -> [CheckedContinuation<String?, Never>] in
                s.connection = nil
                defer { s.waiters = [:] }
                return s.waiters.values.map(\.continuation)
            }
            for w in pending { w.resume(returning: "the connection to \(name) was lost before the proof") }
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

    private func consume(_ c: IRCConnection) async {
        for await m in c.messages {
            switch m.command.uppercased() {
            case "PONG":
                if let token = m.params.last { resolve("pong:" + token) }
            case "PRIVMSG" where m.sourceParts?.nick == c.nick, "NOTICE" where m.sourceParts?.nick == c.nick:
                // Our own line echoed back (echo-message).
                if let target = m.params.first, let text = m.params.last { resolve("echo:\(target.lowercased()) \(text)") }
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

    private func resolve(_ key: String) {
        state.withLockedValue { $0.waiters.removeValue(forKey: key) }?.continuation.resume(returning: nil)
    }

    private func refuse(target: String, because reason: String) {
        let refused = state.withLockedValue { s -> [CheckedContinuation<String?, Never>] in
            let keys = s.waiters.filter { $0.value.target.lowercased() == target.lowercased() }.map(\.key)
            return keys.compactMap { s.waiters.removeValue(forKey: $0)?.continuation }
        }
        for k in refused { k.resume(returning: "the server refused it: \(reason)") }
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

    /// Sends `lines` to `target` and returns a proof once they have surely reached
    /// the server; throws when there is no connection or it broke before the proof.
    public func deliver(_ lines: [IRCMessage], waitForConnection: Duration = .seconds(10), proofTimeout: Duration = .seconds(30)) async throws -> String {
        guard let c = await connection(within: waitForConnection) else {
            throw IRCConnectionError("not connected to \(name)")
        }
        guard let last = lines.last, let target = last.params.first, let text = last.params.last else { return "nothing to send" }
        let echo = c.capabilities.contains("echo-message")
        let token = "msrpgw-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let key = echo ? "echo:\(target.lowercased()) \(text)" : "pong:" + token
        // The time-out is a child task cancelled as soon as the proof (or a refusal)
        // comes: one sleeping task per delivery would pile up at thousands a second.
        let failure: String? = await withTaskGroup(of: Void.self) { group in
            let result: String? = await withCheckedContinuation { k in
                state.withLockedValue { $0.waiters[key] = (target, k) }
                for l in lines { c.send(l) }
                if !echo { c.send(IRCMessage(command: "PING", params: [token])) }
                group.addTask { [state, name] in
                    guard (try? await Task.sleep(for: proofTimeout)) != nil else { return }
                    state.withLockedValue { $0.waiters.removeValue(forKey: key) }?.continuation
                        .resume(returning: "no \(echo ? "echo" : "PONG") from \(name) within \(proofTimeout)")
                }
            }
            group.cancelAll()
            return result
        }
        if let failure { throw IRCConnectionError(failure) }
        return echo ? "echoed by \(name)" : "written to \(name), PONG received"
    }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
