/// A structured header value with parameters (`text/plain; charset="utf-8"`,
/// `attachment; filename*=UTF-8''na%C3%AFve.txt`), RFC 2045 §5.1 with RFC 2231
/// continuations (`name*0=`, `name*1*=`) and charsets. Names are lower case.
public struct HeaderParameters: Sendable, Hashable {
    /// What comes before the first `;`, lower case (`text/plain`, `attachment`).
    public var value: String
    public var parameters: [String: String]

    public subscript(_ name: String) -> String? { parameters[name.lowercased()] }

    public init(_ header: String?) {
        guard let header else {
            value = ""
            parameters = [:]
            return
        }
        var items = Self.split(header)
        value = items.isEmpty ? "" : items.removeFirst().trimmingSpaces().lowercased()
        // name -> (section -> (value, extended))
        var pieces: [String: [Int: (String, Bool)]] = [:]
        var plain: [String: String] = [:]
        for item in items.prefix(64) {
            guard let eq = item.firstIndex(of: "=") else { continue }
            var name = String(item[..<eq]).trimmingSpaces().lowercased()
            var raw = String(item[item.index(after: eq)...]).trimmingSpaces()
            if raw.hasPrefix("\""), raw.hasSuffix("\""), raw.count >= 2 { raw = Self.unquote(String(raw.dropFirst().dropLast())) }
            let extended = name.hasSuffix("*")
            if extended { name.removeLast() }
            if let star = name.firstIndex(of: "*"), let section = Int(name[name.index(after: star)...]), section < 100 {
                pieces[String(name[..<star]), default: [:]][section] = (raw, extended)
            } else if extended {
                pieces[name, default: [:]][0] = (raw, true)
            } else {
                plain[name] = raw
            }
        }
        for (name, sections) in pieces {
            // The first section's extended value names the charset for all of them.
            var charset: String?
            var bytes: [UInt8] = []
            for index in sections.keys.sorted() {
                guard let (text, extended) = sections[index] else { continue }
                if extended {
                    var encoded = Substring(text)
                    if index == sections.keys.min() {
                        let parts = text.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                        if parts.count == 3 {
                            charset = String(parts[0])
                            encoded = parts[2]
                        }
                    }
                    bytes += Self.percentDecoded(encoded)
                } else {
                    bytes += Array(text.utf8)
                }
            }
            plain[name] = Charset.decode(bytes, charset: charset)
        }
        parameters = plain
    }

    /// Splits at `;` outside quoted strings.
    static func split(_ s: String) -> [String] {
        var out: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for c in s {
            if escaped {
                current.append(c)
                escaped = false
            } else if c == "\\" && quoted {
                current.append(c)
                escaped = true
            } else if c == "\"" {
                quoted.toggle()
                current.append(c)
            } else if c == ";" && !quoted {
                out.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        out.append(current)
        return out.filter { !$0.trimmingSpaces().isEmpty || out.first == $0 }
    }

    static func unquote(_ s: String) -> String {
        var out = ""
        var escaped = false
        for c in s {
            if escaped || c != "\\" {
                out.append(c)
                escaped = false
            } else {
                escaped = true
            }
        }
        return out
    }

    static func percentDecoded(_ s: Substring) -> [UInt8] {
        var out: [UInt8] = []
        let bytes = Array(s.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, let hi = TransferDecoding.hex(bytes[i + 1]), let lo = TransferDecoding.hex(bytes[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }
}
