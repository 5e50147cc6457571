import Foundation

/// sipp (Debian sip-tester) scenarios, written per test with its ports.
public enum SIPPScenario {
    public static func header(_ name: String) -> String { "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"\(name)\">\n" }

    /// An INVITE with an MSRP offer whose path is `path`.
    /// `to`: the request-URI and To (by default the service at the remote host).
    public static func invite(path: String, setup: String? = nil, branch: String = "[branch]", retrans: Bool = true,
                              to: String = defaultTo) -> String {
        """
          <send\(retrans ? " retrans=\"500\"" : "")><![CDATA[
            INVITE \(to) SIP/2.0
            Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=\(branch)
            From: <sip:alice@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
            To: <\(to)>
            Call-ID: [call_id]
            CSeq: 1 INVITE
            Contact: <sip:alice@[local_ip]:[local_port]>
            Max-Forwards: 70
            Content-Type: application/sdp
            Content-Length: [len]

            v=0
            o=alice 1 1 IN IP4 127.0.0.1
            s=-
            c=IN IP4 127.0.0.1
            t=0 0
            m=message 9 TCP/MSRP *
            a=path:\(path)
            a=accept-types:message/cpim text/plain
            a=accept-wrapped-types:text/plain message/imdn+xml\(setup.map { "\n    a=setup:\($0)" } ?? "")
          ]]></send>

        """
    }

    public static let defaultTo = "sip:[service]@[remote_ip]:[remote_port]"

    public static func ack(to: String = defaultTo) -> String {
        """
          <send><![CDATA[
            ACK [next_url] SIP/2.0
            Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
            From: <sip:alice@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
            To: <\(to)>[peer_tag_param]
            Call-ID: [call_id]
            CSeq: 1 ACK
            [routes]
            Max-Forwards: 70
            Content-Length: 0
          ]]></send>

        """
    }

    public static func bye(to: String = defaultTo) -> String {
        """
          <send retrans="500"><![CDATA[
            BYE [next_url] SIP/2.0
            Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
            From: <sip:alice@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
            To: <\(to)>[peer_tag_param]
            Call-ID: [call_id]
            CSeq: 2 BYE
            [routes]
            Max-Forwards: 70
            Content-Length: 0
          ]]></send>
          <recv response="200"/>

        """
    }

    /// A whole call: INVITE, 200, ACK, a pause, BYE.
    public static func call(path: String, pause: Int, to: String = defaultTo) -> String {
        header("call") + invite(path: path, to: to)
            + "  <recv response=\"100\" optional=\"true\"/>\n  <recv response=\"200\" rrs=\"true\"/>\n" + ack(to: to)
            + "  <pause milliseconds=\"\(pause)\"/>\n" + bye(to: to) + "</scenario>\n"
    }

    /// Receives a `method` request and answers it (`code`, without a body; a
    /// To tag added when `tag`, for requests outside a dialog).
    public static func answer(_ method: String, code: String = "200 OK", tag: Bool = false) -> String {
        """
          <recv request="\(method)"/>
          <send><![CDATA[
            SIP/2.0 \(code)
            [last_Via:]
            [last_From:]
            [last_To:]\(tag ? ";tag=[pid]SIPpTag01[call_number]" : "")
            [last_Call-ID:]
            [last_CSeq:]
            Content-Length: 0
          ]]></send>

        """
    }

    /// A call the other side ends: INVITE, 200, ACK, then the gateway's BYE, answered 200.
    public static func calleeHangsUp(path: String) -> String {
        header("hung up") + invite(path: path)
            + "  <recv response=\"100\" optional=\"true\"/>\n  <recv response=\"200\" rrs=\"true\"/>\n" + ack()
            + answer("BYE") + "</scenario>\n"
    }

    public static func write(_ xml: String) throws -> String {
        let path = Scratch.path("sipp", suffix: ".xml")
        try xml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

/// Datagrams to and from a SIP port, for the bad-input table. One exchange at
/// a time (a test's own probe).
public final class UDPProbe: @unchecked Sendable {
    public let fd: Int32

    public init() throws {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    }

    deinit { close(fd) }

    public var port: Int {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Sends `text` (LF turned into CRLF unless `raw`) and returns the status code of
    /// the first response, or nil when nothing came within a second. The wait
    /// is on a thread of its own: a blocking receive on one of the few threads
    /// of Swift's pool stalls every other test of a full run meanwhile.
    public func exchange(_ text: String, to port: Int, raw: Bool = false) async -> (Int, String)? {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: self.blockingExchange(text, to: port, raw: raw)) }.start()
        }
    }

    /// Only a response with the request's Call-ID counts (a loaded run may
    /// answer the previous request after its wait ended).
    private func blockingExchange(_ text: String, to port: Int, raw: Bool) -> (Int, String)? {
        let callID = Self.header("Call-ID", in: text)
        let bytes = Array((raw ? text : text.replacingOccurrences(of: "\n", with: "\r\n")).utf8)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        _ = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { return nil }
            let reply = String(decoding: buffer[..<n], as: UTF8.self)
            let parts = reply.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, let code = Int(parts[1]) else { return nil }
            if code == 100 { continue }  // Trying: the final answer follows
            if let callID, let answered = Self.header("Call-ID", in: reply), answered != callID { continue }
            return (code, reply)
        }
    }

    private static func header(_ name: String, in message: String) -> String? {
        let prefix = name.lowercased() + ":"
        for line in message.split(whereSeparator: \.isNewline) where line.lowercased().hasPrefix(prefix) {
            return line.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }
}
