import Events
import Gateway
import Logging
import XMPPClient
import XMPPWire

/// What XMPP users send to the component: a chat message to one of its JIDs
/// becomes a queue event for that MSRP peer (its live sessions, or waiting /
/// a SIP call-out as for any message to a peer), CPIM From `xmpp:` the sender,
/// DateTime from its XEP-0203 delay. A receipt request is kept in the event's
/// origin: the receipt goes back only once the MSRP side took the message
/// (and an error reply if it never does). Service discovery, version and ping
/// queries are answered; other queries get `service-unavailable`.
public struct XMPPToMSRP: Sendable {
    let bridge: XMPPBridge
    let gateway: Gateway
    /// XMPP domains whose users may write to MSRP peers.
    let senderDomains: Set<String>
    let version: String
    let logger: Logger

    public init(bridge: XMPPBridge, gateway: Gateway, senderDomains: [String], version: String, logger: Logger) {
        self.bridge = bridge
        self.gateway = gateway
        self.senderDomains = Set(senderDomains.map { $0.lowercased() })
        self.version = version
        self.logger = logger
    }

    var component: XMPPComponent { bridge.component }

    public func run() async {
        for await stanza in component.incoming {
            if let rooms = bridge.rooms, let from = stanza["from"].flatMap(JID.init), rooms.isRoom(from) {
                await rooms.receive(stanza)
                continue
            }
            switch stanza.name {
            case "message": await message(stanza)
            case "iq": answer(stanza)
            default: break  // presence: rooms will need it; a user's is nothing to us
            }
        }
    }

    // MARK: - Messages

    func message(_ m: XMPPElement) async {
        let type = m["type"] ?? "normal"
        if type == "error" {
            logger.info("XMPP error for nothing we wait on", metadata: ["from": "\(m["from"] ?? "-")", "id": "\(m["id"] ?? "-")",
                                                                     "error": "\(XMPPStanzaError(stanza: m).map(\.description) ?? "-")"])
            return
        }
        if let marker = m.child("displayed", namespace: XMPPNamespace.chatMarkers), let id = marker["id"] {
            await displayed(id, in: m)
        }
        guard type == "chat" || type == "normal", let text = m.child("body")?.text, !text.isEmpty else { return }
        guard let fromText = m["from"], let from = JID(fromText), let toText = m["to"], let to = JID(toText) else {
            logger.info("XMPP message without a usable from or to dropped")
            return
        }
        guard senderDomains.contains(from.domain) else {
            logger.info("XMPP message from a domain not allowed to write to MSRP", metadata: ["from": "\(from.bare)"])
            return refuse(m, from: to, to: from, XMPPStanzaError(type: "cancel", condition: "forbidden"))
        }
        guard let peer = bridge.addresses.peer(for: to) else {
            logger.info("XMPP message to no reachable MSRP peer", metadata: ["from": "\(from.bare)", "to": "\(to.bare)"])
            return refuse(m, from: to, to: from, XMPPStanzaError(type: "cancel", condition: "item-not-found"))
        }
        let id = m["id"]
        let wantsReceipt = m.child("request", namespace: XMPPNamespace.receipts) != nil
        // Markable: the MSRP user's IMDN displayed becomes a marker naming this id,
        // which then goes into a CPIM header: only ids that are safe there.
        let markable = m.child("markable", namespace: XMPPNamespace.chatMarkers) != nil && id.map(Self.isPlainID) == true
        // An XMPP sender hears of a failure as an error reply, and of delivery when it asked.
        let origin = id.map {
            EventOrigin(messageID: $0, pageModeSender: "xmpp:\(from)", failureReport: .no, imdnMessageID: $0,
                        imdnDispositions: (wantsReceipt ? ["positive-delivery", "negative-delivery"] : ["negative-delivery"]) + (markable ? ["display"] : []))
        }
        let originID = m.child("origin-id", namespace: XMPPNamespace.stanzaID)?["id"] ?? id
        do {
            _ = try await gateway.submit(OutboundMessage(
                to: .address(peer), text: text, from: "\(from.bare) <xmpp:\(from.bare)>",
                idempotencyKey: originID.map { "xmpp|\(from.bare)|\($0)" },
                dateTime: m.child("delay", namespace: XMPPNamespace.delay)?["stamp"], origin: origin))
        } catch let error as RouteError {
            logger.info("XMPP message refused", metadata: ["from": "\(from.bare)", "to": "\(peer)", "error": "\(error)"])
            refuse(m, from: to, to: from, XMPPStanzaError(type: "cancel", condition: "item-not-found"))
        } catch {
            // Not stored: the sender is told to try again (no receipt will come for it).
            logger.warning("XMPP message not stored", metadata: ["from": "\(from.bare)", "to": "\(peer)", "error": "\(error)"])
            refuse(m, from: to, to: from, XMPPStanzaError(type: "wait", condition: "resource-constraint"))
        }
    }

