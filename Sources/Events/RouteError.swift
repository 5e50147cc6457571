/// Why a destination cannot be reached; the MSRP sender gets `code` (403: the
/// gateway is not an open relay).
public struct RouteError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var reason: String

    public init(code: Int = 403, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code) \(reason)" }
}
