/// The MSRP view of an `m=message` section (RFC 4975 §8, RFC 4145, RFC 7701).
public struct MSRPMedia: Sendable, Hashable {
    /// RFC 4145 `a=setup`.
    public enum Setup: String, Sendable {
        case active, passive, actpass, holdconn
    }

    public enum Direction: String, Sendable {
        case sendrecv, sendonly, recvonly, inactive
    }

    public var port: Int
    /// `TCP/TLS/MSRP` (msrps) rather than `TCP/MSRP`; `TCP/WSS/MSRP` with `webSocket`.
    public var secure: Bool
    /// MSRP over WebSocket (RFC 7977 §8): `TCP/WS/MSRP` or `TCP/WSS/MSRP`.
    public var webSocket: Bool
    /// `a=path` URIs, as written: the first is where to connect, the last the peer itself.
    public var path: [String]
    public var acceptTypes: [String]
    public var acceptWrappedTypes: [String]
    public var maxSize: Int64?
    public var setup: Setup?
    /// `a=chatroom` tokens (`nickname`, `private-messages`); nil when absent.
    public var chatroom: [String]?
    public var direction: Direction

    public init(
        port: Int, secure: Bool = false, webSocket: Bool = false, path: [String], acceptTypes: [String], acceptWrappedTypes: [String] = [],
        maxSize: Int64? = nil, setup: Setup? = nil, chatroom: [String]? = nil, direction: Direction = .sendrecv
    ) {
        self.port = port
        self.secure = secure
        self.webSocket = webSocket
        self.path = path
        self.acceptTypes = acceptTypes
        self.acceptWrappedTypes = acceptWrappedTypes
        self.maxSize = maxSize
        self.setup = setup
        self.chatroom = chatroom
        self.direction = direction
    }

    public static let protoTCP = "TCP/MSRP"
    public static let protoTLS = "TCP/TLS/MSRP"
    public static let protoWS = "TCP/WS/MSRP"
    public static let protoWSS = "TCP/WSS/MSRP"

    /// The `m=` protocol for a transport.
    static func proto(secure: Bool, webSocket: Bool) -> String {
        webSocket ? (secure ? protoWSS : protoWS) : (secure ? protoTLS : protoTCP)
    }

    /// The MSRP view of `m`; throws when the section is not usable MSRP (no path,
    /// no accept-types, a bad setup or max-size).
    public init(_ m: MediaDescription) throws(SDPError) {
        let protos = [Self.protoTCP, Self.protoTLS, Self.protoWS, Self.protoWSS]
        guard m.media == "message", protos.contains(m.proto.uppercased()) else {
            throw SDPError("not an MSRP media section: m=\(m.media) \(m.port) \(m.proto)")
        }
        let path = m.values("path").flatMap { $0.split(separator: " ").map(String.init) }
        guard !path.isEmpty else { throw SDPError("MSRP media without a=path") }
        let types = m.values("accept-types").flatMap { $0.split(separator: " ").map(String.init) }
        guard !types.isEmpty else { throw SDPError("MSRP media without a=accept-types") }
        var maxSize: Int64?
        if let v = m.values("max-size").first {
            guard let n = Int64(v), n >= 0 else { throw SDPError("bad a=max-size:\(v)") }
            maxSize = n
        }
        var setup: Setup?
        if let v = m.values("setup").first {
            guard let s = Setup(rawValue: v) else { throw SDPError("bad a=setup:\(v)") }
            setup = s
        }
        let chatroom = m.has("chatroom") ? m.attributes.filter { $0.name == "chatroom" }.flatMap { ($0.value ?? "").split(separator: " ").map(String.init) } : nil
        let direction = [Direction.sendonly, .recvonly, .inactive].first { m.has($0.rawValue) } ?? .sendrecv
        self.init(
            port: m.port, secure: [Self.protoTLS, Self.protoWSS].contains(m.proto.uppercased()),
            webSocket: [Self.protoWS, Self.protoWSS].contains(m.proto.uppercased()), path: path, acceptTypes: types,
            acceptWrappedTypes: m.values("accept-wrapped-types").flatMap { $0.split(separator: " ").map(String.init) },
            maxSize: maxSize, setup: setup, chatroom: chatroom, direction: direction)
    }

    /// The `m=message` section for this media.
    public var mediaDescription: MediaDescription {
        var attributes = [SDPAttribute("accept-types", acceptTypes.joined(separator: " "))]
        if !acceptWrappedTypes.isEmpty { attributes.append(SDPAttribute("accept-wrapped-types", acceptWrappedTypes.joined(separator: " "))) }
        if let maxSize { attributes.append(SDPAttribute("max-size", String(maxSize))) }
        attributes.append(SDPAttribute("path", path.joined(separator: " ")))
        if let setup { attributes.append(SDPAttribute("setup", setup.rawValue)) }
        if let chatroom { attributes.append(SDPAttribute("chatroom", chatroom.isEmpty ? nil : chatroom.joined(separator: " "))) }
        if direction != .sendrecv { attributes.append(SDPAttribute(direction.rawValue)) }
        return MediaDescription(media: "message", port: port, proto: Self.proto(secure: secure, webSocket: webSocket), formats: ["*"], attributes: attributes)
    }
}

extension SessionDescription {
    /// The first MSRP media section that is not disabled (port 0).
    public func msrpMedia() throws(SDPError) -> (index: Int, media: MSRPMedia) {
        guard let index = media.firstIndex(where: { $0.media == "message" && $0.port != 0 }) else {
            throw SDPError("no m=message section")
        }
        return (index, try MSRPMedia(media[index]))
    }
}
