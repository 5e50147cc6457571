import Gateway
import IRCClient
import IRCWire
import Logging

/// The IRC → MSRP half of a bridged channel: what people say in the channel
/// goes to every live MSRP session of the bridged route, as a CPIM message from
/// the nick's `irc:` URI, dated by the server's `server-time` when it gives one.
/// A line the server marks with a `msgid` becomes one event per session however
/// often it is seen. Nobody in the route's sessions: nothing to deliver (a chat
/// room has no history). Joins, parts, kicks, topic changes, nick changes and
/// quits come as system messages (those in `announce`); nick changes and quits
/// name no channel, so a roster of who is where says which rooms hear of them.
public struct IRCToMSRP: Sendable {
    let bot: IRCBot
    let bridges: [String: String]
    let gateway: Gateway
    let logger: Logger

    /// Which channel events become system messages in the room.
    var announce: Set<String> = Self.announcements
    /// Our puppets' nicks: what they say came from MSRP, and their comings and goings are ours.
    var isPuppet: @Sendable (String) -> Bool = { _ in false }
    public static let announcements: Set<String> = ["join", "part", "kick", "topic", "nick", "quit"]

    public init(
        bot: IRCBot, bridges: [String: String], gateway: Gateway, logger: Logger, announce: Set<String> = Self.announcements,
        isPuppet: @escaping @Sendable (String) -> Bool = { _ in false }
    ) {
        self.bot = bot
        self.bridges = bridges
        self.gateway = gateway
        self.logger = logger
        self.announce = announce
        self.isPuppet = isPuppet
    }

    public func run() async {
        var roster = IRCChannelRoster()
        for await m in bot.incoming {
            let channels = roster.apply(m, me: bot.nick)
            let rules = IRCChannelBridge(network: bot.name, me: bot.nick, bridges: bridges, announce: announce, isPuppet: isPuppet)
            for line in rules.lines(for: m, channels: channels) {
                await pass(line.text, to: line.route, from: line.from, system: line.system, m)
            }
        }
    }

    private func pass(_ text: String, to route: String, from: String, system: Bool, _ m: IRCMessage) async {
        for session in gateway.liveSessions where session.route == route {
            do {
                _ = try await gateway.submit(OutboundMessage(
                    to: .session(session.id), text: text, system: system, from: from,
                    idempotencyKey: m.tag("msgid").map { "irc|\(bot.name)|\($0)|\(session.id)" }, dateTime: m.tag("time")))
            } catch {
                logger.warning("IRC line not passed on", metadata: ["network": "\(bot.name)", "session": "\(session.id)", "error": "\(error)"])
            }
        }
    }
}
