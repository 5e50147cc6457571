import Events
import Foundation

/// What a receiver's HTTP answer means for the event (Standard Webhooks, and
/// what the sender's failure REPORT then says).
enum WebhookResponsePolicy {
    /// The outcome of an answer with `status`, `retryAfter` being its
    /// `Retry-After` header if any.
    static func outcome(status: Int, retryAfter: String?, now: Date = Date()) -> DeliveryOutcome {
        switch status {
        case 200..<300:
            return .delivered(proof: "HTTP \(status)")
        case 410:
            // The receiver says it is gone for good: no more deliveries to it.
            return .deadLetter(code: 403, reason: "webhook answered HTTP 410 Gone: endpoint disabled")
        case 429, 502, 503, 504:
            return .retry(after: retryAfter.flatMap { delay(retryAfter: $0, now: now) }, reason: "webhook answered HTTP \(status)")
        case 408:
            return .retry(after: nil, reason: "webhook answered HTTP 408")
        case 300..<400:
            return .permanentFailure(code: 403, reason: "webhook answered HTTP \(status): redirects are not followed")
        case 400..<500:
            return .permanentFailure(code: msrpCode(forHTTP: status), reason: "webhook answered HTTP \(status)")
        default:
            return .retry(after: nil, reason: "webhook answered HTTP \(status)")
        }
    }

    /// The MSRP status a failure REPORT carries for a refusing receiver: the
    /// equivalents where MSRP has one, else 403 (the destination refuses).
    static func msrpCode(forHTTP status: Int) -> Int {
        switch status {
        case 400: return 400
        case 413: return 413
        case 415: return 415
        default: return 403
        }
    }

    /// `Retry-After` as seconds or an HTTP date, capped at a day.
    static func delay(retryAfter: String, now: Date) -> Duration? {
        let v = retryAfter.trimmingCharacters(in: .whitespaces)
        if let seconds = Int64(v), seconds >= 0 { return .seconds(min(seconds, 86_400)) }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = f.date(from: v) else { return nil }
        return .seconds(Int64(max(0, min(86_400, date.timeIntervalSince(now)))))
    }
}
