import XMPPClient

/// One `[xmpp.NAME]` section: the component connection and the bridge's rules.
public struct XMPPSettings: Sendable {
    public var name: String
    public var component: XMPPComponentConfiguration
    public var addresses: XMPPAddressBook
    /// XMPP domains whose users may write to MSRP peers (by default the server's own).
    public var senderDomains: [String]
    /// How long a message waits for its recipient's receipt (see `XMPPAdapter`).
    public var receiptWait: Duration

    public init(name: String, component: XMPPComponentConfiguration, addresses: XMPPAddressBook, senderDomains: [String], receiptWait: Duration) {
        self.name = name
        self.component = component
        self.addresses = addresses
        self.senderDomains = senderDomains
        self.receiptWait = receiptWait
    }
}
