/// An XMPP address (RFC 7622): `local@domain/resource`, each part at most
/// 1,023 bytes. The domain and the local part are compared case-insensitively
/// (lowercased here: the common case of PRECIS' case mapping; the full
/// PRECIS profiles are not applied).
public struct JID: Sendable, Hashable, CustomStringConvertible {
    public let local: String?
    public let domain: String
    public let resource: String?

    public init?(local: String?, domain: String, resource: String? = nil) {
        let local = local?.lowercased()
        let domain = domain.lowercased().hasSuffix(".") ? String(domain.lowercased().dropLast()) : domain.lowercased()
        guard Self.validDomain(domain) else { return nil }
        if let local {
            guard !local.isEmpty, local.utf8.count <= 1023,
                  !local.unicodeScalars.contains(where: { Self.forbiddenInLocal.contains($0) || $0.properties.isWhitespace || $0.value < 0x20 })
            else { return nil }
        }
        if let resource {
            guard !resource.isEmpty, resource.utf8.count <= 1023, !resource.unicodeScalars.contains(where: { $0.value < 0x20 }) else { return nil }
        }
        self.local = local
        self.domain = domain
        self.resource = resource
    }

    /// Parses `[local@]domain[/resource]`: the resource is everything after the
    /// first `/`, the local part everything before the first `@` ahead of it.
    public init?(_ text: String) {
        var rest = Substring(text)
        var resource: String?
        if let slash = rest.firstIndex(of: "/") {
            resource = String(rest[rest.index(after: slash)...])
            rest = rest[..<slash]
        }
        var local: String?
        if let at = rest.firstIndex(of: "@") {
            local = String(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        self.init(local: local, domain: String(rest), resource: resource)
    }

    public var bare: JID { JID(trusted: local, domain, nil) }

    public func with(resource: String?) -> JID? { JID(local: local, domain: domain, resource: resource) }

    public var description: String {
        (local.map { $0 + "@" } ?? "") + domain + (resource.map { "/" + $0 } ?? "")
    }

    private init(trusted local: String?, _ domain: String, _ resource: String?) {
        self.local = local
        self.domain = domain
        self.resource = resource
    }

    private static let forbiddenInLocal: Set<Unicode.Scalar> = ["\"", "&", "'", "/", ":", "<", ">", "@"]

    private static func validDomain(_ d: String) -> Bool {
        guard !d.isEmpty, d.utf8.count <= 1023 else { return false }
        if d.hasPrefix("[") { return d.hasSuffix("]") }  // an IPv6 literal
        return d.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63
                && !label.unicodeScalars.contains { $0.properties.isWhitespace || $0.value < 0x21 || "/@:<>\"'&\\[]".unicodeScalars.contains($0) }
        }
    }
}

/// JID escaping (XEP-0106): characters a local part cannot hold written as
/// `\20`, `\40`..., so that `alice@example.com` can be the local part of a
/// gateway address (`alice\40example.com@msrp.example.org`) and come back
/// unchanged.
public enum JIDEscaping {
    private static let escapes: [(Character, String)] = [
        (" ", "20"), ("\"", "22"), ("&", "26"), ("'", "27"), ("/", "2f"), (":", "3a"), ("<", "3c"), (">", "3e"), ("@", "40"), ("\\", "5c"),
    ]
    private static let byCharacter = Dictionary(uniqueKeysWithValues: escapes)
    private static let byCode = Dictionary(uniqueKeysWithValues: escapes.map { ($0.1, $0.0) })

    /// Escapes `s` for a local part. A backslash is escaped only where it would
    /// otherwise read as the start of an escape; leading and trailing spaces
    /// cannot be carried (XEP-0106 §4.2) and are dropped.
    public static func escape(_ s: String) -> String {
        let chars = Array(s.trimmingSpaces)
        var out = ""
        for (i, c) in chars.enumerated() {
            if c == "\\" {
                let next = i + 2 < chars.count ? String(chars[(i + 1)...(i + 2)]).lowercased() : ""
                out += byCode[next] != nil ? "\\5c" : "\\"
            } else if let code = byCharacter[c] {
                out += "\\" + code
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// The original of an escaped local part: every `\XX` that is one of the ten escapes, decoded.
    public static func unescape(_ s: String) -> String {
        let chars = Array(s)
        var out = ""
        var i = 0
        while i < chars.count {
            if chars[i] == "\\", i + 2 < chars.count, let c = byCode[String(chars[(i + 1)...(i + 2)]).lowercased()] {
                out.append(c)
                i += 3
            } else {
                out.append(chars[i])
                i += 1
            }
        }
        return out
    }
}

extension String {
    fileprivate var trimmingSpaces: Substring {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
