import Events
import Gateway
import Logging
import NIOConcurrencyHelpers
import XMPPClient
import XMPPWire

/// RFC 7701 chat rooms bridged to MUC rooms (XEP-0045). The bridge joins each
/// MUC as an occupant of its own (`room_nick`, `msrpgw` by default): it is the
/// one that listens, so that what the room says is taken once, not once per
/// occupant of ours. Each MSRP participant of a bridged room joins as an
/// occupant too, from its escaped JID, under its user part as nickname (a nick
/// already taken gets `[m]`), and leaves when its session ends; what it says
/// goes to the MUC from that occupant (see `XMPPAdapter`).
///
/// From the MUC: occupants' groupchat messages reach every live session of
/// the bridged room as CPIM from `xmpp:room@service/nick`; joins, leaves and
/// nick changes as system messages; a private message to one of our occupants
/// reaches that participant's sessions in the room alone. Our own messages
/// reflected by the room are recognised (our occupants' nicks, our ids) and
/// never passed back.
public final class XMPPRooms: Sendable {
    let component: XMPPComponent
    let addresses: XMPPAddressBook
    /// MSRP room address → MUC room (a bare JID).
    let rooms: [String: JID]
    let nick: String
    let logger: Logger

    private struct Occupant {
        let peer: String
        let room: JID
        var nick: String
        var sessions: Set<String>
        /// The nick is being negotiated (a conflict answered with another try).
        var retried = false
    }

    private struct State {
        /// By "room|peer".
        var occupants: [String: Occupant] = [:]
        /// Per room: the nicks seen present (not ours), once the bridge's own join came back.
        var present: [JID: Set<String>] = [:]
        var joined: Set<JID> = []
        var gateway: Gateway?
        /// Our occupants gone (room|nick, at most 1,000) whose leave has not come
        /// back from the room yet: it, and any line the room reflects late, are ours.
        var former: Set<String> = []
    }

    private let state = NIOLockedValueBox(State())

    public init(component: XMPPComponent, addresses: XMPPAddressBook, rooms: [String: JID], nick: String, logger: Logger) {
        self.component = component
        self.addresses = addresses
        self.rooms = Dictionary(rooms.map { (RouteTable.normalize($0.key) ?? $0.key, $0.value.bare) }, uniquingKeysWith: { a, _ in a })
        self.nick = nick
        self.logger = logger
    }

    /// The bridge's own JID, the one that listens in every room.
    var listener: JID? { JID(local: nil, domain: component.domain, resource: "rooms") }

    public func isRoom(_ jid: JID) -> Bool { rooms.values.contains(jid.bare) }

    /// The occupant JID of an MSRP sender in `room`, once it has joined.
    public func occupant(of sender: String, in room: JID) -> JID? {
        guard let peer = XMPPAddressBook.uri(sender) else { return nil }
        return state.withLockedValue { $0.occupants[Self.key(room.bare, peer)] }.flatMap { o in
            addresses.jid(forPeer: o.peer)?.with(resource: "rooms")
        }
    }

    static func key(_ room: JID, _ peer: String) -> String { "\(room)|\(peer)" }

    // MARK: - Following the sessions

