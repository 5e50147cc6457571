/// One header of a CPIM message or of its encapsulated MIME entity, as written:
/// `name` keeps its namespace prefix (`imdn.Message-ID`), `value` is unescaped.
public struct CPIMHeader: Sendable, Hashable {
    public var name: String
    /// Header parameters written before the value (`Subject:;lang=fr Bonjour`).
    public var parameters: [String: String]
    public var value: String

    public init(name: String, value: String, parameters: [String: String] = [:]) {
        self.name = name
        self.value = value
        self.parameters = parameters
    }
}

/// A `Subject` with its optional language tag.
public struct CPIMSubject: Sendable, Hashable {
    public var text: String
    public var language: String?

    public init(_ text: String, language: String? = nil) {
        self.text = text
        self.language = language
    }
}

/// A message/cpim body (RFC 3862): message headers, then the encapsulated MIME
/// entity (its headers and content). Message header names are case sensitive;
/// MIME header names are not. Headers are kept in order, unknown and namespaced
/// ones included, so a gateway passes on what it does not understand.
public struct CPIMMessage: Sendable, Hashable {
    public var headers: [CPIMHeader]
    public var contentHeaders: [CPIMHeader]
    public var content: [UInt8]

    public init(headers: [CPIMHeader] = [], contentHeaders: [CPIMHeader] = [], content: [UInt8] = []) {
        self.headers = headers
        self.contentHeaders = contentHeaders
        self.content = content
    }

    /// Every value of the message header `name` (case sensitive, prefix included).
    public func values(_ name: String) -> [String] { headers.filter { $0.name == name }.map(\.value) }

    public var from: CPIMAddress? { values("From").first.flatMap { try? CPIMAddress(parsing: $0) } }
    public var to: [CPIMAddress] { values("To").compactMap { try? CPIMAddress(parsing: $0) } }
    public var cc: [CPIMAddress] { values("cc").compactMap { try? CPIMAddress(parsing: $0) } }
    public var dateTime: String? { values("DateTime").first }
    public var subjects: [CPIMSubject] {
        headers.filter { $0.name == "Subject" }.map { CPIMSubject($0.value, language: $0.parameters["lang"]) }
    }
    /// Header names the receiver must understand (`Require`).
    public var required: [String] {
        values("Require").flatMap { $0.split(separator: ",").map { $0.trimmingASCIIWhitespace() } }
    }

    /// `NS` declarations: prefix to namespace URI, in order.
    public var namespaces: [(prefix: String, uri: String)] {
        values("NS").compactMap { v in
            let t = v.trimmingASCIIWhitespace()
            guard let open = t.firstIndex(of: "<"), t.hasSuffix(">") else { return nil }
            let prefix = String(t[..<open]).trimmingASCIIWhitespace()
            let uri = String(t[t.index(after: open)..<t.index(before: t.endIndex)])
            return (prefix, uri)
        }
    }

    /// Values of the extension header `name` in namespace `uri`, whatever prefix
    /// the sender chose for it.
    public func values(namespace uri: String, _ name: String) -> [String] {
        let prefixes = namespaces.filter { $0.uri == uri }.map(\.prefix)
        return headers.filter { h in prefixes.contains { h.name == $0 + "." + name } }.map(\.value)
    }

    /// The value of a MIME header of the content (case-insensitive name).
    public func contentHeader(_ name: String) -> String? {
        contentHeaders.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The content's `Content-Type`, as written.
    public var contentType: String? { contentHeader("Content-Type") }
}
