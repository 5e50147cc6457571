import Foundation

/// A sortable, unique event id: milliseconds since 2020 (42 bits), the node
/// (10 bits, for several gateways sharing one queue) and a sequence (12 bits).
/// Ids made later sort after ids made earlier on the same node.
public struct EventID: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public var rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
    public static func < (a: EventID, b: EventID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }

    public init?(_ text: String) {
        guard let v = Int64(text), v > 0 else { return nil }
        rawValue = v
    }
}

/// What an event is for. Everything that must happen later is an event.
public enum EventKind: String, Sendable, Codable, CaseIterable {
    /// Deliver a message to an adapter (webhook, mailto, irc, msrp, ...).
    case delivery
    /// A REPORT owed to an MSRP sender.
    case report
    /// An IMDN notification owed to an MSRP sender.
    case imdn
    /// A system message to a session or room.
    case system
}

public enum EventState: String, Sendable, Codable, CaseIterable {
    /// `bounced`: delivered (a mail relay said 250), then its far side reported
    /// it undeliverable (an RFC 3464 delivery status notification).
    case queued, leased, delivered, failed, dead, bounced
}

/// Where a message came from, and what its sender asked to be told.
public struct EventOrigin: Sendable, Hashable, Codable {
    /// The MSRP session it came in on; nil for a page-mode message.
    public var sessionID: String?
    public var messageID: String?
    /// The SEND's From-Path, URIs in order: where REPORTs go back.
    public var fromPath: [String]
    /// The SEND's To-Path, URIs in order.
    public var toPath: [String]
    /// A page-mode message's sender (a SIP MESSAGE's authenticated URI): where
    /// its IMDNs go back, as page-mode messages.
    public var pageModeSender: String?
    public var byteCount: Int64?
    /// Success-Report of the SEND: a success REPORT is owed when delivered.
    public var successReport: Bool
    /// Failure-Report of the SEND.
    public var failureReport: FailureReportRequest
    public var imdnMessageID: String?
    /// Requested IMDN dispositions: positive-delivery, negative-delivery, display.
    public var imdnDispositions: [String]

    public init(
        sessionID: String? = nil, messageID: String? = nil, fromPath: [String] = [], toPath: [String] = [],
        pageModeSender: String? = nil, byteCount: Int64? = nil, successReport: Bool = false,
        failureReport: FailureReportRequest = .yes, imdnMessageID: String? = nil, imdnDispositions: [String] = []
    ) {
        self.sessionID = sessionID
        self.messageID = messageID
        self.fromPath = fromPath
        self.toPath = toPath
        self.pageModeSender = pageModeSender
        self.byteCount = byteCount
        self.successReport = successReport
        self.failureReport = failureReport
        self.imdnMessageID = imdnMessageID
        self.imdnDispositions = imdnDispositions
    }
}

/// Which failures a sender wants to hear about (RFC 4975 §7.1.2; the MSRP
/// header's values, kept here so that storage needs no MSRP types).
public enum FailureReportRequest: String, Sendable, Hashable, Codable {
    /// Every failure, and a response to every chunk.
    case yes
    /// Failures only (no 200 responses).
    case partial
    /// Nothing: no failure response and no failure REPORT, ever.
    case no
}

/// The message itself, independent of MSRP.
public struct EventEnvelope: Sendable, Hashable, Codable {
    public var from: String?
    public var to: [String]
    public var cc: [String]
    public var subject: String?
    public var dateTime: String?
    public var contentType: String
    public var headers: [String: String]

    public init(
        from: String? = nil, to: [String] = [], cc: [String] = [], subject: String? = nil, dateTime: String? = nil,
        contentType: String = "text/plain", headers: [String: String] = [:]
    ) {
        self.from = from
        self.to = to
        self.cc = cc
        self.subject = subject
        self.dateTime = dateTime
        self.contentType = contentType
        self.headers = headers
    }
}

/// The body: inline bytes, or a file the queue now owns (large messages).
public enum EventBody: Sendable, Hashable {
    case inline([UInt8])
    case file(path: String, size: Int64)

    public var size: Int64 {
        switch self {
        case .inline(let b): return Int64(b.count)
        case .file(_, let size): return size
        }
    }

    /// The bytes, read from the file when stored in one; nil when that file is gone.
    public func contents() -> [UInt8]? {
        switch self {
        case .inline(let b): return b
        case .file(let path, _): return FileManager.default.contents(atPath: path).map { [UInt8]($0) }
        }
    }
}

