/// Why a message/cpim body or an IMDN document could not be read. The gateway
/// answers such a message with 400 and this description.
public struct CPIMError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case headerBlockTooLarge = "CPIM header block over the limit"
        case tooManyHeaders = "too many CPIM headers"
        case missingBlankLine = "no blank line after the CPIM headers"
        case malformedHeader = "malformed CPIM header"
        case badAddress = "malformed CPIM address"
        case missingContentHeaders = "no MIME headers in the encapsulated content"
        case malformedXML = "malformed XML"
        case notIMDN = "not an IMDN document"
        case badEncoding = "text is not UTF-8"
    }

    public var kind: Kind
    public var detail: String

    public init(_ kind: Kind, _ detail: String = "") {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { detail.isEmpty ? kind.rawValue : "\(kind.rawValue): \(detail)" }
}
