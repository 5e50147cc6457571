import IRCClient
import IRCWire

/// What an IRC line in a bridged channel becomes on the MSRP side: a message
/// from the nick's `irc:` URI to the channel's route, or a system message
/// announcing a join, part, kick, topic, nick change or quit. Pure: the bridge
/// loop (`IRCToMSRP`) feeds it the lines and the roster's channels of the
/// sender, and sends what it returns.
struct IRCChannelBridge {
    /// One message for the sessions of `route`.
    struct Line: Equatable {
        var route: String
        var from: String
        var text: String
        var system: Bool
    }

    /// The network's name (in `irc://NET/...` addresses).
    var network: String
    /// Our own nick: what we say is not passed back.
    var me: String?
    /// Channel → route.
    var bridges: [String: String]
    /// Which channel events become system messages.
    var announce: Set<String>
    /// Our puppets' nicks: what they say came from MSRP.
    var isPuppet: (String) -> Bool

    /// What `m` becomes; `channels` are the bridged channels its sender is in
    /// (a NICK or QUIT names none of its own).
    func lines(for m: IRCMessage, channels: [String]) -> [Line] {
        if let (routes, text) = announcement(m, channels: channels) {
            return routes.map { Line(route: $0, from: "\(network) <irc://\(network)>", text: text, system: true) }
        }
        let command = m.command.uppercased()
        guard command == "PRIVMSG" || command == "NOTICE", m.params.count == 2,
              let route = bridges.first(where: { $0.key.lowercased() == m.params[0].lowercased() })?.value,
              let nick = m.sourceParts?.nick, !nick.isEmpty, nick != me, !isPuppet(nick),
              m.tag("draft/relaymsg") == nil || m.tag("draft/relaymsg") != me  // our own RELAYMSG, echoed
        else { return [] }
        var text = m.params[1]
        // CTCP ACTION (/me) reads as "* nick does".
        if text.hasPrefix("\u{1}ACTION "), text.hasSuffix("\u{1}") { text = "* \(nick) " + text.dropFirst(8).dropLast() }
        return [Line(route: route, from: "\(nick) <irc://\(network)/\(nick),isnick>", text: text, system: command == "NOTICE")]
    }

    /// The route bridged to `channel`.
    private func route(of channel: String) -> String? {
        bridges.first(where: { IRCChannelRoster.fold($0.key) == IRCChannelRoster.fold(channel) })?.value
    }

    /// A JOIN, PART, KICK or TOPIC in a bridged channel, or a NICK or QUIT of
    /// someone in one (`channels`, from the roster), as a line for the rooms (not our own).
    func announcement(_ m: IRCMessage, channels: [String]) -> (routes: [String], text: String)? {
        let command = m.command.uppercased()
        guard announce.contains(command.lowercased()), let nick = m.sourceParts?.nick, nick != me, !isPuppet(nick) else { return nil }
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
}
