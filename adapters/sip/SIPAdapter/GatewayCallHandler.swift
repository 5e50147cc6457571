import Foundation
import Gateway
import Logging
import SDP
import SIP

/// Calls to the gateway become MSRP sessions: the INVITE's SDP offer is
/// answered by `Gateway.createSession`, a re-INVITE updates the session, BYE
/// closes it. The caller (P-Asserted-Identity, else From) is the session's peer;
/// the called user at `domain`, when that is a route, is its route.
public struct GatewayCallHandler: SIPCallHandler {
    let gateway: Gateway
    let domain: String?
    let logger: Logger

    public init(gateway: Gateway, domain: String?, logger: Logger) {
        self.gateway = gateway
        self.domain = domain
        self.logger = logger
    }

    public func offer(_ invite: SIPRequest, sdp: String) async throws(SIPRejection) -> (session: String, answer: String) {
        let description = try parse(sdp)
        let peer = (invite.headers["P-Asserted-Identity"].flatMap(NameAddr.init) ?? invite.headers.from)?.uri.strippingURIParameters()
        do {
            let (session, answer) = try await gateway.createSession(offer: description, peer: peer, route: route(for: invite.uri))
            logger.info("call answered", metadata: ["call-id": "\(invite.headers.callID ?? "")", "session": "\(session.id)", "peer": "\(peer ?? "-")"])
            return (session.id, answer.text)
        } catch {
            throw rejection(error)
        }
    }

    public func update(session: String, invite: SIPRequest, sdp: String) async throws(SIPRejection) -> String {
        let description = try parse(sdp)
        do {
            return try await gateway.updateSession(session, offer: description).text
        } catch {
            throw rejection(error)
        }
    }

    public func end(session: String, reason: String) {
        if gateway.closeSession(session) {
            logger.info("call ended", metadata: ["session": "\(session)", "reason": "\(reason)"])
        }
    }

    /// Page mode: the sender is the caller identity (P-Asserted-Identity, else
    /// From); the Request-URI names the route for bodies without a CPIM To.
    public func message(_ request: SIPRequest) async throws(SIPRejection) {
        guard let sender = (request.headers["P-Asserted-Identity"].flatMap(NameAddr.init) ?? request.headers.from)?.uri.strippingURIParameters() else {
            throw SIPRejection(code: 400, reason: "MESSAGE without a From")
        }
        let message = PageModeMessage(
            id: "\(request.headers.callID ?? "") \(request.headers.cseq?.number ?? 0) \(request.headers.from?.tag ?? "")", sender: sender,
            route: route(for: request.uri), contentType: request.headers.contentType ?? "text/plain", body: request.body)
        do {
            let ids = try await gateway.receive(pageMode: message)
            logger.info("page-mode message accepted", metadata: ["call-id": "\(request.headers.callID ?? "")", "from": "\(sender)", "events": "\(ids.count)"])
        } catch {
            logger.info("page-mode message refused", metadata: ["call-id": "\(request.headers.callID ?? "")", "from": "\(sender)", "code": "\(error.code)", "reason": "\(error.reason)"])
            throw SIPRejection(code: error.code, reason: error.reason)
        }
    }

    private func parse(_ sdp: String) throws(SIPRejection) -> SessionDescription {
        do { return try SDPParser().parse(sdp) } catch { throw SIPRejection(code: 488, reason: error.description) }
    }

    /// `sip:ops@anything` is the route `sip:ops@<domain>` when that is configured.
    func route(for requestURI: String) -> String? {
        let bare = requestURI.strippingURIParameters()
        if gateway.hasRoute(bare) { return bare }
        guard let domain, let colon = bare.firstIndex(of: ":"), let at = bare.firstIndex(of: "@") else { return nil }
        let address = bare[..<colon] + ":" + bare[bare.index(after: colon)..<at] + "@" + domain
        return gateway.hasRoute(String(address)) ? String(address) : nil
    }

    /// SDP and setup problems are 488 (the offer cannot be accepted here);
    /// an unknown route 404; an unreachable MSRP peer 480.
    private func rejection(_ e: SessionSetupError) -> SIPRejection {
        switch e.status {
        case 403, 404: return SIPRejection(code: 404, reason: e.description)
        case 502: return SIPRejection(code: 480, reason: e.description)
        default: return SIPRejection(code: 488, reason: e.description)
        }
    }
}

extension String {
    /// `sip:ops@host:5060;transport=udp` → `sip:ops@host:5060`.
    func strippingURIParameters() -> String {
        String(split(separator: ";", maxSplits: 1).first ?? Substring(self)).trimmingCharacters(in: .init(charactersIn: "<> "))
    }
}