/// An event to put into the queue.
public struct NewEvent: Sendable, Hashable {
    public var kind: EventKind
    /// The adapter that delivers it ("webhook", "smtp", "irc", "msrp", ...).
    public var adapter: String
    /// Where to: a URI the adapter understands.
    public var target: String
    public var origin: EventOrigin
    public var envelope: EventEnvelope
    public var body: EventBody
    /// Ingress idempotency: the same key enqueued twice is one event. By default
    /// (session, Message-ID, adapter, target) when the origin has a Message-ID.
    public var dedupeKey: String?
    /// The event this one follows up (a REPORT about a delivery, say).
    public var parent: EventID?
    /// Not before this time.
    public var notBefore: Date?

    public init(
        kind: EventKind = .delivery, adapter: String, target: String, origin: EventOrigin = EventOrigin(),
        envelope: EventEnvelope = EventEnvelope(), body: EventBody = .inline([]), dedupeKey: String? = nil,
        parent: EventID? = nil, notBefore: Date? = nil
    ) {
        self.kind = kind
        self.adapter = adapter
        self.target = target
        self.origin = origin
        self.envelope = envelope
        self.body = body
        self.parent = parent
        self.notBefore = notBefore
        self.dedupeKey = dedupeKey ?? origin.messageID.map { mid in
            "\(origin.sessionID ?? "-")|\(mid)|\(kind.rawValue)|\(adapter)|\(target)"
        }
    }
}

/// An event as stored.
public struct QueuedEvent: Sendable, Hashable {
    public var id: EventID
    public var kind: EventKind
    public var state: EventState
    public var adapter: String
    public var target: String
    public var origin: EventOrigin
    public var envelope: EventEnvelope
    public var body: EventBody
    public var parent: EventID?
    public var attempts: Int
    public var nextAttemptAt: Date
    public var leaseOwner: String?
    public var lastError: String?
    /// What the adapter gave as proof of delivery (HTTP status, SMTP queue id, ...).
    public var proof: String?
    /// The final status code when failed or dead (an MSRP status).
    public var statusCode: Int?
    public var createdAt: Date
    public var updatedAt: Date

    /// For other `EventQueue` implementations and for tests.
    public init(
        id: EventID, kind: EventKind, state: EventState, adapter: String, target: String, origin: EventOrigin, envelope: EventEnvelope,
        body: EventBody, parent: EventID?, attempts: Int, nextAttemptAt: Date, leaseOwner: String?, lastError: String?, proof: String?,
        statusCode: Int?, createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.kind = kind
        self.state = state
        self.adapter = adapter
        self.target = target
        self.origin = origin
        self.envelope = envelope
        self.body = body
        self.parent = parent
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.leaseOwner = leaseOwner
        self.lastError = lastError
        self.proof = proof
        self.statusCode = statusCode
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// News of a delivered event from its far side, later: a mail's delivery
/// status notification (RFC 3464).
public enum LaterNews: Sendable, Hashable {
    /// It did not reach its recipient after all: the sender is owed a failure
    /// (`code` is the MSRP status) as if the delivery had failed.
    case bounced(code: Int, reason: String)
    /// Still trying (`Action: delayed`): recorded, nothing owed.
    case delayed(reason: String)
}

/// What an adapter says about one leased event.
public enum DeliveryOutcome: Sendable, Hashable {
    case delivered(proof: String)
    /// Try again after `after` (the policy's backoff when nil).
    case retry(after: Duration?, reason: String)
    /// Delivered to some of the event's recipients and refused for good by the
    /// others (an email accepted for two addresses of three): recorded as
    /// delivered, and the sender is owed a failure notice with `code` as well.
    case partial(proof: String, code: Int, reason: String)
    /// The target cannot take anything yet (its recipient has no live session):
    /// try again after `after` without counting an attempt. The maximum age
    /// still applies.
    case notReady(after: Duration, reason: String)
    /// Will never work: an MSRP status code for the failure REPORT, and why.
    case permanentFailure(code: Int, reason: String)
    /// Give up now and keep the event in the dead letter for an operator to
    /// replay (an endpoint disabled by `410`, say): failed as far as the sender
    /// is concerned, with `code`.
    case deadLetter(code: Int, reason: String)
}
