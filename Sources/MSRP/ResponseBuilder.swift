/// Builds responses (§7.2) and REPORT requests (§7.1.2-7.1.4).
public enum MSRPResponseBuilder {
    /// The response to `request`, sent back on the connection it came in on.
    ///
    /// For SEND the To-Path is the last From-Path URI (the previous hop); for other
    /// methods the whole From-Path reversed. The From-Path is `local`, the URI that
    /// identifies us in the session (by default the last To-Path URI of the request).
    public static func response(
        to request: MSRPRequestHead, code: Int, comment: String? = nil, local: MSRPURI? = nil,
        headers: MSRPHeaderFields = []
    ) -> MSRPResponseHead {
        let toPath: [MSRPURI]
        if request.method == .send {
            toPath = request.fromPath.last.map { [$0] } ?? []
        } else {
            toPath = request.fromPath.reversed()
        }
        let from = local ?? request.toPath.last
        return MSRPResponseHead(
            transactionID: request.transactionID, code: code, comment: comment ?? MSRPStatusCode.reason(code),
            toPath: toPath, fromPath: from.map { [$0] } ?? [], headers: headers)
    }

    /// A response to a frame the parser rejected, when enough of it was read to
    /// address one (both paths); nil for responses and unaddressable requests.
    public static func response(to invalid: MSRPInvalidFrame, comment: String? = nil) -> MSRPResponseHead? {
        guard let method = invalid.method, let to = invalid.toPath, let from = invalid.fromPath, !to.isEmpty, !from.isEmpty
        else { return nil }
        let request = MSRPRequestHead(
            transactionID: invalid.transactionID, method: method, toPath: to, fromPath: from, headers: invalid.headers)
        return response(to: request, code: invalid.error.statusCode, comment: comment ?? invalid.error.kind.rawValue)
    }
}

/// Builds REPORT requests about a received message (§7.1.3, §7.1.4).
public struct MSRPReportBuilder: Sendable {
    /// Our URI in the session (the REPORT's From-Path).
    public var local: MSRPURI
    /// Where the report goes: the From-Path of the original SEND.
    public var senderPath: [MSRPURI]
    public var messageID: String

    public init(local: MSRPURI, senderPath: [MSRPURI], messageID: String) {
        self.local = local
        self.senderPath = senderPath
        self.messageID = messageID
    }

    public init(reportingOn send: MSRPRequestHead, local: MSRPURI? = nil) {
        self.local = local ?? send.toPath.last ?? send.fromPath[0]
        self.senderPath = send.fromPath
        self.messageID = send.headers.messageID ?? ""
    }

    /// A success REPORT (`Status: 000 200 OK`) covering `range`.
    public func success(range: ByteRange, transactionID: String = MSRPIdentifier.make()) -> MSRPRequestHead {
        report(status: MSRPStatus(code: 200, reason: "OK"), range: range, transactionID: transactionID)
    }

    /// A failure REPORT with `code` covering `range`.
    public func failure(code: Int, reason: String? = nil, range: ByteRange, transactionID: String = MSRPIdentifier.make()) -> MSRPRequestHead {
        report(status: MSRPStatus(code: code, reason: reason ?? MSRPStatusCode.reason(code)), range: range, transactionID: transactionID)
    }

    public func report(status: MSRPStatus, range: ByteRange?, transactionID: String = MSRPIdentifier.make()) -> MSRPRequestHead {
        var headers: MSRPHeaderFields = [.messageID(messageID)]
        if let range { headers.append(.byteRange(range)) }
        headers.append(.status(status))
        return MSRPRequestHead(
            transactionID: transactionID, method: .report, toPath: senderPath, fromPath: [local], headers: headers)
    }
}
