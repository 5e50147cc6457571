import Foundation
import NIOConcurrencyHelpers

/// Who is in which chat room under which nickname (RFC 7701 §6): a nickname is
/// held by one session of the room at a time, compared case-insensitively, and
/// released when its session ends.
final class ChatRooms: Sendable {
    enum Reservation: Equatable { case granted, taken, notARoom, nicknamesOff }

    /// Room address (normal form) → settings; replaced by a configuration reload.
    /// A room taken out leaves its sessions up, no longer treated as a room.
    var rooms: [String: ChatRoom] { settings.withLockedValue { $0 } }
    private let settings: NIOLockedValueBox<[String: ChatRoom]>
    /// room → lower-cased nickname → (nickname as given, session id)
    private let nicknames = NIOLockedValueBox<[String: [String: (name: String, session: String)]]>([:])

    init(rooms: [String: ChatRoom]) {
        settings = NIOLockedValueBox(Self.normalized(rooms))
    }

    func replace(rooms new: [String: ChatRoom]) { settings.withLockedValue { $0 = Self.normalized(new) } }

    private static func normalized(_ rooms: [String: ChatRoom]) -> [String: ChatRoom] {
        var normalized: [String: ChatRoom] = [:]
        for (address, room) in rooms { normalized[RouteTable.normalize(address) ?? address] = room }
        return normalized
    }

    /// The room a session's route is, if it is one.
    func room(of session: GatewaySession) -> String? {
        guard let route = session.route.flatMap(RouteTable.normalize), rooms[route] != nil else { return nil }
        return route
    }

    func contains(_ address: String) -> Bool { RouteTable.normalize(address).map { rooms[$0] != nil } ?? false }

    /// - Parameter others: the other participants' addresses. A nickname whose
    ///   nickname URI is one of them is taken: private messages to that address
    ///   must reach its participant, not the nickname's holder.
    func reserve(_ nickname: String, in room: String?, for session: String, others: [String] = []) -> Reservation {
        guard let room, let settings = rooms[room] else { return .notARoom }
        guard settings.nicknames else { return .nicknamesOff }
        let key = nickname.lowercased()
        if let domain = Self.parts(of: room)?.host,
           others.contains(where: { Self.parts(of: $0).map { $0.host == domain && $0.user.lowercased() == key } ?? false }) {
            return .taken
        }
        return nicknames.withLockedValue { all in
            var inRoom = all[room] ?? [:]
            if let holder = inRoom[key], holder.session != session { return .taken }
            // A new nickname replaces the session's old one (§6.2).
            inRoom = inRoom.filter { $0.value.session != session }
            inRoom[key] = (nickname, session)
            all[room] = inRoom
            return .granted
        }
    }

    /// The session holding `nickname` in `room`.
    func session(nickname: String, in room: String) -> String? {
        nicknames.withLockedValue { $0[room]?[nickname.lowercased()]?.session }
    }

    /// The session whose nickname `address` is, in the only form RFC 7701 §6
    /// gives a nickname: a SIP URI in the room's own domain (`sip:Nick@room-domain`).
    /// Another domain's user part is someone else's address, never a nickname.
    func holder(of address: String, in room: String) -> String? {
        guard let target = Self.parts(of: address), let domain = Self.parts(of: room)?.host, target.host == domain else { return nil }
        return session(nickname: target.user, in: room)
    }

    /// The user part (percent-decoded) and lower-cased host of a `sip:` or `sips:` URI.
    static func parts(of uri: String) -> (user: String, host: String)? {
        let v = uri.trimmingCharacters(in: CharacterSet(charactersIn: " <>"))
        guard let colon = v.firstIndex(of: ":"), ["sip", "sips"].contains(v[..<colon].lowercased()) else { return nil }
        let rest = v[v.index(after: colon)...].prefix { $0 != ";" && $0 != "?" }
        guard let at = rest.lastIndex(of: "@") else { return nil }
        let user = rest[..<at].split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        let host = rest[rest.index(after: at)...].split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        guard !user.isEmpty, !host.isEmpty else { return nil }
        return (user.removingPercentEncoding ?? user, host.lowercased())
    }

    func release(session: String) {
        nicknames.withLockedValue { all in
            for room in Array(all.keys) { all[room] = all[room]?.filter { $0.value.session != session } }
        }
    }

    /// `"alice"` (a quoted string) or `sip:alice@room` (a URI: its user part).
    static func nickname(_ raw: String) -> String {
        var v = raw.trimmingCharacters(in: .whitespaces)
        if v.hasPrefix("\""), v.hasSuffix("\""), v.count >= 2 { return String(v.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"") }
        v = v.trimmingCharacters(in: CharacterSet(charactersIn: "<>"))
        if let colon = v.firstIndex(of: ":") {
            let rest = v[v.index(after: colon)...]
            return String(rest.split(separator: "@").first ?? rest)
        }
        return v
    }
}
