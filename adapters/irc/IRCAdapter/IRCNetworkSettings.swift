import IRCClient

/// One configured IRC network (`[irc.NAME]`): the client's settings and what
/// the gateway bridges there. The daemon reads it from its configuration; the
/// bot, the puppets and the IRC → MSRP bridge take it as it is.
public struct IRCNetworkSettings: Sendable {
    public var name: String
    public var client: IRCClientConfiguration
    /// Channels to join, with their keys.
    public var channels: [String: String?]
    /// Longest message in lines before it is cut.
    public var maxLines: Int
    public var reconnect: ClosedRange<Duration>
    /// Channel → route: what is said in the channel goes to the route's sessions.
    public var bridges: [String: String]
    /// Channel events passed on as system messages.
    public var announce: Set<String>
    /// At most this many puppets (an IRC connection per MSRP participant of a bridged room); 0: none.
    public var puppets: Int
    /// Appended to a puppet's nick (`alice[m]`).
    public var puppetSuffix: String

    public init(
        name: String, client: IRCClientConfiguration, channels: [String: String?], maxLines: Int, reconnect: ClosedRange<Duration>,
        bridges: [String: String], announce: Set<String>, puppets: Int = 0, puppetSuffix: String = "[m]"
    ) {
        self.name = name
        self.client = client
        self.channels = channels
        self.maxLines = maxLines
        self.reconnect = reconnect
        self.bridges = bridges
        self.announce = announce
        self.puppets = puppets
        self.puppetSuffix = puppetSuffix
    }
}
