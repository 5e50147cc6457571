import CPIM
import Events
import Foundation
import Gateway
import Logging
import NIOConcurrencyHelpers
import XMPPClient
import XMPPWire

/// One XMPP server the bridge is a component of, as configured (`[xmpp.NAME]`).
public struct XMPPBridge: Sendable {
    public let name: String
    public let component: XMPPComponent
    public let addresses: XMPPAddressBook
    /// How long a message waits for its recipient's receipt before the server's
    /// acceptance counts as delivered (zero: at once).
    public let receiptWait: Duration
    /// The MUC rooms bridged to MSRP rooms, if any.
    public let rooms: XMPPRooms?
    /// Delivered markable messages waiting for their chat marker.
    let markers = XMPPDisplayMarkers()

    /// XMPP domains whose users may write to MSRP, and so be told (by a chat
    /// marker) that their message was displayed.
    public let senderDomains: Set<String>

    public init(name: String, component: XMPPComponent, addresses: XMPPAddressBook, receiptWait: Duration, rooms: XMPPRooms? = nil,
                senderDomains: [String] = []) {
        self.senderDomains = Set(senderDomains.map { $0.lowercased() })
        self.name = name
        self.component = component
        self.addresses = addresses
        self.receiptWait = receiptWait
        self.rooms = rooms
    }
}

/// Delivers events to XMPP users through a component connection: a chat
/// message from the MSRP sender's JID (a system message from the component
/// itself), a batch at a time with one proof from the server. Delivered means
/// the recipient's receipt came, or the server took the message and neither a
/// receipt nor an error came within the receipt wait (a client without
/// receipts: README says so). A stanza error is a failure REPORT with a
/// mapped status, or another try when it may pass (service-unavailable...).
/// Follow-ups owed to XMPP senders (`imdn` events) go back as receipts, or as
/// error replies when the MSRP side could not take the message.
public final class XMPPAdapter: BatchAdapter {
    public let name = "xmpp"
    public let schemes = ["xmpp"]
    public let batchSize: Int
    public var concurrency: Int { batchSize * 4 }
    /// A batch waits for its receipts together: the endpoint may have several.
    public var endpointConcurrency: Int { concurrency }
    /// The next batch goes out while one waits for its receipts (on the same
    /// connection, behind it): a backlog of one recipient drained at 3.3-3.8 k
    /// msg/s with one, 5.5-5.6 k with two (BENCHMARKS.md, issue 17).
    public var batchesInFlight: Int { 2 }
    private let bridges: [XMPPBridge]
    private let logger: Logger

    public init(bridges: [XMPPBridge], batchSize: Int = 256, logger: Logger = Logger(label: "msrpgw.xmpp")) {
        self.bridges = bridges
        self.batchSize = max(1, batchSize)
        self.logger = logger
    }

    static let notSent = "not sent: "

    /// The bridge a target goes through: the one whose server serves its domain
    /// (or a subdomain of it), else the first configured.
    func bridge(for target: XMPPTarget) -> XMPPBridge? {
        let domain = target.jid.domain
        return bridges.first { b in
            let server = b.component.configuration.serverDomain
            return domain == server || domain.hasSuffix("." + server)
        } ?? bridges.first
    }

    /// One lane per recipient (a user or a room, through its server): a batch
    /// waits for its receipts, and a recipient whose client sends none must hold
    /// up only its own messages, not everyone's on that server. The batches of
    /// different recipients share the component connection.
    public func endpoint(of target: String) -> String {
        guard let t = XMPPTarget(target), let b = bridge(for: t) else { return target }
        return "xmpp:\(b.name)/\(t.jid.bare)"
    }

    /// A refusal is about one recipient; only a message not sent says anything about the server.
    public func isEndpointFailure(_ outcome: DeliveryOutcome) -> Bool {
        guard case .retry(_, let reason) = outcome else { return false }
        return reason.hasPrefix(Self.notSent)
    }

    public func validate(target: String) throws(RouteError) {
        guard let t = XMPPTarget(target) else { throw RouteError("\(target) is not xmpp:user@domain") }
        guard bridge(for: t) != nil else { throw RouteError("\(target): no XMPP server is configured ([xmpp.NAME])") }
    }

    /// An MSRP user's IMDN may go to an XMPP user of the sender domains (it
    /// becomes a chat marker): they are who write to MSRP users.
    public func takesNotifications(to address: String) -> Bool {
        guard let t = XMPPTarget(address), let b = bridge(for: t) else { return false }
        return b.senderDomains.contains(t.jid.domain)
    }

    public func deliver(_ event: QueuedEvent) async -> DeliveryOutcome {
        await deliver(batch: [event])[0]
    }

