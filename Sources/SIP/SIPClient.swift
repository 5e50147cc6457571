import Digest
import Logging
import NIOCore

/// Who the gateway is to a registrar or proxy: its address of record and the
/// digest credentials it answers challenges with.
public struct SIPAccount: Sendable, Hashable {
    public var aor: String
    public var username: String
    public var password: String
    public var displayName: String?

    public init(aor: String, username: String, password: String, displayName: String? = nil) {
        self.aor = aor
        self.username = username
        self.password = password
        self.displayName = displayName
    }
}

/// Out-of-dialog requests of ours (REGISTER, MESSAGE, INVITE), sent over UDP to
/// the outbound proxy (or straight to the target), with digest challenges
/// (401 `WWW-Authenticate`, 407 `Proxy-Authenticate`; MD5 or SHA-256, the
/// stronger when both are offered) answered once each, as RFC 3261 §22.2 says.
public final class SIPClient: Sendable {
    public let ua: SIPUserAgentServer
    /// Where every request goes first; nil sends to the Request-URI's host.
    public let outboundProxy: SocketAddress?
    public let account: SIPAccount?
    private let logger: Logger

    public init(ua: SIPUserAgentServer, outboundProxy: SocketAddress?, account: SIPAccount?, logger: Logger = Logger(label: "msrpgw.sip")) {
        self.ua = ua
        self.outboundProxy = outboundProxy
        self.account = account
        self.logger = logger
    }

    /// A sent request and the final response it got.
    public struct Exchange: Sendable {
        public var request: SIPRequest
        public var response: SIPResponse
        public var destination: SocketAddress
    }

    /// Sends a request and answers up to two digest challenges. `cseq` is the
    /// first CSeq number; every retry with credentials takes the next.
    public func send(
        method: String, uri: String, from: NameAddr, to: NameAddr, callID: String, cseq: UInt32,
        headers extra: [SIPHeader] = [], body: [UInt8] = [], destination fixed: SocketAddress? = nil
    ) async throws -> Exchange {
        let destination = try fixed ?? self.destination(for: uri)
        var authorization: [SIPHeader] = []
        var number = cseq
        // At most two challenges answered: the third response is the answer, whatever it is.
        var attempt = 0
        while true {
            defer { attempt += 1 }
            let request = build(method: method, uri: uri, from: from, to: to, callID: callID, cseq: number, headers: extra + authorization, body: body)
            let response = try await ua.request(request, to: destination)
            guard response.code == 401 || response.code == 407, attempt < 2, let account else {
                return Exchange(request: request, response: response, destination: destination)
            }
            let proxy = response.code == 407
            // Whole header values: a challenge's own commas must not split it.
            let field = proxy ? "proxy-authenticate" : "www-authenticate"
            guard let challenge = DigestChallenge.preferred(response.headers.fields.filter { $0.name.lowercased() == field }.map(\.value)) else {
                logger.warning("SIP challenge we cannot answer", metadata: ["method": "\(method)", "code": "\(response.code)"])
                return Exchange(request: request, response: response, destination: destination)
            }
            // A second challenge for the same realm means the credentials were refused, unless the nonce was stale.
            let name = proxy ? "Proxy-Authorization" : "Authorization"
            if attempt > 0, authorization.contains(where: { $0.name == name && $0.value.contains("realm=\"\(challenge.realm)\"") }), !challenge.stale {
                return Exchange(request: request, response: response, destination: destination)
            }
            authorization.removeAll { $0.name == name && $0.value.contains("realm=\"\(challenge.realm)\"") }
            authorization.append(SIPHeader(name, challenge.authorization(
                username: account.username, password: account.password, method: method, uri: uri, body: body,
                cnonce: DigestChallenge.makeCnonce(), nonceCount: 1)))
            number += 1
        }
    }

    /// A request as we send it: a fresh Via branch (RFC 3261 magic cookie) with
    /// rport, Max-Forwards, our Contact.
    public func build(
        method: String, uri: String, from: NameAddr, to: NameAddr, callID: String, cseq: UInt32, headers extra: [SIPHeader], body: [UInt8]
    ) -> SIPRequest {
        var h = SIPHeaders()
        h.add("Via", "SIP/2.0/UDP \(ua.configuration.contactHost):\(ua.udpPort ?? 5060);branch=z9hG4bK\(SIPUserAgentServer.makeTag())\(SIPUserAgentServer.makeTag());rport")
        h.add("Max-Forwards", "70")
        h.add("From", from.description)
        h.add("To", to.description)
        h.add("Call-ID", callID)
        h.add("CSeq", "\(cseq) \(method)")
        if method != "MESSAGE" { h.add("Contact", "<\(contactURI)>") }
        h.add("User-Agent", ua.configuration.serverName)
        for e in extra { h.add(e.name, e.value) }
        return SIPRequest(method: method, uri: uri, headers: h, body: body)
    }

    /// Our Contact: the UDP listener, with the account's user part.
    public var contactURI: String {
        let user = account.flatMap { SIPAddress($0.aor)?.user } ?? ua.configuration.user
        return "sip:\(user)@\(ua.configuration.contactHost):\(ua.udpPort ?? 5060)"
    }

    /// The outbound proxy, or the host and port of `uri` (numeric hosts only
    /// without a proxy: no DNS SRV/NAPTR here, RFC 3263).
    public func destination(for uri: String) throws -> SocketAddress {
        if let outboundProxy { return outboundProxy }
        return try destination(forHop: uri)
    }

    /// The host and port of `uri` itself (a route hop), whatever the outbound proxy.
    public func destination(forHop uri: String) throws -> SocketAddress {
        guard let address = SIPAddress(uri) else { throw SIPClientError(.noTransport, "cannot reach \(uri): not a SIP URI") }
        do {
            return try SocketAddress(ipAddress: address.host, port: address.port ?? 5060)
        } catch {
            throw SIPClientError(.noTransport, "cannot reach \(uri) without an outbound proxy: \(address.host) is not an IP address")
        }
    }

    public static func makeCallID() -> String { SIPUserAgentServer.makeTag() + SIPUserAgentServer.makeTag() + "@msrpgw" }
}

/// The parts of a `sip:`/`sips:` URI a client needs to route: user, host, port.
public struct SIPAddress: Sendable, Hashable {
    public var scheme: String
    public var user: String?
    public var host: String
    public var port: Int?

    public init?(_ text: String) {
        let bare = text.trimmingCharacters(in: " <>")
        guard let colon = bare.firstIndex(of: ":") else { return nil }
        let scheme = bare[..<colon].lowercased()
        guard scheme == "sip" || scheme == "sips" else { return nil }
        var rest = bare[bare.index(after: colon)...]
        if let semi = rest.firstIndex(where: { $0 == ";" || $0 == "?" }) { rest = rest[..<semi] }
        var user: String?
        if let at = rest.lastIndex(of: "@") {
            user = String(rest[..<at]).split(separator: ":", maxSplits: 1).first.map(String.init)
            rest = rest[rest.index(after: at)...]
        }
        var host = String(rest)
        var port: Int?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") { port = Int(after.dropFirst()) }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let c = host.lastIndex(of: ":") {
            guard let p = Int(host[host.index(after: c)...]), (1...65535).contains(p) else { return nil }
            port = p
            host = String(host[..<c])
        }
        guard !host.isEmpty else { return nil }
        self.scheme = scheme
        self.user = user
        self.host = host
        self.port = port
    }
}
