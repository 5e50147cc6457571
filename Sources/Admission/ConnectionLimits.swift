/// How many connections a listener holds at once, in all and from one source
/// address (an IPv4 address, or an IPv6 /64: one host or one customer's
/// network, which can pick any address inside it). The defaults leave room for
/// an MSRP relay or SBC that carries many users' connections from one address;
/// a gateway that strangers reach directly wants a far smaller share per source.
public struct ConnectionLimits: Sendable, Equatable {
    public var perListener: Int
    public var perSource: Int

    public init(perListener: Int = 10_000, perSource: Int = 1_000) {
        self.perListener = perListener
        self.perSource = perSource
    }
}