    public func deliver(batch: [QueuedEvent]) async -> [DeliveryOutcome] {
        await deliver(batch: batch, sent: {})
    }

    /// `sent` once every stanza of the batch is written (to each server the
    /// batch goes to), before the receipts are awaited.
    public func deliver(batch: [QueuedEvent], sent: @escaping @Sendable () -> Void) async -> [DeliveryOutcome] {
        var outcomes = [DeliveryOutcome?](repeating: nil, count: batch.count)
        var messages: [String: [(index: Int, stanza: XMPPElement, target: String, room: Bool)]] = [:]
        for (i, event) in batch.enumerated() {
            guard let target = XMPPTarget(event.target), let bridge = bridge(for: target) else {
                outcomes[i] = .permanentFailure(code: 404, reason: "\(event.target) is no XMPP address of a configured server")
                continue
            }
            switch event.kind {
            case .imdn:
                outcomes[i] = answer(event, to: target, through: bridge)
            case .report:
                outcomes[i] = .permanentFailure(code: 400, reason: "an MSRP REPORT cannot go to XMPP")
            case .delivery where event.envelope.contentType.lowercased().hasPrefix(IMDN.contentType):
                outcomes[i] = marker(for: event, to: target, through: bridge)
            case .delivery, .system:
                switch stanza(for: event, to: target, through: bridge) {
                case .success(let s): messages[bridge.name, default: []].append((i, s, event.target, s["type"] == "groupchat"))
                case .failure(let decided): outcomes[i] = decided.outcome
                }
            }
        }
        let servers = messages.compactMap { name, items in bridges.first(where: { $0.name == name }).map { ($0, items) } }
        let unsent = NIOLockedValueBox(servers.count)
        let oneSent: @Sendable () -> Void = { if unsent.withLockedValue({ $0 -= 1; return $0 == 0 }) { sent() } }
        if servers.isEmpty { sent() }
        await withTaskGroup(of: [(Int, DeliveryOutcome)].self) { group in
            for (bridge, items) in servers {
                group.addTask {
                    let results = await bridge.component.deliver(items.map(\.stanza), receiptWait: bridge.receiptWait, sent: oneSent)
                    return zip(items, results).map { item, result in
                        let outcome = Self.outcome(result, target: item.target, server: bridge.name, room: item.room)
                        if case .delivered = outcome { Self.awaitMarker(batch[item.index], stanza: item.stanza, bridge: bridge) }
                        return (item.index, outcome)
                    }
                }
            }
            for await done in group { for (i, o) in done { outcomes[i] = o } }
        }
        return outcomes.map { $0 ?? .retry(after: nil, reason: Self.notSent + "no XMPP server took it") }
    }

    static func outcome(_ result: XMPPDeliveryResult, target: String, server: String, room: Bool) -> DeliveryOutcome {
        switch result {
        case .received: .delivered(proof: room ? "reflected by the MUC room \(target)" : "XMPP receipt from \(target)")
        case .accepted: .delivered(proof: "accepted by XMPP server \(server), no error")
        case .error(let e): XMPPStanzas.outcome(for: e, to: target)
        case .notSent(let why): .retry(after: nil, reason: notSent + why)
        }
    }

    /// A delivered markable message: its IMDN `displayed` waits for the chat marker.
    static func awaitMarker(_ event: QueuedEvent, stanza: XMPPElement, bridge: XMPPBridge) {
        guard stanza.child("markable", namespace: XMPPNamespace.chatMarkers) != nil, let imdn = Reporter().displayed(for: event),
              let to = stanza["to"].flatMap(JID.init), let from = stanza["from"] else { return }
        let ids = Set([stanza["id"], stanza.child("origin-id", namespace: XMPPNamespace.stanzaID)?["id"]].compactMap { $0 })
        bridge.markers.delivered(ids: ids, recipient: to.bare.description, sender: from, imdn: imdn)
    }

    struct Decided: Error { let outcome: DeliveryOutcome }

