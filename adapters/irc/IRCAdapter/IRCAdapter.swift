import Events
import Foundation
import Gateway
import IRCClient
import IRCWire
import Logging

/// Delivers events to IRC channels and nicks through one bot connection per
/// configured network: a chat message as `<alice> text` (PRIVMSG), or as
/// `RELAYMSG` from `alice/msrp` when the server offers `draft/relaymsg`; a system
/// message as a NOTICE; each line of the text split to fit the server's line
/// length. Events go a batch at a time: their lines written back to back in
/// queue order, then all their proofs (echoes, or one PONG) awaited together.
/// When the network is down the events wait and retry (nothing is lost while it
/// reconnects).
public final class IRCAdapter: BatchAdapter {
    /// Who speaks for an MSRP participant on IRC: its own connection (a puppet).
    public typealias PuppetLookup = @Sendable (_ sender: String, _ network: String) -> IRCBot?

    public let name = "irc"
    public let schemes = ["irc", "ircs"]
    /// Events in flight, all networks together (one batch per network at a time
    /// keeps the lines of a channel in order).
    public var concurrency: Int { batchSize * 4 }
    public let batchSize: Int
    private let bots: [String: IRCBot]
    private let maxLines: [String: Int]
    private let puppets: PuppetLookup?
    private let logger: Logger

