/// A JSON object written straight into bytes, keys in the order they are
/// given. Why not JSONEncoder: the payload is written once per delivery, and
/// Codable's boxing and key sorting were a twentieth of the daemon's CPU per
/// message end to end (issue 15). Strings are escaped as RFC 8259 requires
/// (quote, backslash, control characters); everything else is UTF-8 as is.
struct JSONText {
    private(set) var bytes: [UInt8] = []
    /// Whether the object being written has no member yet (one per level).
    private var empty: [Bool] = []

    init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    mutating func beginObject() {
        bytes.append(UInt8(ascii: "{"))
        empty.append(true)
    }

    mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        empty.removeLast()
    }

    /// A member's key; its value follows.
    mutating func key(_ key: StaticString) {
        if empty.last == false { bytes.append(UInt8(ascii: ",")) }
        if !empty.isEmpty { empty[empty.count - 1] = false }
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    mutating func member(_ key: StaticString, _ value: String) {
        self.key(key)
        string(value)
    }

    /// Leaves the member out when the value is nil (as Codable's synthesized encoding does).
    mutating func member(_ key: StaticString, _ value: String?) {
        guard let value else { return }
        member(key, value)
    }

    mutating func member(_ key: StaticString, _ value: Int) {
        self.key(key)
        bytes.append(contentsOf: String(value).utf8)
    }

    /// An object of string members, keys in ascending order (stable bytes, so a
    /// payload can be compared).
    mutating func member(_ key: StaticString, _ dictionary: [String: String]) {
        self.key(key)
        bytes.append(UInt8(ascii: "{"))
        for (i, (k, v)) in dictionary.sorted(by: { $0.key < $1.key }).enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            string(k)
            bytes.append(UInt8(ascii: ":"))
            string(v)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// An array whose elements `element` writes (each an object or a value).
    mutating func array<C: Collection>(_ key: StaticString, _ elements: C, _ element: (inout JSONText, C.Element) -> Void) {
        self.key(key)
        bytes.append(UInt8(ascii: "["))
        for (i, e) in elements.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            element(&self, e)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { utf8 in
            var start = 0
            for (i, b) in utf8.enumerated() where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i]))
                start = i + 1
                switch b {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(b >> 4)], hex[Int(b & 0xF)]])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