    /// A chat marker: the messages it covers owe their MSRP senders IMDN `displayed`.
    private func displayed(_ id: String, in m: XMPPElement) async {
        guard let from = m["from"].flatMap(JID.init), let to = m["to"].flatMap(JID.init) else { return }
        let owed = bridge.markers.displayed(id, recipient: from.bare.description, sender: to.bare.description)
        guard !owed.isEmpty else { return }
        do {
            try await gateway.owe(owed)
        } catch {
            logger.warning("IMDN displayed not stored", metadata: ["from": "\(from.bare)", "error": "\(error)"])
        }
    }

    /// Letters, digits, `-`, `_`, `.`; at most 64.
    static func isPlainID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64 && id.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0)) }
    }

    private func refuse(_ m: XMPPElement, from: JID, to: JID, _ error: XMPPStanzaError) {
        component.send(XMPPStanzas.bounce(of: m["id"], from: from.description, to: to.description, error))
    }

    // MARK: - Queries

    /// Every `get` or `set` gets an answer (RFC 6120 §8.2.3).
    func answer(_ iq: XMPPElement) {
        guard let type = iq["type"], type == "get" || type == "set", let from = iq["from"], let to = iq["to"] else { return }
        let payload = iq.children.first
        var reply = XMPPElement("iq", namespace: XMPPStanzas.ns, ["type": "result", "id": iq["id"], "from": to, "to": from])
        let toJID = JID(to)
        switch (type, payload?.name, payload?.namespace) {
        case ("get", "ping", XMPPNamespace.ping):
            break
        case ("get", "query", XMPPNamespace.discoInfo):
            reply.children = [discoInfo(for: toJID, node: payload?["node"])]
        case ("get", "query", XMPPNamespace.discoItems):
            reply.children = [XMPPElement("query", namespace: XMPPNamespace.discoItems)]
        case ("get", "query", XMPPNamespace.version) where toJID?.local == nil:
            reply.children = [XMPPElement("query", namespace: XMPPNamespace.version, children: [
                XMPPElement("name", namespace: XMPPNamespace.version, text: "msrpgw"),
                XMPPElement("version", namespace: XMPPNamespace.version, text: version),
            ])]
        default:
            reply["type"] = "error"
            reply.children = (payload.map { [$0] } ?? []) + [XMPPStanzaError(type: "cancel", condition: "service-unavailable").element]
        }
        component.send(reply)
    }

    /// The component is a gateway to MSRP; its JIDs are MSRP users, who take
    /// receipts.
    func discoInfo(for jid: JID?, node: String?) -> XMPPElement {
        let ns = XMPPNamespace.discoInfo
        let isUser = jid?.local != nil
        let identity = isUser
            ? XMPPElement("identity", namespace: ns, ["category": "client", "type": "pc", "name": jid.flatMap(bridge.addresses.peer(for:))])
            : XMPPElement("identity", namespace: ns, ["category": "gateway", "type": "msrp", "name": "MSRP gateway"])
        var features = [XMPPNamespace.discoInfo, XMPPNamespace.receipts, XMPPNamespace.stanzaID]
        if !isUser { features += [XMPPNamespace.discoItems, XMPPNamespace.ping, XMPPNamespace.version] }
        return XMPPElement("query", namespace: ns, ["node": node], children: [identity] + features.sorted().map {
            XMPPElement("feature", namespace: ns, ["var": $0])
        })
    }
}