    /// - Parameters:
    ///   - maxLines: per network, the most lines one message becomes (10 when not given).
    ///   - batchSize: the most events written before their proofs are awaited.
    ///   - puppets: the puppet connection of a sender (CPIM From) on a network, if it has one.
    public init(bots: [IRCBot], maxLines: [String: Int] = [:], batchSize: Int = 256, puppets: PuppetLookup? = nil,
                logger: Logger = Logger(label: "msrpgw.irc")) {
        self.bots = Dictionary(bots.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.maxLines = maxLines
        self.puppets = puppets
        self.batchSize = max(1, batchSize)
        self.logger = logger
    }

    /// A network's channels and nicks share its bot connection: a network that
    /// is down or slow holds back only its own batches.
    public func endpoint(of target: String) -> String { IRCTarget(target).map { "irc:" + $0.network } ?? target }

    /// A line the server refused (no such nick, cannot send to channel) says
    /// nothing against the network: it answered.
    public func isEndpointFailure(_ outcome: DeliveryOutcome) -> Bool {
        guard case .retry(_, let reason) = outcome else { return false }
        return !reason.hasPrefix(IRCConnectionError.refusal)
    }

    public func validate(target: String) throws(RouteError) {
        guard let t = IRCTarget(target) else { throw RouteError("\(target) is not irc://NETWORK/channel or irc://NETWORK/nick,isnick") }
        guard bots[t.network] != nil else {
            throw RouteError("\(target): no IRC network \(t.network) is configured ([irc.\(t.network)])")
        }
    }

    public func deliver(_ event: QueuedEvent) async -> DeliveryOutcome {
        await deliver(batch: [event])[0]
    }

    public func deliver(batch: [QueuedEvent]) async -> [DeliveryOutcome] {
        var outcomes = [DeliveryOutcome?](repeating: nil, count: batch.count)
        // Per network, runs of consecutive events that go through the same
        // connection (the bot or one puppet), in queue order.
        var perNetwork: [String: [Run]] = [:]
        for (i, event) in batch.enumerated() {
            switch lines(for: event) {
            case .failure(let decided): outcomes[i] = decided.outcome
            case .success(let plan):
                var runs = perNetwork[plan.network, default: []]
                if let last = runs.last, last.connection === plan.connection {
                    runs[runs.count - 1].items.append((i, plan.lines))
                } else {
                    runs.append(Run(connection: plan.connection, items: [(i, plan.lines)]))
                }
                perNetwork[plan.network] = runs
            }
        }
        let results = await withTaskGroup(of: [(Int, DeliveryOutcome)].self) { group in
            for runs in perNetwork.values {
                group.addTask {
                    // One run after the other: lines on two connections could overtake
                    // each other, so the next run waits for the proofs of this one.
                    var out: [(Int, DeliveryOutcome)] = []
                    for run in runs { out += await Self.deliver(run) }
                    return out
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        for (i, outcome) in results { outcomes[i] = outcome }
        return outcomes.map { $0 ?? .retry(after: nil, reason: "no IRC network took it") }
    }

    /// Events that go down one connection back to back.
    struct Run: Sendable {
        let connection: IRCBot
        var items: [(index: Int, lines: [IRCMessage])]
    }

    private static func deliver(_ run: Run) async -> [(Int, DeliveryOutcome)] {
        do {
            let results = try await run.connection.deliver(batch: run.items.map(\.lines))
            return zip(run.items, results).map { item, result in
                switch result {
                case .success(let proof): (item.index, .delivered(proof: proof))
                case .failure(let error): (item.index, .retry(after: nil, reason: "\(error)"))
                }
            }
        } catch {
            return run.items.map { ($0.index, .retry(after: nil, reason: "\(error)")) }
        }
    }

    /// What one event becomes: its lines, the connection they go down, its network.
    struct Plan {
        let network: String
        let connection: IRCBot
        let lines: [IRCMessage]
    }

    /// An outcome decided before anything is sent.
    struct Decided: Error { let outcome: DeliveryOutcome }

    /// The lines `event` becomes and the connection they go down: the sender's
    /// puppet when it is up and in the channel (its lines need no `<name>`),
    /// else the network's bot.
    func lines(for event: QueuedEvent) -> Result<Plan, Decided> {
        guard let target = IRCTarget(event.target), let bot = bots[target.network] else {
            return .failure(Decided(outcome: .permanentFailure(code: 404, reason: "\(event.target) names no configured IRC network")))
        }
        guard let body = event.body.contents() else {
            return .failure(Decided(outcome: .permanentFailure(code: 500, reason: "the body file of event \(event.id) is missing")))
        }
        let contentType = event.envelope.contentType.lowercased()
        guard contentType.isEmpty || contentType.hasPrefix("text/plain") else {
            return .failure(Decided(outcome: .permanentFailure(code: 415, reason: "IRC carries text/plain, not \(event.envelope.contentType)")))
        }
        let text = String(decoding: body, as: UTF8.self)
        let system = event.kind == .system
        if !system, let from = event.envelope.from, let puppet = puppets?(from, target.network), let nick = puppet.nick,
           target.isNick || puppet.isIn(target.recipient) {
            let source = "\(nick)!\(puppet.configuration.user)@" + String(repeating: "h", count: 63)
            let budget = IRCTextSplitter.budget(source: source, command: "PRIVMSG", target: target.recipient)
            let lines = IRCTextSplitter(budget: budget, maxLines: maxLines[target.network] ?? 10).split(text)
                .map { IRCMessage(command: "PRIVMSG", params: [target.recipient, $0]) }
            return .success(Plan(network: target.network, connection: puppet, lines: lines))
        }
        let lines = Self.lines(text: text, system: system, from: event.envelope.from, to: target.recipient,
                               relay: bot.capabilities.contains("draft/relaymsg") && !target.isNick,
                               ourSource: bot.nick.map { "\($0)!\(bot.configuration.user)@" + String(repeating: "h", count: 63) },
                               maxLines: maxLines[target.network] ?? 10)
        return .success(Plan(network: target.network, connection: bot, lines: lines))
    }

    /// The IRC lines for a message: a NOTICE for a system message; for a chat
    /// message `RELAYMSG <target> <speaker>/msrp :text` when relaying, else
    /// `PRIVMSG <target> :<speaker> text`, each split to fit the line.
    static func lines(text: String, system: Bool, from: String?, to recipient: String, relay: Bool, ourSource: String?, maxLines: Int) -> [IRCMessage] {
        let speaker = speaker(from)
        if relay, !system {
            // The server shows the line as from `speaker/msrp!...`: its length is not ours to know.
            let budget = IRCTextSplitter.budget(source: nil, command: "PRIVMSG", target: recipient)
            return IRCTextSplitter(budget: budget, maxLines: maxLines).split(text)
                .map { IRCMessage(command: "RELAYMSG", params: [recipient, relayNick(speaker), $0]) }
        }
        let prefix = system ? "" : "<\(speaker)> "
        let command = system ? "NOTICE" : "PRIVMSG"
        let budget = IRCTextSplitter.budget(source: ourSource, command: command, target: recipient) - prefix.utf8.count
        return IRCTextSplitter(budget: budget, maxLines: maxLines).split(text).map { IRCMessage(command: command, params: [recipient, prefix + $0]) }
    }

    /// `alice/msrp`: what `draft/relaymsg` wants (a separator the server allows
    /// only in relayed nicks), from characters a nick may hold.
    static func relayNick(_ speaker: String) -> String {
        IRCNick.from(speaker, maxLength: 24, prefix: "msrp") + "/msrp"
    }

    /// `Alice <sip:alice@example.com>` → `Alice`; `sip:alice@example.com` → `alice`.
    static func speaker(_ from: String?) -> String {
        guard let from, !from.isEmpty else { return "msrp" }
        if let lt = from.firstIndex(of: "<") {
            let name = from[..<lt].trimmingCharacters(in: CharacterSet(charactersIn: " \""))
            if !name.isEmpty { return name }
        }
        let uri = from.trimmingCharacters(in: CharacterSet(charactersIn: "<> "))
        let afterScheme = uri.split(separator: ":", maxSplits: 1).last.map(String.init) ?? uri
        return String(afterScheme.split(separator: "@").first ?? Substring(afterScheme))
    }
}
