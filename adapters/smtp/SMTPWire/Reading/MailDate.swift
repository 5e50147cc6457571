import Foundation

/// A Date field (RFC 5322 §3.3, with the obsolete forms of §4.3 that mailers
/// still send: no weekday, two-digit years, named zones, comments) as a Date.
public enum MailDate {
    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let zones: [String: Int] = ["ut": 0, "gmt": 0, "z": 0, "utc": 0, "est": -5, "edt": -4, "cst": -6, "cdt": -5, "mst": -7, "mdt": -6, "pst": -8, "pdt": -7]

    public static func parse(_ text: String) -> Date? {
        // Comments "(UTC)" go; the weekday, if any, ends in a comma.
        var t = text.prefix(200).lowercased()
        while let open = t.firstIndex(of: "("), let close = t[open...].firstIndex(of: ")") { t.removeSubrange(open...close) }
        if let comma = t.firstIndex(of: ",") { t = String(t[t.index(after: comma)...]) }
        let words = t.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" })
        guard words.count >= 4, let day = Int(words[0]), (1...31).contains(day),
              let month = months.firstIndex(of: String(words[1].prefix(3))), var year = Int(words[2]) else { return nil }
        if year < 50 { year += 2000 } else if year < 1000 { year += 1900 }
        let clock = words[3].split(separator: ":").map { Int($0) }
        guard clock.count >= 2, let hour = clock[0], let minute = clock[1], (0...23).contains(hour), (0...59).contains(minute) else { return nil }
        let second = clock.count > 2 ? (clock[2] ?? 0) : 0
        var offset = 0
        if words.count > 4 {
            let zone = words[4]
            if let sign = zone.first, sign == "+" || sign == "-", zone.count == 5, let v = Int(zone.dropFirst()) {
                offset = (sign == "-" ? -1 : 1) * ((v / 100) * 3600 + (v % 100) * 60)
            } else if let hours = zones[String(zone)] {
                offset = hours * 3600
            }
        }
        var c = DateComponents()
        (c.year, c.month, c.day, c.hour, c.minute, c.second) = (year, month + 1, day, hour, minute, min(second, 60))
        c.timeZone = TimeZone(secondsFromGMT: 0)
        guard let utc = Calendar(identifier: .gregorian).date(from: c) else { return nil }
        return utc.addingTimeInterval(TimeInterval(-offset))
    }
}
