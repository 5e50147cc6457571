/// What the server state machine answers with: responses built from the
/// request they answer, the checks every request passes first, and the
/// capabilities we advertise.
extension SIPServerStateMachine {
    static var allowed: [String] { ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE"] }
    /// Methods we know but do not serve here (405 with Allow); others get 501.
    static var known: [String] { ["REGISTER", "SUBSCRIBE", "NOTIFY", "REFER", "INFO", "UPDATE", "PRACK", "PUBLISH"] }

    var capabilities: [SIPHeader] {
        [SIPHeader("Allow", Self.allowed.joined(separator: ", ")), SIPHeader("Accept", "application/sdp, message/cpim, text/plain")]
    }

    /// Request checks before any method logic (RFC 3261 §8.2).
    func check(_ r: SIPRequest) -> (code: Int, reason: String, extra: [SIPHeader])? {
        let scheme = r.uri.split(separator: ":", maxSplits: 1).first?.lowercased() ?? ""
        guard scheme == "sip" || scheme == "sips" else { return (416, "Unsupported URI Scheme", []) }
        if let mf = r.headers.maxForwards, mf <= 0, r.method != "OPTIONS" { return (483, "Too Many Hops", []) }
        let required = r.headers.values("Require")
        if !required.isEmpty, r.method != "CANCEL" {
            return (420, "Bad Extension", [SIPHeader("Unsupported", required.joined(separator: ", "))])
        }
        return nil
    }

    func contact(_ source: Source) -> [SIPHeader] {
        let port = ports[source.transport] ?? 5060
        return [SIPHeader("Contact", "<sip:\(configuration.user)@\(configuration.contactHost):\(port);transport=\(source.transport.lowercased())>")]
    }

    /// A Warning header (RFC 3261 §20.43) carrying why we refused.
    func warning(_ text: String) -> SIPHeader {
        SIPHeader("Warning", "399 \(configuration.contactHost) \"\(text.replacingQuotes())\"")
    }

    /// A response to `request` (§8.2.6): its Vias, From, Call-ID and CSeq, its To
    /// with our tag (`tag`, or a new one, unless `toTag` is false or it has one).
    func response(to request: SIPRequest, code: Int, reason: String, toTag: Bool = true, tag: String? = nil,
                  extra: [SIPHeader] = [], body: [UInt8] = []) -> [UInt8] {
        var h = SIPHeaders()
        for v in request.headers.fields where v.name.lowercased() == "via" { h.add("Via", v.value) }
        if let from = request.headers["From"] { h.add("From", from) }
        if var to = request.headers["To"] {
            if toTag, request.headers.to?.tag == nil, code > 100 { to += ";tag=\(tag ?? SIPUserAgentServer.makeTag())" }
            h.add("To", to)
        }
        if let callID = request.headers.callID { h.add("Call-ID", callID) }
        if let cseq = request.headers["CSeq"] { h.add("CSeq", cseq) }
        // A response that makes a dialog carries the request's Record-Route, in
        // order, so the caller's in-dialog requests take the proxies' path (§12.1.1).
        if request.method == "INVITE", (101..<300).contains(code) {
            for f in request.headers.fields where f.name.lowercased() == "record-route" { h.add("Record-Route", f.value) }
        }
        h.add("Server", configuration.serverName)
        for e in extra { h.add(e.name, e.value) }
        return SIPMessage.response(SIPResponse(code: code, reason: reason, headers: h, body: body)).serialized
    }

    static func reasonPhrase(_ code: Int) -> String {
        [400: "Bad Request", 403: "Forbidden", 404: "Not Found", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
         480: "Temporarily Unavailable", 486: "Busy Here", 488: "Not Acceptable Here", 500: "Server Internal Error",
         503: "Service Unavailable"][code] ?? "Error"
    }
}

extension String {
    /// For a quoted Warning text.
    func replacingQuotes() -> String { String(map { $0 == "\"" ? "'" : ($0 == "\r" || $0 == "\n" ? " " : $0) }) }
}
