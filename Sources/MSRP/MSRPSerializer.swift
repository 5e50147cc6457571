import NIOCore

/// Writes MSRP frames in their exact wire form (§9).
///
/// A request with a body is written as its head (ending in the blank line), the
/// body, then `CRLF -------<tid><flag> CRLF`; a bodiless request or a response
/// as its head and `-------<tid><flag> CRLF`.
extension ByteBuffer {
    /// Writes the start line and header fields, each ending in CRLF.
    @discardableResult
    public mutating func writeMSRPRequestHeaderLines(_ head: MSRPRequestHead) -> Int {
        var n = writeStaticString("MSRP ")
        n += writeString(head.transactionID)
        n += writeStaticString(" ")
        n += writeString(head.method.description)
        n += writeStaticString("\r\n")
        n += writePathsAndFields(head.toPath, head.fromPath, head.headers)
        return n
    }

    @discardableResult
    public mutating func writeMSRPResponseHeaderLines(_ head: MSRPResponseHead) -> Int {
        var n = writeStaticString("MSRP ")
        n += writeString(head.transactionID)
        n += writeStaticString(" ")
        n += writeString(String(head.code))
        if let comment = head.comment {
            n += writeStaticString(" ")
            n += writeString(comment)
        }
        n += writeStaticString("\r\n")
        n += writePathsAndFields(head.toPath, head.fromPath, head.headers)
        return n
    }

    private mutating func writePathsAndFields(_ to: [MSRPURI], _ from: [MSRPURI], _ fields: MSRPHeaderFields) -> Int {
        var n = writeStaticString("To-Path: ")
        n += writeURIList(to)
        n += writeStaticString("\r\nFrom-Path: ")
        n += writeURIList(from)
        n += writeStaticString("\r\n")
        for field in fields {
            n += writeString(field.name)
            n += writeStaticString(": ")
            n += writeString(field.value)
            n += writeStaticString("\r\n")
        }
        return n
    }

    private mutating func writeURIList(_ list: [MSRPURI]) -> Int {
        var n = 0
        for (i, uri) in list.enumerated() {
            if i > 0 { n += writeStaticString(" ") }
            n += writeMSRPURI(uri)
        }
        return n
    }

    /// Writes `uri` as `description` spells it, part by part: no String is built
    /// for it (paths are written for every request a relay forwards).
    @discardableResult
    public mutating func writeMSRPURI(_ uri: MSRPURI) -> Int {
        var n = uri.scheme == .msrps ? writeStaticString("msrps://") : writeStaticString("msrp://")
        if let userinfo = uri.userinfo {
            n += writeString(userinfo)
            n += writeStaticString("@")
        }
        switch uri.host {
        case .name(let h), .ipv4(let h): n += writeString(h)
        case .ipv6(let h):
            n += writeStaticString("[")
            n += writeString(h)
            n += writeStaticString("]")
        }
        if let port = uri.port {
            n += writeStaticString(":")
            n += writeDecimal(port)
        }
        if let sid = uri.sessionID {
            n += writeStaticString("/")
            n += writeString(sid)
        }
        n += writeStaticString(";")
        n += writeString(uri.transport)
        for p in uri.parameters {
            n += writeStaticString(";")
            n += writeString(p.name)
            if let v = p.value {
                n += writeStaticString("=")
                n += writeString(v)
            }
        }
        return n
    }

    /// A non-negative integer in decimal, without a String.
    private mutating func writeDecimal(_ value: Int) -> Int {
        guard value > 0 else { return writeInteger(UInt8(ascii: "0")) }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var v = value
        withUnsafeMutableBytes(of: &digits) { d in
            while v > 0 {
                d[19 - count] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                count += 1
            }
        }
        return withUnsafeBytes(of: &digits) { writeBytes(UnsafeRawBufferPointer(rebasing: $0[(20 - count)...])) }
    }

    /// Writes the end-line that closes a frame. `afterBody` adds the CRLF that
    /// separates the body data from the end-line.
    @discardableResult
    public mutating func writeMSRPEndLine(transactionID: String, flag: ContinuationFlag, afterBody: Bool) -> Int {
        var n = afterBody ? writeStaticString("\r\n-------") : writeStaticString("-------")
        n += writeString(transactionID)
        n += writeInteger(flag.rawValue)
        n += writeStaticString("\r\n")
        return n
    }

    /// Writes a whole request. A non-nil `body` (even empty) writes the blank line
    /// and body section; nil writes a bodiless request.
    @discardableResult
    public mutating func writeMSRPRequest(_ head: MSRPRequestHead, body: ByteBuffer?, flag: ContinuationFlag = .complete) -> Int {
        var n = writeMSRPRequestHeaderLines(head)
        if var body {
            n += writeStaticString("\r\n")
            n += writeBuffer(&body)
            n += writeMSRPEndLine(transactionID: head.transactionID, flag: flag, afterBody: true)
        } else {
            n += writeMSRPEndLine(transactionID: head.transactionID, flag: flag, afterBody: false)
        }
        return n
    }

    @discardableResult
    public mutating func writeMSRPResponse(_ head: MSRPResponseHead) -> Int {
        writeMSRPResponseHeaderLines(head) + writeMSRPEndLine(transactionID: head.transactionID, flag: .complete, afterBody: false)
    }

    @discardableResult
    public mutating func writeMSRPFrame(_ frame: MSRPFrame) -> Int {
        switch frame.head {
        case .request(let r): return writeMSRPRequest(r, body: frame.body, flag: frame.flag)
        case .response(let r): return writeMSRPResponse(r)
        }
    }
}
