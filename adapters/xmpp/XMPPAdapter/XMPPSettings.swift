import XMPPClient
import XMPPWire

/// One `[xmpp.NAME]` section: the component connection and the bridge's rules.
public struct XMPPSettings: Sendable {
    public var name: String
    public var component: XMPPComponentConfiguration
    public var addresses: XMPPAddressBook
    /// XMPP domains whose users may write to MSRP peers (by default the server's own).
    public var senderDomains: [String]
    /// How long a message waits for its recipient's receipt (see `XMPPAdapter`).
    public var receiptWait: Duration
    /// MSRP room address → the MUC room it is bridged to.
    public var rooms: [String: JID]
    /// The bridge's own nickname in the MUC rooms.
    public var roomNick: String

    public init(name: String, component: XMPPComponentConfiguration, addresses: XMPPAddressBook, senderDomains: [String], receiptWait: Duration,
                rooms: [String: JID] = [:], roomNick: String = "msrpgw") {
        self.rooms = rooms
        self.roomNick = roomNick
        self.name = name
        self.component = component
        self.addresses = addresses
        self.senderDomains = senderDomains
        self.receiptWait = receiptWait
    }
}
