import MSRP

/// The grammar of API strings that end up in MSRP, CPIM or mail headers and in
/// logs: refused with 400 (naming the field) before anything is stored.
enum APIInput {
    /// A media type (RFC 2045: type/subtype and parameters), no control characters.
    static func mediaType(_ value: String, field: String) throws(APIError) -> String {
        try noControls(value, field: field)
        guard (try? MediaType(value)) != nil else { throw APIError(.badRequest, "\(field) \(value.debugDescription) is not a media type") }
        return value
    }

    /// An absolute URI (`scheme:rest`): no spaces, controls, angle brackets or quotes.
    static func uri(_ value: String, field: String) throws(APIError) -> String {
        guard value.utf8.count <= 2048, let colon = value.firstIndex(of: ":"), colon != value.startIndex,
              value[..<colon].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }),
              value.first?.isLetter == true, value.index(after: colon) != value.endIndex,
              !value.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F || "<>\"".unicodeScalars.contains($0) })
        else { throw APIError(.badRequest, "\(field) \(value.debugDescription) is not a URI") }
        return value
    }

    /// Text for one header line (a subject): no control characters, at most 998 bytes (RFC 5322).
    static func headerText(_ value: String, field: String) throws(APIError) -> String {
        try noControls(value, field: field)
        guard value.utf8.count <= 998 else { throw APIError(.badRequest, "\(field) is longer than 998 bytes") }
        return value
    }

    /// A token the client picked (an idempotency key, a session id): visible ASCII, at most 256 bytes.
    static func token(_ value: String, field: String) throws(APIError) -> String {
        guard !value.isEmpty, value.utf8.count <= 256, value.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw APIError(.badRequest, "\(field) must be 1-256 visible ASCII characters")
        }
        return value
    }

    private static func noControls(_ value: String, field: String) throws(APIError) {
        if value.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
            throw APIError(.badRequest, "\(field) holds control characters")
        }
    }
}
