import Foundation

/// `2026-11-24T10:00:00Z`: CPIM DateTime, IMDN datetime, webhook timestamps.
/// Written by hand: Foundation's ISO8601DateFormatter builds an ICU formatter
/// on every use, which was a fifth of a webhook delivery's time.
public enum RFC3339 {
    public static func string(from date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var tm = tm()
        gmtime_r(&t, &tm)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : String(n) }
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))Z"
    }
}