    /// The stanza an event becomes, or the outcome decided without sending.
    func stanza(for event: QueuedEvent, to target: XMPPTarget, through bridge: XMPPBridge) -> Result<XMPPElement, Decided> {
        let contentType = event.envelope.contentType.lowercased()
        guard contentType.isEmpty || contentType.hasPrefix("text/plain") else {
            return .failure(Decided(outcome: .permanentFailure(code: 415, reason: "XMPP chat carries text/plain, not \(event.envelope.contentType)")))
        }
        guard let body = event.body.contents() else {
            return .failure(Decided(outcome: .permanentFailure(code: 500, reason: "the body file of event \(event.id) is missing")))
        }
        // Said more than a few seconds before it goes out: the recipient is told when (XEP-0203).
        let waited = Date().timeIntervalSince(event.createdAt) > 5
        let stamp = waited ? (event.envelope.dateTime ?? RFC3339.string(from: event.createdAt)) : nil
        if let rooms = bridge.rooms, rooms.isRoom(target.jid), target.jid.resource != nil {
            // A private message to a MUC occupant, from the sender's own occupant.
            guard event.kind != .system, let from = event.envelope.from.flatMap({ rooms.occupant(of: $0, in: target.jid) }) else {
                return .failure(Decided(outcome: .permanentFailure(code: 403, reason: "only a participant of the bridged room writes privately to its occupants")))
            }
            return .success(XMPPStanzas.privateMessage(
                from: from.description, to: target.jid.description, id: "msrpgw-\(event.id)-\(event.attempts)", originID: "msrpgw-\(event.id)",
                text: String(decoding: body, as: UTF8.self)))
        }
        if let rooms = bridge.rooms, rooms.isRoom(target.jid) {
            // A MUC: from the sender's occupant, or said by the bridge's own on its behalf.
            var text = String(decoding: body, as: UTF8.self)
            var from = event.envelope.from.flatMap { rooms.occupant(of: $0, in: target.jid) }
            if from == nil {
                from = rooms.listener
                if event.kind != .system { text = "<\(XMPPStanzas.speaker(event.envelope.from))> " + text }
            }
            return .success(XMPPStanzas.groupchat(
                from: from?.description ?? bridge.component.domain, to: target.jid.bare.description, id: "msrpgw-\(event.id)-\(event.attempts)",
                originID: "msrpgw-\(event.id)", text: text, delayedSince: stamp))
        }
        let from = event.kind == .system ? nil : event.envelope.from.flatMap(bridge.addresses.jid(forPeer:))
        return .success(XMPPStanzas.message(
            from: from?.description ?? bridge.component.domain, to: target.jid.description,
            id: "msrpgw-\(event.id)-\(event.attempts)", originID: "msrpgw-\(event.id)",
            text: String(decoding: body, as: UTF8.self), delayedSince: stamp, markable: event.origin.imdnDispositions.contains("display")))
    }

    /// An MSRP user's IMDN about a message from XMPP: `displayed` is a chat
    /// marker (XEP-0333) for that message's id; the other dispositions have
    /// said what they had to already (the receipt went on the success REPORT).
    func marker(for event: QueuedEvent, to target: XMPPTarget, through bridge: XMPPBridge) -> DeliveryOutcome {
        guard bridge.senderDomains.contains(target.jid.domain) else {
            return .permanentFailure(code: 403, reason: "\(event.target) is not a user of the XMPP sender domains")
        }
        guard let body = event.body.contents(), let notification = try? IMDNNotification(xml: body) else {
            return .permanentFailure(code: 400, reason: "not an IMDN notification")
        }
        guard notification.status == "displayed" else { return .delivered(proof: "IMDN \(notification.status): nothing to tell XMPP") }
        let from = event.envelope.from.flatMap(bridge.addresses.jid(forPeer:))?.description ?? bridge.component.domain
        bridge.component.send(XMPPElement("message", namespace: XMPPStanzas.ns, ["from": from, "to": target.jid.description, "id": "marker-\(event.id)"],
                                          children: [XMPPElement("displayed", namespace: XMPPNamespace.chatMarkers, ["id": notification.messageID])]))
        return .delivered(proof: "chat marker sent")
    }

    /// What an XMPP sender is owed: a receipt when its message was delivered on
    /// the MSRP side, an error reply when it failed. Written once (held while
    /// the server is away); the XMPP sender's client is told nothing more.
    func answer(_ event: QueuedEvent, to target: XMPPTarget, through bridge: XMPPBridge) -> DeliveryOutcome {
        guard let id = event.origin.imdnMessageID else { return .permanentFailure(code: 400, reason: "nothing to answer: no stanza id") }
        let from = event.envelope.from.flatMap(bridge.addresses.jid(forPeer:))?.description ?? bridge.component.domain
        switch event.envelope.headers["disposition"] {
        case "delivered":
            bridge.component.send(XMPPStanzas.receipt(from: from, to: target.jid.description, of: id))
            return .delivered(proof: "receipt sent")
        case "failed":
            let error = XMPPStanzaError(type: "cancel", condition: "recipient-unavailable", text: event.envelope.headers["reason"])
            bridge.component.send(XMPPStanzas.bounce(of: id, from: from, to: target.jid.description, error))
            return .delivered(proof: "error reply sent")
        default:
            return .permanentFailure(code: 400, reason: "no XMPP form for disposition \(event.envelope.headers["disposition"] ?? "-")")
        }
    }
}
