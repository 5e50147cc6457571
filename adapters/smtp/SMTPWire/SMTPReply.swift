/// A server reply (RFC 5321 §4.2): a three-digit code, one or more text lines,
/// and the enhanced status code (RFC 3463, `5.1.1`) when the server gives one.
public struct SMTPReply: Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    public var isPositive: Bool { (200..<400).contains(code) }
    /// 4yz: try again later.
    public var isTransient: Bool { (400..<500).contains(code) }
    /// 5yz: will not work.
    public var isPermanent: Bool { (500..<600).contains(code) }

    /// `x.y.z` from the start of the first line, when it is there.
    public var enhancedCode: String? {
        guard let first = lines.first, let token = first.split(separator: " ", maxSplits: 1).first else { return nil }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, ["2", "4", "5"].contains(parts[0]), parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) })
        else { return nil }
        return String(token)
    }

    /// `550 5.1.1 No such user`, on one line, for logs and the event's last error.
    public var description: String { "\(code) " + lines.joined(separator: " / ") }
}

/// The server broke the protocol; the connection is not usable any more.
public struct SMTPProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case overlongLine = "reply line over the limit"
        case tooManyLines = "reply with too many lines"
        case malformedReply = "malformed reply"
        case mixedCodes = "reply lines with different codes"
    }

    public var kind: Kind
    public var detail: String

    public init(_ kind: Kind, _ detail: String = "") {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { detail.isEmpty ? kind.rawValue : "\(kind.rawValue): \(detail)" }
}
