import Foundation
import Gateway
import IRCClient
import IRCWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// One IRC connection per MSRP participant of a bridged room (a puppet), so
/// that on IRC each participant is a nick of its own (`alice[m]`) rather than a
/// `<alice>` in the bot's lines. Puppets join the channels bridged to their
/// session's route, come when the session does and QUIT when it ends; at most
/// `limit` per network: past that, participants speak through the bot.
/// What IRC users say privately to a puppet reaches its participant's session.
public final class IRCPuppets: Sendable {
    let network: String
    private let base: IRCClientConfiguration
    /// Channel → route, as the network's bridges.
    private let bridges: [String: String]
    private let limit: Int
    private let suffix: String
    private let group: any EventLoopGroup
    private let backoff: ClosedRange<Duration>
    private let logger: Logger

    private struct Puppet {
        let bot: IRCBot
        let sender: String
        let tasks: [Task<Void, Never>]
    }

    /// By session id.
    private let puppets = NIOLockedValueBox<[String: Puppet]>([:])
    /// Nicks of puppets gone (folded; the latest 1,000): their QUIT comes after them.
    private let former = NIOLockedValueBox<[String]>([])

    public init(network: IRCNetworkSettings, group: any EventLoopGroup, logger: Logger) {
        self.network = network.name
        self.base = network.client
        self.bridges = network.bridges
        self.limit = network.puppets
        self.suffix = network.puppetSuffix
        self.group = group
        self.backoff = network.reconnect
        self.logger = logger
    }

    /// The connected puppet of the participant whose address is `sender` (a CPIM
    /// From such as `Alice <sip:alice@example.com>`), if there is one.
    public func puppet(for sender: String) -> IRCBot? {
        guard let address = Self.address(sender) else { return nil }
        return puppets.withLockedValue { p in p.values.first { $0.sender == address }?.bot }.flatMap { $0.isConnected ? $0 : nil }
    }

    /// Whether `nick` is one of our puppets (their channel lines came from MSRP: not to be passed back).
    public func isPuppet(_ nick: String) -> Bool {
        let n = IRCChannelRoster.fold(nick)
        return puppets.withLockedValue { p in p.values.contains { $0.bot.nick.map(IRCChannelRoster.fold) == n } }
            || former.withLockedValue { $0.contains(n) }
    }

    /// Follows the gateway's sessions until cancelled: a puppet for each live
    /// session of a bridged route (up to the limit), gone with its session.
    /// Woken by the gateway when a session starts or ends (no polling); changes
    /// that come while it works are taken in the next round.
    public func run(gateway: Gateway) async {
        let (changes, changed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        gateway.onSessionCreated { _ in changed.yield() }
        gateway.onSessionClosed { _ in changed.yield() }
        defer { changed.finish() }
        await follow(gateway)
        for await _ in changes {
            await follow(gateway)
        }
        for g in puppets.withLockedValue({ p in defer { p = [:] }; return Array(p.values) }) { await retire(g) }
    }

    /// Puppets for the live sessions of bridged routes, none for the others.
    private func follow(_ gateway: Gateway) async {
        let routes = Set(bridges.values)
        let live = gateway.liveSessions.filter { s in s.route.map(routes.contains) ?? false && s.peerAddress != nil }
        let liveIDs = Set(live.map(\.id))
        let gone = puppets.withLockedValue { p -> [Puppet] in
            let ids = p.keys.filter { !liveIDs.contains($0) }
            return ids.compactMap { p.removeValue(forKey: $0) }
        }
        for g in gone { await retire(g) }
        for s in live where puppets.withLockedValue({ $0[s.id] == nil && $0.count < limit }) {
            start(for: s, gateway: gateway)
        }
    }

    private func start(for session: GatewaySession, gateway: Gateway) {
        guard let route = session.route, let peer = session.peerAddress, let address = Self.address(peer) else { return }
        var config = base
        config.nick = Self.nick(for: address, suffix: suffix)
        config.user = "msrp"
        config.realName = "\(address) via msrpgw"
        config.sasl = .none  // the bot's account is the bot's, not the participants'
        config.capabilities = config.capabilities.filter { $0 != "draft/relaymsg" }
        let channels = bridges.filter { $0.value == route }.mapValues { _ in String?.none }
        let bot = IRCBot(name: network, configuration: config, channels: channels, group: group, backoff: backoff, logger: logger)
        let run = Task { await bot.run() }
        let listen = Task { await self.passPrivateMessages(of: bot, to: session.id, gateway: gateway) }
        puppets.withLockedValue { $0[session.id] = Puppet(bot: bot, sender: address, tasks: [run, listen]) }
        logger.info("IRC puppet started", metadata: ["network": "\(network)", "nick": "\(config.nick)", "session": "\(session.id)"])
    }

    private func retire(_ p: Puppet) async {
        if let nick = p.bot.nick.map(IRCChannelRoster.fold) {
            former.withLockedValue { f in
                f.append(nick)
                if f.count > 1000 { f.removeFirst(f.count - 1000) }
            }
        }
        await p.bot.quit("left the MSRP session")
        for t in p.tasks { t.cancel() }
        logger.info("IRC puppet gone", metadata: ["network": "\(network)", "nick": "\(p.bot.nick ?? p.bot.configuration.nick)"])
    }

    /// A PRIVMSG or NOTICE to the puppet's own nick goes to its participant alone,
    /// from the IRC user's `irc:` URI (channel lines are the bridge's business).
    private func passPrivateMessages(of bot: IRCBot, to session: String, gateway: Gateway) async {
        for await m in bot.incoming {
            let command = m.command.uppercased()
            guard command == "PRIVMSG" || command == "NOTICE", m.params.count == 2, let me = bot.nick,
                  IRCChannelRoster.fold(m.params[0]) == IRCChannelRoster.fold(me),
                  let nick = m.sourceParts?.nick, !nick.isEmpty, !isPuppet(nick) else { continue }
            var text = m.params[1]
            if text.hasPrefix("\u{1}ACTION "), text.hasSuffix("\u{1}") { text = "* \(nick) " + text.dropFirst(8).dropLast() }
            guard !text.hasPrefix("\u{1}") else { continue }  // other CTCP (VERSION, PING...) is not for the participant
            do {
                _ = try await gateway.submit(OutboundMessage(
                    to: .session(session), text: text, system: command == "NOTICE", from: "\(nick) <irc://\(network)/\(nick),isnick>",
                    idempotencyKey: m.tag("msgid").map { "irc-private|\(network)|\($0)" }, dateTime: m.tag("time")))
            } catch {
                logger.warning("IRC private message not passed on", metadata: ["network": "\(network)", "session": "\(session)", "error": "\(error)"])
            }
        }
    }

    /// `Alice <sip:alice@example.com>` or `sip:alice@example.com` → `sip:alice@example.com`.
    static func address(_ s: String) -> String? {
        var uri = Substring(s)
        if let lt = s.firstIndex(of: "<"), let gt = s[lt...].firstIndex(of: ">") { uri = s[s.index(after: lt)..<gt] }
        let trimmed = uri.trimmingCharacters(in: .whitespaces).lowercased()
        return trimmed.isEmpty ? nil : trimmed
    }

    /// `sip:alice@example.com` → `alice[m]`: the user part in characters a nick
    /// may hold, at most 16 of them, then the suffix.
    static func nick(for address: String, suffix: String) -> String {
        let afterScheme = address.split(separator: ":", maxSplits: 1).last.map(String.init) ?? address
        let user = afterScheme.split(separator: "@").first.map(String.init) ?? afterScheme
        return IRCNick.from(user, maxLength: 16, prefix: "m") + suffix
    }
}
