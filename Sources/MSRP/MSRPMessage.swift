import NIOCore

/// A request method: the ones this implementation knows, or another kept as received.
public enum MSRPMethod: Sendable, Hashable, CustomStringConvertible {
    case send
    case report
    case auth
    case nickname
    case other(String)

    public init(_ text: String) {
        switch text {
        case "SEND": self = .send
        case "REPORT": self = .report
        case "AUTH": self = .auth
        case "NICKNAME": self = .nickname
        default: self = .other(text)
        }
    }

    /// From the method bytes of a start line, without making a String for the known ones.
    init(_ bytes: UnsafeRawBufferPointer) {
        func eq(_ s: StaticString) -> Bool {
            s.utf8CodeUnitCount == bytes.count && memcmpEqual(bytes, s)
        }
        if eq("SEND") {
            self = .send
        } else if eq("REPORT") {
            self = .report
        } else if eq("AUTH") {
            self = .auth
        } else if eq("NICKNAME") {
            self = .nickname
        } else {
            self = .other(String(decoding: bytes, as: UTF8.self))
        }
    }

    public var description: String {
        switch self {
        case .send: return "SEND"
        case .report: return "REPORT"
        case .auth: return "AUTH"
        case .nickname: return "NICKNAME"
        case .other(let s): return s
        }
    }
}

/// The continuation flag of an end-line (§5.1).
public enum ContinuationFlag: UInt8, Sendable, Hashable {
    /// `$`: this chunk ends the message.
    case complete = 0x24
    /// `+`: more chunks of this message follow.
    case more = 0x2B
    /// `#`: the message is abandoned.
    case aborted = 0x23
}

/// The start line and headers of a request.
public struct MSRPRequestHead: Sendable, Hashable {
    public var transactionID: String
    public var method: MSRPMethod
    public var toPath: [MSRPURI]
    public var fromPath: [MSRPURI]
    public var headers: MSRPHeaderFields

    public init(
        transactionID: String, method: MSRPMethod, toPath: [MSRPURI], fromPath: [MSRPURI],
        headers: MSRPHeaderFields = []
    ) {
        self.transactionID = transactionID
        self.method = method
        self.toPath = toPath
        self.fromPath = fromPath
        self.headers = headers
    }
}

/// The start line and headers of a response.
public struct MSRPResponseHead: Sendable, Hashable {
    public var transactionID: String
    public var code: Int
    public var comment: String?
    public var toPath: [MSRPURI]
    public var fromPath: [MSRPURI]
    public var headers: MSRPHeaderFields

    public init(
        transactionID: String, code: Int, comment: String?, toPath: [MSRPURI], fromPath: [MSRPURI],
        headers: MSRPHeaderFields = []
    ) {
        self.transactionID = transactionID
        self.code = code
        self.comment = comment
        self.toPath = toPath
        self.fromPath = fromPath
        self.headers = headers
    }

    public var isSuccess: Bool { (200..<300).contains(code) }
}

public enum MSRPFrameHead: Sendable, Hashable {
    case request(MSRPRequestHead)
    case response(MSRPResponseHead)

    public var transactionID: String {
        switch self {
        case .request(let r): return r.transactionID
        case .response(let r): return r.transactionID
        }
    }
}

/// A whole frame: head, body (nil when the request had no content-stuff) and end flag.
/// Convenient for small frames and tests; large bodies are streamed instead.
public struct MSRPFrame: Sendable, Hashable {
    public var head: MSRPFrameHead
    public var body: ByteBuffer?
    public var flag: ContinuationFlag

    public init(head: MSRPFrameHead, body: ByteBuffer? = nil, flag: ContinuationFlag = .complete) {
        self.head = head
        self.body = body
        self.flag = flag
    }

    public var request: MSRPRequestHead? {
        if case .request(let r) = head { return r }
        return nil
    }

    public var response: MSRPResponseHead? {
        if case .response(let r) = head { return r }
        return nil
    }
}

/// Default reason phrases for the status codes of RFC 4975 §10, RFC 4976 and RFC 7701.
public enum MSRPStatusCode {
    public static func reason(_ code: Int) -> String {
        switch code {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 408: return "Request Timeout"
        case 413: return "Message Too Large"
        case 415: return "Unsupported Media Type"
        case 423: return "Interval Out-of-Bounds"
        case 425: return "Nickname Already In Use"
        case 427: return "Recipient Unknown"
        case 481: return "Session Does Not Exist"
        case 501: return "Method Not Implemented"
        case 506: return "Session Already Bound"
        default: return "Error"
        }
    }
}

@inline(__always) func memcmpEqual(_ bytes: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
    for i in 0..<bytes.count where bytes[i] != s.utf8Start[i] { return false }
    return true
}
