/// Readable text from HTML, for the plain part of a mail we send and for a
/// reply that came as HTML only: tags go, block ends become line breaks,
/// `<head>`, `<style>` and `<script>` go with their content, entities are read,
/// and what is inside `<blockquote>` comes out as `> ` lines (so that the
/// quoted history of a reply is recognised as in plain text). One pass, linear.
public enum HTMLText {
    static let blocks: Set<String> = ["br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "ul", "ol", "pre"]
    static let skipped: Set<String> = ["head", "style", "script", "title"]

    public static func plain(_ html: String) -> String {
        var lines: [String] = []
        var line = ""
        var depth = 0
        var skipping: String?
        func endLine() {
            let trimmed = line.trimmingSpaces()
            let prefix = String(repeating: ">", count: depth)
            lines.append(depth > 0 ? (trimmed.isEmpty ? prefix : prefix + " " + trimmed) : trimmed)
            line = ""
        }
        var i = html.startIndex
        while i < html.endIndex {
            let c = html[i]
            if c == "<" {
                guard let close = html[i...].firstIndex(of: ">") else { break }
                let tag = html[html.index(after: i)..<close]
                i = html.index(after: close)
                if tag.hasPrefix("!") { continue }  // comments and doctype
                let closing = tag.hasPrefix("/")
                let name = tag.drop { $0 == "/" }.prefix { $0.isLetter || $0.isNumber }.lowercased()
                if let s = skipping {
                    if closing, name == s { skipping = nil }
                    continue
                }
                if !closing, skipped.contains(name), !tag.hasSuffix("/") {
                    skipping = name
                    continue
                }
                if name == "blockquote" {
                    if !line.trimmingSpaces().isEmpty || !closing { endLine() }
                    depth = closing ? max(0, depth - 1) : min(depth + 1, 20)
                } else if blocks.contains(name), !(closing && name == "br") {
                    endLine()
                }
                continue
            }
            i = html.index(after: i)
            if skipping != nil { continue }
            if c == "&", let semi = html[i...].prefix(10).firstIndex(of: ";") {
                if let decoded = entity(html[i..<semi]) {
                    line.append(decoded)
                    i = html.index(after: semi)
                    continue
                }
            }
            if c == "\n" || c == "\r" || c == "\t" || c == "\r\n" {
                if !line.hasSuffix(" ") { line.append(" ") }
            } else if c == " ", line.hasSuffix(" ") {
                continue
            } else {
                line.append(c)
            }
        }
        endLine()
        // At most one empty line in a row, none at either end.
        var out: [String] = []
        for l in lines where !(l.isEmpty && (out.last?.isEmpty ?? true)) { out.append(l) }
        while out.last?.isEmpty == true { out.removeLast() }
        return out.joined(separator: "\n")
    }

    static func entity(_ name: Substring) -> Character? {
        switch name {
        case "lt": return "<"
        case "gt": return ">"
        case "amp": return "&"
        case "quot": return "\""
        case "apos", "#39": return "'"
        case "nbsp", "#160": return " "
        case "mdash": return "\u{2014}"
        case "ndash": return "\u{2013}"
        case "hellip": return "\u{2026}"
        case "laquo": return "\u{AB}"
        case "raquo": return "\u{BB}"
        case "euro": return "\u{20AC}"
        case "copy": return "\u{A9}"
        default:
            guard name.hasPrefix("#") else { return nil }
            let digits = name.dropFirst()
            let value = digits.hasPrefix("x") || digits.hasPrefix("X") ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits)
            guard let value, let scalar = Unicode.Scalar(value), value != 0 else { return nil }
            return Character(scalar)
        }
    }
}
