import Gateway
import IRCClient
import IRCWire
import Logging

/// The IRC → MSRP half of a bridged channel: what people say in the channel
/// goes to every live MSRP session of the bridged route, as a CPIM message from
/// the nick's `irc:` URI, dated by the server's `server-time` when it gives one.
/// A line the server marks with a `msgid` becomes one event per session however
/// often it is seen. Nobody in the route's sessions: nothing to deliver (a chat
/// room has no history). Joins, parts, kicks and topic changes come as system
/// messages (those in `announce`).
struct IRCToMSRP: Sendable {
    let bot: IRCBot
    let bridges: [String: String]
    let gateway: Gateway
    let logger: Logger

    /// Which channel events become system messages in the room: join, part, kick, topic.
    var announce: Set<String> = ["join", "part", "kick", "topic"]

    func run() async {
        for await m in bot.incoming {
            let command = m.command.uppercased()
            if let (route, text) = announcement(m) {
                await pass(text, to: route, from: "\(bot.name) <irc://\(bot.name)>", system: true, m)
                continue
            }
            guard command == "PRIVMSG" || command == "NOTICE", m.params.count == 2,
                  let route = bridges.first(where: { $0.key.lowercased() == m.params[0].lowercased() })?.value,
                  let nick = m.sourceParts?.nick, !nick.isEmpty, nick != bot.nick else { continue }
            var text = m.params[1]
            // CTCP ACTION (/me) reads as "* nick does".
            if text.hasPrefix("\u{1}ACTION "), text.hasSuffix("\u{1}") { text = "* \(nick) " + text.dropFirst(8).dropLast() }
            await pass(text, to: route, from: "\(nick) <irc://\(bot.name)/\(nick),isnick>", system: command == "NOTICE", m)
        }
    }

    /// A JOIN, PART, KICK or TOPIC in a bridged channel as a line for the room (not our own).
    private func announcement(_ m: IRCMessage) -> (route: String, text: String)? {
        let command = m.command.uppercased()
        guard announce.contains(command.lowercased()), let channel = m.params.first,
              let route = bridges.first(where: { $0.key.lowercased() == channel.lowercased() })?.value,
              let nick = m.sourceParts?.nick, nick != bot.nick else { return nil }
        switch command {
        case "JOIN": return (route, "\(nick) joined \(channel)")
        case "PART": return (route, "\(nick) left \(channel)" + (m.params.count > 1 ? " (\(m.params[1]))" : ""))
        case "KICK" where m.params.count >= 2: return (route, "\(nick) kicked \(m.params[1]) from \(channel)" + (m.params.count > 2 ? " (\(m.params[2]))" : ""))
        case "TOPIC" where m.params.count >= 2: return (route, "\(nick) set the topic of \(channel): \(m.params[1])")
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
