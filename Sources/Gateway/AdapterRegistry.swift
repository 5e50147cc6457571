import Events

/// Adapters by name and by URI scheme.
public struct AdapterRegistry: Sendable {
    public private(set) var adapters: [String: any Adapter] = [:]
    private var byScheme: [String: String] = [:]

    public init(_ adapters: [any Adapter] = []) {
        for a in adapters { register(a) }
    }

    public mutating func register(_ adapter: any Adapter) {
        adapters[adapter.name] = adapter
        for s in adapter.schemes { byScheme[s.lowercased()] = adapter.name }
    }

    public func adapter(named name: String) -> (any Adapter)? { adapters[name] }

    /// The adapter that delivers to `target`, by its URI scheme.
    public func adapter(for target: String) -> (any Adapter)? {
        guard let scheme = uriScheme(target) else { return nil }
        return byScheme[scheme].flatMap { adapters[$0] }
    }
}

/// The scheme of a URI, lower-cased (`sip` for `sip:ops@gw.example`).
func uriScheme(_ uri: String) -> String? {
    guard let colon = uri.firstIndex(of: ":"), colon > uri.startIndex else { return nil }
    let scheme = uri[..<colon]
    guard scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == ".") }) else { return nil }
    return scheme.lowercased()
}
