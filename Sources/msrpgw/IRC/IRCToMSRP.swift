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
struct IRCToMSRP: Sendable {
    let bot: IRCBot
    let bridges: [String: String]
    let gateway: Gateway
    let logger: Logger

    /// Which channel events become system messages in the room.
    var announce: Set<String> = Self.announcements
    /// Our puppets' nicks: what they say came from MSRP, and their comings and goings are ours.
    var isPuppet: @Sendable (String) -> Bool = { _ in false }
    static let announcements: Set<String> = ["join", "part", "kick", "topic", "nick", "quit"]

    func run() async {
        var roster = IRCChannelRoster()
        for await m in bot.incoming {
            let command = m.command.uppercased()
            let channels = roster.apply(m, me: bot.nick)
            if let (routes, text) = announcement(m, channels: channels) {
                for route in routes { await pass(text, to: route, from: "\(bot.name) <irc://\(bot.name)>", system: true, m) }
                continue
            }
            guard command == "PRIVMSG" || command == "NOTICE", m.params.count == 2,
                  let route = bridges.first(where: { $0.key.lowercased() == m.params[0].lowercased() })?.value,
                  let nick = m.sourceParts?.nick, !nick.isEmpty, nick != bot.nick, !isPuppet(nick),
                  m.tag("draft/relaymsg") == nil || m.tag("draft/relaymsg") != bot.nick  // our own RELAYMSG, echoed
            else { continue }
            var text = m.params[1]
            // CTCP ACTION (/me) reads as "* nick does".
            if text.hasPrefix("\u{1}ACTION "), text.hasSuffix("\u{1}") { text = "* \(nick) " + text.dropFirst(8).dropLast() }
            await pass(text, to: route, from: "\(nick) <irc://\(bot.name)/\(nick),isnick>", system: command == "NOTICE", m)
        }
    }

    /// The route bridged to `channel`.
    private func route(of channel: String) -> String? {
        bridges.first(where: { IRCChannelRoster.fold($0.key) == IRCChannelRoster.fold(channel) })?.value
    }

    /// A JOIN, PART, KICK or TOPIC in a bridged channel, or a NICK or QUIT of
    /// someone in one (`channels`, from the roster), as a line for the rooms (not our own).
    private func announcement(_ m: IRCMessage, channels: [String]) -> (routes: [String], text: String)? {
        let command = m.command.uppercased()
        guard announce.contains(command.lowercased()), let nick = m.sourceParts?.nick, nick != bot.nick, !isPuppet(nick) else { return nil }
        switch command {
        case "NICK" where !m.params.isEmpty:
            return (Array(Set(channels.compactMap(route(of:)))).sorted(), "\(nick) is now known as \(m.params[0])")
        case "QUIT":
            return (Array(Set(channels.compactMap(route(of:)))).sorted(), "\(nick) quit" + (m.params.first.map { " (\($0))" } ?? ""))
        default:
            break
        }
        guard let channel = m.params.first, let route = route(of: channel) else { return nil }
        switch command {
        case "JOIN": return ([route], "\(nick) joined \(channel)")
        case "PART": return ([route], "\(nick) left \(channel)" + (m.params.count > 1 ? " (\(m.params[1]))" : ""))
        case "KICK" where m.params.count >= 2: return ([route], "\(nick) kicked \(m.params[1]) from \(channel)" + (m.params.count > 2 ? " (\(m.params[2]))" : ""))
        case "TOPIC" where m.params.count >= 2: return ([route], "\(nick) set the topic of \(channel): \(m.params[1])")
        default: return nil
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
