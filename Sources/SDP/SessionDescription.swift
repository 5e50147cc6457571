/// An SDP attribute line (`a=name` or `a=name:value`).
public struct SDPAttribute: Sendable, Hashable {
    public var name: String
    public var value: String?

    public init(_ name: String, _ value: String? = nil) {
        self.name = name
        self.value = value
    }
}

/// One `m=` section.
public struct MediaDescription: Sendable, Hashable {
    public var media: String
    public var port: Int
    public var proto: String
    public var formats: [String]
    public var connection: String?
    /// Other lines of the section (`i=`, `b=`, `k=`), kept as written.
    public var otherLines: [String]
    public var attributes: [SDPAttribute]

    public init(media: String, port: Int, proto: String, formats: [String], connection: String? = nil,
                otherLines: [String] = [], attributes: [SDPAttribute] = []) {
        self.media = media
        self.port = port
        self.proto = proto
        self.formats = formats
        self.connection = connection
        self.otherLines = otherLines
        self.attributes = attributes
    }

    /// The values of every `a=name:` line.
    public func values(_ name: String) -> [String] { attributes.filter { $0.name == name }.compactMap(\.value) }
    public func has(_ name: String) -> Bool { attributes.contains { $0.name == name } }
}

/// A session description (RFC 4566): the session part and its media sections.
public struct SessionDescription: Sendable, Hashable {
    public var origin: String
    public var sessionName: String
    public var connection: String?
    /// Session-level lines other than v, o, s, c and a (`t=`, `b=`, `i=`...), as written.
    public var otherLines: [String]
    public var attributes: [SDPAttribute]
    public var media: [MediaDescription]

    public init(origin: String, sessionName: String = "-", connection: String? = nil, otherLines: [String] = ["t=0 0"],
                attributes: [SDPAttribute] = [], media: [MediaDescription] = []) {
        self.origin = origin
        self.sessionName = sessionName
        self.connection = connection
        self.otherLines = otherLines
        self.attributes = attributes
        self.media = media
    }

    /// The description on the wire, CRLF line ends, fields in RFC 4566 order.
    public var text: String {
        var lines = ["v=0", "o=\(origin)", "s=\(sessionName)"]
        if let c = connection { lines.append("c=\(c)") }
        lines += otherLines
        lines += attributes.map(Self.line)
        for m in media {
            lines.append("m=\(m.media) \(m.port) \(m.proto) \(m.formats.joined(separator: " "))")
            if let c = m.connection { lines.append("c=\(c)") }
            lines += m.otherLines
            lines += m.attributes.map(Self.line)
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    static func line(_ a: SDPAttribute) -> String { a.value.map { "a=\(a.name):\($0)" } ?? "a=\(a.name)" }
}
