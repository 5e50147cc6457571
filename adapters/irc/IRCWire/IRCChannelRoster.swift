/// Who is in which of our channels, as far as the server has told us (NAMES
/// replies, JOIN, PART, KICK, NICK, QUIT). NICK and QUIT name no channel: the
/// roster says which channels they concern, so a bridge can tell each room.
/// Nicks compare by RFC 1459 case mapping (`[]\~` are the upper case of `{}|^`).
public struct IRCChannelRoster: Sendable {
    /// Channel (folded) → nick (folded) → the nick as last seen.
    private var members: [String: [String: String]] = [:]
    /// Channel names as the server spells them, by folded name.
    private var names: [String: String] = [:]

    public init() {}

    /// The nicks in `channel`, as last seen (sorted).
    public func nicks(in channel: String) -> [String] {
        (members[Self.fold(channel)]?.values).map { $0.sorted() } ?? []
    }

    /// The channels `nick` shares with us (as the server spells them, sorted).
    public func channels(of nick: String) -> [String] {
        let n = Self.fold(nick)
        return members.filter { $0.value[n] != nil }.compactMap { names[$0.key] }.sorted()
    }

    /// Takes in one line from the server; for NICK and QUIT, returns the channels
    /// the nick was in (before the change), else none. `me` is our current nick.
    @discardableResult
    public mutating func apply(_ m: IRCMessage, me: String?) -> [String] {
        let nick = m.sourceParts?.nick ?? ""
        let ours = me.map { Self.fold($0) == Self.fold(nick) } ?? false
        switch m.command.uppercased() {
        case "353" where m.params.count >= 4:
            // RPL_NAMREPLY: me, symbol, channel, "@alice +bob carol" (multi-prefix may stack).
            let channel = m.params[2]
            for entry in m.params[3].split(separator: " ") {
                let bare = entry.drop { "~&@%+".contains($0) }
                let name = bare.split(separator: "!").first.map(String.init) ?? ""  // userhost-in-names
                if !name.isEmpty { add(name, to: channel) }
            }
        case "JOIN" where !m.params.isEmpty && !nick.isEmpty:
            for channel in m.params[0].split(separator: ",").map(String.init) {
                if ours { members[Self.fold(channel)] = [:] }
                add(nick, to: channel)
            }
        case "PART" where !m.params.isEmpty:
            for channel in m.params[0].split(separator: ",").map(String.init) { remove(nick, from: channel, ours: ours) }
        case "KICK" where m.params.count >= 2:
            let kicked = m.params[1]
            remove(kicked, from: m.params[0], ours: me.map { Self.fold($0) == Self.fold(kicked) } ?? false)
        case "NICK" where !m.params.isEmpty && !nick.isEmpty:
            let channels = channels(of: nick)
            let (old, new) = (Self.fold(nick), m.params[0])
            for c in channels.map(Self.fold) {
                members[c]?[old] = nil
                members[c]?[Self.fold(new)] = new
            }
            return channels
        case "QUIT" where !nick.isEmpty:
            let channels = channels(of: nick)
            if ours {
                reset()
            } else {
                for c in channels.map(Self.fold) { members[c]?[Self.fold(nick)] = nil }
            }
            return channels
        default:
            break
        }
        return []
    }

    /// Forgets everything (the connection is gone; a new one gets new NAMES).
    public mutating func reset() {
        members = [:]
        names = [:]
    }

    private mutating func add(_ nick: String, to channel: String) {
        let c = Self.fold(channel)
        names[c] = channel
        members[c, default: [:]][Self.fold(nick)] = nick
    }

    private mutating func remove(_ nick: String, from channel: String, ours: Bool) {
        let c = Self.fold(channel)
        if ours {
            members[c] = nil
            names[c] = nil
        } else {
            members[c]?[Self.fold(nick)] = nil
        }
    }

    /// RFC 1459 case folding: ASCII lower case, and `[]\~` as `{}|^`.
    public static func fold(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { u -> Unicode.Scalar in
            switch u {
            case "A"..."Z": Unicode.Scalar(u.value + 32) ?? u
            case "[": "{"
            case "]": "}"
            case "\\": "|"
            case "~": "^"
            default: u
            }
        }))
    }
}
