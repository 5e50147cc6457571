import Foundation
import Gateway
import IRCClient
import IRCWire
import Logging
import Queue

/// Delivers events to IRC channels and nicks through one bot connection per
/// configured network: a chat message as `<alice> text` (PRIVMSG), a system
/// message as a NOTICE, each line of the text split to fit the server's line
/// length. Delivered once the bot has its proof (echo or PONG); when the network
/// is down the event waits and retries (nothing is lost while it reconnects).
public final class IRCAdapter: Adapter {
    public let name = "irc"
    public let schemes = ["irc", "ircs"]
    /// One at a time: lines of one channel keep the order they were sent in.
    public let concurrency = 1
    private let bots: [String: IRCBot]
    private let maxLines: [String: Int]
    private let logger: Logger

    /// - Parameter maxLines: per network, the most lines one message becomes (10 when not given).
    public init(bots: [IRCBot], maxLines: [String: Int] = [:], logger: Logger = Logger(label: "msrpgw.irc")) {
        self.bots = Dictionary(bots.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.maxLines = maxLines
        self.logger = logger
    }

    public func validate(target: String) throws(RouteError) {
        guard let t = IRCTarget(target) else { throw RouteError("\(target) is not irc://NETWORK/channel or irc://NETWORK/nick,isnick") }
        guard bots[t.network] != nil else {
            throw RouteError("\(target): no IRC network \(t.network) is configured ([irc.\(t.network)])")
        }
    }

    public func deliver(_ event: QueuedEvent) async -> DeliveryOutcome {
        guard let target = IRCTarget(event.target), let bot = bots[target.network] else {
            return .permanentFailure(code: 404, reason: "\(event.target) names no configured IRC network")
        }
        guard let body = event.body.contents() else { return .permanentFailure(code: 500, reason: "the body file of event \(event.id) is missing") }
        let contentType = event.envelope.contentType.lowercased()
        guard contentType.isEmpty || contentType.hasPrefix("text/plain") else {
            return .permanentFailure(code: 415, reason: "IRC carries text/plain, not \(event.envelope.contentType)")
        }
        let text = String(decoding: body, as: UTF8.self)
        let system = event.kind == .system
        let prefix = system ? "" : "<\(Self.speaker(event.envelope.from))> "
        let command = system ? "NOTICE" : "PRIVMSG"
        let budget = IRCTextSplitter.budget(source: bot.nick.map { "\($0)!\(bot.configuration.user)@" + String(repeating: "h", count: 63) },
                                            command: command, target: target.recipient) - prefix.utf8.count
        let lines = IRCTextSplitter(budget: budget, maxLines: maxLines[target.network] ?? 10).split(text)
        guard !lines.isEmpty else { return .delivered(proof: "empty message: nothing to say") }
        let messages = lines.map { IRCMessage(command: command, params: [target.recipient, prefix + $0]) }
        do {
            return .delivered(proof: try await bot.deliver(messages))
        } catch {
            return .retry(after: nil, reason: "\(error)")
        }
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
