/// Limits the parser enforces; each violation is a typed error (see `MSRPParseError`).
public struct MSRPParserLimits: Sendable, Hashable {
    /// Bytes of the start line and all header lines together.
    public var maxHeaderBytes: Int
    /// Header lines (To-Path and From-Path included).
    public var maxHeaderCount: Int
    /// Body bytes of one chunk.
    public var maxChunkBodyBytes: Int64
    /// Size of a whole message, checked against Byte-Range.
    public var maxMessageBytes: Int64

    public init(
        maxHeaderBytes: Int = 16 * 1024, maxHeaderCount: Int = 64,
        maxChunkBodyBytes: Int64 = 16 * 1024 * 1024, maxMessageBytes: Int64 = 64 * 1024 * 1024
    ) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxChunkBodyBytes = maxChunkBodyBytes
        self.maxMessageBytes = maxMessageBytes
    }
}

/// What was wrong with the input, and which MSRP status code answers it.
public struct MSRPParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        // Fatal: the frame cannot be delimited, the connection must close.
        case badStartLine = "malformed start line"
        case badTransactionID = "malformed transaction id"
        case bareLineFeed = "line ended with LF instead of CRLF"
        // Recoverable: the frame is discarded up to its end-line and answered.
        case headerBlockTooLarge = "header block over the limit"
        case tooManyHeaders = "too many header fields"
        case malformedHeader = "malformed header field"
        case missingToPath = "missing To-Path"
        case missingFromPath = "missing From-Path"
        case misorderedPaths = "To-Path and From-Path must be the first two header fields"
        case duplicateHeader = "header field repeated"
        case chunkTooLarge = "chunk body over the limit"
        case messageTooLarge = "message over the size limit"
    }

    public var kind: Kind
    public var detail: String
    /// The transaction id when the start line was readable.
    public var transactionID: String?

    public init(_ kind: Kind, detail: String = "", transactionID: String? = nil) {
        self.kind = kind
        self.detail = detail
        self.transactionID = transactionID
    }

    /// Whether the connection can go on after this error.
    public var isRecoverable: Bool {
        switch kind {
        case .badStartLine, .badTransactionID, .bareLineFeed: return false
        default: return true
        }
    }

    /// The response code for the offending request (§10).
    public var statusCode: Int {
        switch kind {
        case .chunkTooLarge, .messageTooLarge: return 413
        default: return 400
        }
    }

    public var description: String {
        var s = kind.rawValue
        if !detail.isEmpty { s += ": " + detail }
        if let transactionID { s += " (transaction \(transactionID))" }
        return s
    }
}

/// A frame the parser had to reject but could delimit: enough of it to answer.
public struct MSRPInvalidFrame: Sendable, Hashable {
    public var error: MSRPParseError
    public var transactionID: String
    /// The method for a request; nil for a response (responses are never answered).
    public var method: MSRPMethod?
    public var toPath: [MSRPURI]?
    public var fromPath: [MSRPURI]?
    public var headers: MSRPHeaderFields
    /// True when the parser had already emitted `.head` for this frame (body limits).
    public var headEmitted: Bool
}
