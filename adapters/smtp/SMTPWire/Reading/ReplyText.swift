/// The new part of a reply: what its writer typed, without the history their
/// mail client quoted. Top-posted replies end where the history starts (an
/// attribution line "On ... wrote:" in the usual languages and wrappings,
/// Outlook's "-----Original Message-----" or "From: / Sent:" block, a
/// forwarded-message line); interleaved replies keep their own lines and lose
/// the `>` ones; a signature after "-- " goes. Heuristics, all in one place,
/// each tested against how real clients write.
public enum ReplyText {
    public static func newPart(of text: String) -> String {
        let lines = text.replacingCRLF().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var kept: [String] = []
        var i = 0
        scan: while i < lines.count {
            let line = lines[i]
            let trimmed = line.trimmingSpaces()
            if trimmed == "--" || line == "-- " { break }  // RFC 3676 §4.3 signature separator (often trimmed)
            if isHistoryMarker(trimmed) { break }
            if let span = attributionSpan(lines, at: i) {
                // Only history when quoted lines follow (or nothing but blank ones): "On Monday I wrote:" can be text.
                let after = lines[(i + span)...].first { !$0.trimmingSpaces().isEmpty }
                if after == nil || after?.hasPrefix(">") == true { break scan }
            }
            if isOutlookHeaderBlock(lines, at: i) { break }
            if !line.hasPrefix(">") { kept.append(line) }
            i += 1
        }
        // Trailing white space off each line; blank lines at both ends go, runs of them become one.
        var out: [String] = []
        for l in kept.map({ $0.trimmingTrailingSpaces() }) where !(l.isEmpty && (out.last?.isEmpty ?? true)) { out.append(l) }
        while out.last?.isEmpty == true { out.removeLast() }
        return out.joined(separator: "\n")
    }

    static func isHistoryMarker(_ t: String) -> Bool {
        let lower = t.lowercased()
        if lower.hasPrefix("-----original message-----") || lower.hasPrefix("-------- original message --------") { return true }
        if lower.contains("forwarded message") && lower.hasPrefix("---") { return true }
        if lower.hasPrefix("begin forwarded message:") { return true }
        // Outlook's rule above its From:/Sent: block.
        if t.count >= 20 && t.allSatisfy({ $0 == "_" }) { return true }
        return false
    }

    /// Attribution lines, as clients write them (Gmail wraps them over two or three lines).
    static let attributionStarts = ["on ", "am ", "le ", "el ", "il ", "op ", "em ", "w dniu ", "den "]
    static let attributionVerbs = ["wrote", "schrieb", "a écrit", "escribió", "ha scritto", "schreef", "escreveu", "napisał", "skrev"]

    /// How many lines an attribution at `i` spans (1-3), nil when there is none.
    static func attributionSpan(_ lines: [String], at i: Int) -> Int? {
        let first = lines[i].trimmingSpaces().lowercased()
        guard attributionStarts.contains(where: first.hasPrefix) else { return nil }
        var joined = first
        for span in 1...3 {
            if joined.hasSuffix(":"), attributionVerbs.contains(where: joined.contains) { return span }
            guard i + span < lines.count else { return nil }
            let next = lines[i + span].trimmingSpaces().lowercased()
            if next.isEmpty || next.hasPrefix(">") { return nil }
            joined += " " + next
        }
        return nil
    }

    /// Outlook's history: "From: ..." followed within a few lines by "Sent:" or "Date:", then "To:" or "Subject:".
    static func isOutlookHeaderBlock(_ lines: [String], at i: Int) -> Bool {
        let lower = lines[i].trimmingSpaces().lowercased()
        guard lower.hasPrefix("from:") || lower.hasPrefix("von:") || lower.hasPrefix("de :") || lower.hasPrefix("de:") else { return false }
        let next = lines[(i + 1)..<min(lines.count, i + 5)].map { $0.trimmingSpaces().lowercased() }
        let hasDate = next.contains { ["sent:", "date:", "gesendet:", "envoyé :", "enviado:"].contains(where: $0.hasPrefix) }
        let hasTo = next.contains { ["to:", "subject:", "an:", "betreff:", "à :", "objet :", "para:", "asunto:"].contains(where: $0.hasPrefix) }
        return hasDate && hasTo
    }
}

extension String {
    func replacingCRLF() -> String {
        guard contains("\r") else { return self }
        var out = ""
        out.reserveCapacity(utf8.count)
        for scalar in unicodeScalars where scalar != "\r" { out.unicodeScalars.append(scalar) }
        return out
    }

    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
