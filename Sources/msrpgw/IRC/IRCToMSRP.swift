import Gateway
import IRCClient
import IRCWire
import Logging

/// The IRC → MSRP half of a bridged channel: what people say in the channel
/// goes to every live MSRP session of the bridged route, as a CPIM message from
/// the nick's `irc:` URI, dated by the server's `server-time` when it gives one.
/// A line the server marks with a `msgid` becomes one event per session however
/// often it is seen. Nobody in the route's sessions: nothing to deliver (a chat
/// room has no history).
struct IRCToMSRP: Sendable {
    let bot: IRCBot
    let bridges: [String: String]
    let gateway: Gateway
    let logger: Logger

    func run() async {
        for await m in bot.incoming {
            let command = m.command.uppercased()
            guard command == "PRIVMSG" || command == "NOTICE", m.params.count == 2,
                  let route = bridges.first(where: { $0.key.lowercased() == m.params[0].lowercased() })?.value,
                  let nick = m.sourceParts?.nick, !nick.isEmpty, nick != bot.nick else { continue }
            var text = m.params[1]
            // CTCP ACTION (/me) reads as "* nick does".
            if text.hasPrefix("\u{1}ACTION "), text.hasSuffix("\u{1}") { text = "* \(nick) " + text.dropFirst(8).dropLast() }
            let from = "\(nick) <irc://\(bot.name)/\(nick),isnick>"
            for session in gateway.liveSessions where session.route == route {
                do {
                    _ = try await gateway.submit(OutboundMessage(
                        to: .session(session.id), text: text, system: command == "NOTICE", from: from,
                        idempotencyKey: m.tag("msgid").map { "irc|\(bot.name)|\($0)|\(session.id)" }, dateTime: m.tag("time")))
                } catch {
                    logger.warning("IRC line not passed on", metadata: ["network": "\(bot.name)", "session": "\(session.id)", "error": "\(error)"])
                }
            }
        }
    }
}
