/// Turns message text into PRIVMSG/NOTICE texts that fit an IRC line: each
/// line of the text separately, long ones cut at the last space that fits,
/// else between two characters (never inside a UTF-8 sequence or a grapheme);
/// past `maxLines`, the last line is cut short with a note saying how much was left out.
public struct IRCTextSplitter: Sendable {
    /// Bytes available for the text in each line.
    public var budget: Int
    public var maxLines: Int

    public init(budget: Int, maxLines: Int = 10) {
        self.budget = max(16, budget)
        self.maxLines = max(1, maxLines)
    }

    /// The budget left in a `lineLength`-byte line (512, or ISUPPORT LINELEN)
    /// once the server has put `:source COMMAND target :` before the text and
    /// CR LF after it. `source` is how others will see us (nick!user@host);
    /// when unknown, assume the longest the server allows (63 + 1 + 10 + 1 + 63).
    public static func budget(lineLength: Int = 512, source: String?, command: String = "PRIVMSG", target: String) -> Int {
        let sourceBytes = source?.utf8.count ?? 138
        return lineLength - 2 - (1 + sourceBytes + 1 + command.utf8.count + 1 + target.utf8.count + 2)
    }

    public func split(_ text: String) -> [String] {
        var pieces: [String] = []
        for raw in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) {
            var line = Substring(raw)
            while !line.isEmpty {
                if line.utf8.count <= budget {
                    pieces.append(String(line))
                    break
                }
                let (head, rest) = cut(line)
                pieces.append(String(head))
                line = rest
            }
        }
        guard pieces.count > maxLines else { return pieces }
        let left = pieces[(maxLines - 1)...].reduce(0) { $0 + $1.utf8.count }
        // The fullest note that fits the budget (a tiny budget gets just the ellipsis).
        let notes = [" [… \(pieces.count - maxLines + 1) more lines, \(left) bytes, cut]", " [… cut]", "…"]
        let note = notes.first { $0.utf8.count <= budget } ?? "…"
        var last = Substring(pieces[maxLines - 1])
        while last.utf8.count + note.utf8.count > budget, !last.isEmpty { last = last.dropLast() }
        return Array(pieces[..<(maxLines - 1)]) + [String(last) + note]
    }

    /// The longest head within the budget, preferring to end before a space.
    private func cut(_ line: Substring) -> (Substring, Substring) {
        var bytes = 0
        var end = line.startIndex
        var lastSpace: Substring.Index?
        for i in line.indices {
            let size = line[i].utf8.count
            if bytes + size > budget { break }
            if line[i] == " " { lastSpace = i }
            bytes += size
            end = line.index(after: i)
        }
        if end == line.startIndex { end = line.index(after: line.startIndex) }  // a character over the budget alone
        if let space = lastSpace, space > line.startIndex, end < line.endIndex {
            return (line[..<space], line[line.index(after: space)...])
        }
        return (line[..<end], line[end...])
    }
}