    /// Joins the rooms and follows the gateway's sessions until cancelled; after
    /// each reconnect of the component every occupant joins again.
    public func run(gateway: Gateway) async {
        state.withLockedValue { $0.gateway = gateway }
        let (changes, changed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        gateway.onSessionCreated { _ in changed.yield() }
        gateway.onSessionClosed { _ in changed.yield() }
        component.onConnected { [weak self] in self?.rejoinAll() }
        defer { changed.finish() }
        rejoinAll()
        follow(gateway)
        for await _ in changes { follow(gateway) }
        for o in state.withLockedValue({ s in defer { s.occupants = [:] }; return Array(s.occupants.values) }) {
            leave(o)
        }
    }

    private func follow(_ gateway: Gateway) {
        var wanted: [String: (peer: String, room: JID, sessions: Set<String>)] = [:]
        for s in gateway.liveSessions {
            guard let route = s.route.flatMap(RouteTable.normalize), let room = rooms[route], let peer = s.peerAddress.flatMap(XMPPAddressBook.uri) else { continue }
            wanted[Self.key(room, peer), default: (peer, room, [])].sessions.insert(s.id)
        }
        let (joins, leaves) = state.withLockedValue { st -> ([Occupant], [Occupant]) in
            var joins: [Occupant] = []
            var leaves: [Occupant] = []
            for (key, o) in st.occupants where wanted[key] == nil {
                leaves.append(o)
                st.occupants[key] = nil
                st.former.insert("\(o.room)|\(o.nick)")
            }
            // A leave that never comes back must not pile up: any of the oldest will do.
            while st.former.count > 1000, let any = st.former.first { st.former.remove(any) }
            for (key, w) in wanted {
                if st.occupants[key] == nil {
                    let o = Occupant(peer: w.peer, room: w.room, nick: Self.nickname(for: w.peer), sessions: w.sessions)
                    st.occupants[key] = o
                    joins.append(o)
                } else {
                    st.occupants[key]?.sessions = w.sessions
                }
            }
            return (joins, leaves)
        }
        for o in leaves { leave(o) }
        for o in joins { join(o) }
    }

    /// `sip:alice@example.com` → `alice`.
    static func nickname(for peer: String) -> String {
        let afterScheme = peer.split(separator: ":", maxSplits: 1).last.map(String.init) ?? peer
        return afterScheme.split(separator: "@").first.map(String.init) ?? afterScheme
    }

    private func rejoinAll() {
        let all = state.withLockedValue { st -> [Occupant] in
            st.joined = []
            st.present = [:]
            return Array(st.occupants.values)
        }
        for room in Set(rooms.values) { joinAsBridge(room) }
        for o in all { join(o) }
    }

    private func joinAsBridge(_ room: JID) {
        guard let from = listener, let to = room.with(resource: nick) else { return }
        component.send(Self.presence(from: from, to: to))
    }

    private func join(_ o: Occupant) {
        guard let from = addresses.jid(forPeer: o.peer)?.with(resource: "rooms"), let to = o.room.with(resource: o.nick) else { return }
        component.send(Self.presence(from: from, to: to))
        logger.info("MSRP participant joins the MUC", metadata: ["room": "\(o.room)", "nick": "\(o.nick)"])
    }

    private func leave(_ o: Occupant) {
        guard let from = addresses.jid(forPeer: o.peer)?.with(resource: "rooms"), let to = o.room.with(resource: o.nick) else { return }
        component.send(XMPPElement("presence", namespace: XMPPStanzas.ns, ["from": from.description, "to": to.description, "type": "unavailable"]))
    }

    /// A join without history: what was said before is not ours to replay.
    static func presence(from: JID, to: JID) -> XMPPElement {
        XMPPElement("presence", namespace: XMPPStanzas.ns, ["from": from.description, "to": to.description], children: [
            XMPPElement("x", namespace: XMPPNamespace.muc, children: [XMPPElement("history", namespace: XMPPNamespace.muc, ["maxchars": "0"])]),
        ])
    }

    // MARK: - What the rooms say

    /// A stanza from a bridged room (its bare JID or an occupant of it).
    func receive(_ stanza: XMPPElement) async {
        guard let fromText = stanza["from"], let from = JID(fromText), isRoom(from), let toText = stanza["to"], let to = JID(toText) else { return }
        switch stanza.name {
        case "presence": await presence(stanza, from: from, to: to)
        case "message": await message(stanza, from: from, to: to)
        default: break
        }
    }

    /// The bridge, one of our occupants, or one of ours whose leave has not come back yet.
    private func isOurs(nick: String, in room: JID) -> Bool {
        nick == self.nick || state.withLockedValue { st in
            st.occupants.values.contains { $0.room == room && $0.nick == nick } || st.former.contains("\(room)|\(nick)")
        }
    }

    private func message(_ m: XMPPElement, from: JID, to: JID) async {
        guard let nick = from.resource, let text = m.child("body")?.text, !text.isEmpty else { return }
        let room = from.bare
        let type = m["type"] ?? "normal"
        if type == "groupchat" {
            // Every occupant of ours gets each line: the bridge's copy is the one taken.
            guard to == listener, !isOurs(nick: nick, in: room), !(m["id"] ?? "").hasPrefix("msrpgw-"),
                  !(m.child("origin-id", namespace: XMPPNamespace.stanzaID)?["id"] ?? "").hasPrefix("msrpgw-") else { return }
            let stanzaID = m.children.first { $0.name == "stanza-id" && $0.namespace == XMPPNamespace.stanzaID }?["id"] ?? m["id"]
            await pass(text, inRoom: room, from: "\(nick) <xmpp:\(room)/\(nick)>", system: false, key: stanzaID.map { "xmpp-muc|\(room)|\($0)" },
                       dateTime: m.child("delay", namespace: XMPPNamespace.delay)?["stamp"])
        } else if type == "chat" || type == "normal", to.resource == "rooms", let peer = addresses.peer(forOccupant: to) {
            // A private message to one of our occupants: to that participant's sessions in the room.
            let sessions = state.withLockedValue { $0.occupants[Self.key(room, peer)]?.sessions } ?? []
            for session in sessions.sorted() {
                await submit(OutboundMessage(to: .session(session), text: text, from: "\(nick) <xmpp:\(room)/\(nick)>",
                                             idempotencyKey: m["id"].map { "xmpp-muc-private|\(room)|\(nick)|\($0)|\(session)" }))
            }
        }
    }

    private func presence(_ p: XMPPElement, from: JID, to: JID) async {
        guard let nick = from.resource else { return }
        let room = from.bare
        let user = p.child("x", namespace: XMPPNamespace.mucUser)
        let codes = Set(user?.children.filter { $0.name == "status" }.compactMap { $0["code"] } ?? [])
        if p["type"] == "error" {
            rejoinAfterConflict(p, room: room, to: to)
            return
        }
        guard to == listener else { return }
        // The leave of an occupant of ours that has gone: not news, and no longer ours
        // to wait for (the nick is free for anyone after it).
        if p["type"] == "unavailable", state.withLockedValue({ st -> Bool in
            st.former.remove("\(room)|\(nick)") != nil
        }) { return }
        if codes.contains("110") {
            state.withLockedValue { _ = $0.joined.insert(room) }
            logger.info("joined the MUC", metadata: ["room": "\(room)", "nick": "\(nick)"])
            return
        }
        guard !isOurs(nick: nick, in: room) else { return }
        let (announce, wasPresent) = state.withLockedValue { st -> (Bool, Bool) in
            let was = st.present[room, default: []].contains(nick)
            if p["type"] == "unavailable" { st.present[room]?.remove(nick) } else { st.present[room, default: []].insert(nick) }
            return (st.joined.contains(room), was)
        }
        // Who was there before the bridge came is not news.
        guard announce else { return }
        let text: String
        if p["type"] == "unavailable" {
            if codes.contains("303"), let newNick = user?.child("item", namespace: XMPPNamespace.mucUser)?["nick"] {
                text = "\(nick) is now known as \(newNick)"
            } else {
                text = "\(nick) left"
            }
        } else {
            guard !wasPresent else { return }  // a status change, not a join
            text = "\(nick) joined"
        }
        logger.info("MUC occupant news", metadata: ["room": "\(room)", "news": "\(text)"])
        await pass(text, inRoom: room, from: "\(room.local ?? room.domain) <xmpp:\(room)>", system: true, key: nil, dateTime: nil)
    }

    /// A nick already taken in the MUC: one more try as `nick[m]`.
    private func rejoinAfterConflict(_ p: XMPPElement, room: JID, to: JID) {
        guard XMPPStanzaError(stanza: p)?.condition == "conflict", let peer = addresses.peer(forOccupant: to) else {
            logger.warning("MUC presence refused", metadata: ["room": "\(room)", "error": "\(XMPPStanzaError(stanza: p).map(\.description) ?? "-")"])
            return
        }
        let retry = state.withLockedValue { st -> Occupant? in
            guard var o = st.occupants[Self.key(room, peer)], !o.retried else { return nil }
            o.nick += "[m]"
            o.retried = true
            st.occupants[Self.key(room, peer)] = o
            return o
        }
        if let retry { join(retry) }
    }

    /// To every live session of the MSRP room bridged to `room`.
    private func pass(_ text: String, inRoom room: JID, from: String, system: Bool, key: String?, dateTime: String?) async {
        guard let gateway = state.withLockedValue({ $0.gateway }) else { return }
        let routes = Set(rooms.filter { $0.value == room }.keys)
        for session in gateway.liveSessions where session.route.flatMap(RouteTable.normalize).map(routes.contains) ?? false {
            await submit(OutboundMessage(to: .session(session.id), text: text, system: system, from: from,
                                         idempotencyKey: key.map { "\($0)|\(session.id)" }, dateTime: dateTime))
        }
    }

    private func submit(_ message: OutboundMessage) async {
        guard let gateway = state.withLockedValue({ $0.gateway }) else { return }
        do {
            _ = try await gateway.submit(message)
        } catch {
            logger.warning("MUC message not passed on", metadata: ["error": "\(error)"])
        }
    }
}

extension XMPPAddressBook {
    /// The MSRP peer behind one of our MUC occupants (`alice\40example.com@msrp.example.org/rooms`),
    /// whatever its domain (it is in our rooms because it is in the MSRP room).
    func peer(forOccupant jid: JID) -> String? {
        guard jid.domain == domain, let local = jid.local else { return nil }
        if let aliased = aliases[local] { return aliased }
        let plain = JIDEscaping.unescape(local)
        return Self.schemes.contains(where: plain.hasPrefix) ? plain : "sip:" + plain
    }
}
