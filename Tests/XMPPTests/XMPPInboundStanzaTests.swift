import Events
import Foundation
import GatewayTesting
import Queue
import Testing
import TestPeers
import XMPPClient
import XMPPWire
@testable import XMPPAdapter

/// What an XMPP server may send the component, malformed or not allowed: each
/// stanza is taken (a queue event for the MSRP peer), refused with the right
/// stanza error, answered, or dropped; nothing else happens and nothing breaks.
struct XMPPInboundStanzaTests {
    static let to = "alice\\40example.com@msrp.test"
    /// (stanza, what must come back to the server for it, if anything)
    static let table: [(String, String?)] = [
        ("<message from='bob@localhost/r' to='\(to)' type='chat' id='ok-1'><body>taken</body></message>", nil),
        ("<message from='mallory@evil.example/r' to='\(to)' type='chat' id='bad-domain'><body>x</body></message>", "forbidden"),
        ("<message from='bob@localhost/r' to='mallory\\40evil.example@msrp.test' type='chat' id='bad-peer'><body>x</body></message>", "item-not-found"),
        ("<message from='bob@localhost/r' to='tel\\3a+15551234@msrp.test' type='chat' id='bad-tel'><body>x</body></message>", "item-not-found"),
        ("<message from='bob@localhost/r' to='msrp.test' type='chat' id='bad-nolocal'><body>x</body></message>", "item-not-found"),
        ("<message to='\(to)' type='chat' id='no-from'><body>dropped</body></message>", nil),
        ("<message from='@@' to='\(to)' type='chat' id='bad-from'><body>dropped</body></message>", nil),
        ("<message from='bob@localhost/r' to='\(to)' type='chat' id='no-body'><request xmlns='urn:xmpp:receipts'/></message>", nil),
        ("<message from='bob@localhost/r' to='\(to)' type='headline' id='headline'><body>dropped</body></message>", nil),
        ("<message from='bob@localhost/r' to='\(to)' type='error' id='stray-error'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>", nil),
        ("<iq from='bob@localhost/r' to='msrp.test' type='get' id='q-unknown'><query xmlns='urn:example:nothing'/></iq>", "service-unavailable"),
        ("<iq from='bob@localhost/r' to='\(to)' type='set' id='q-set'><query xmlns='jabber:iq:version'/></iq>", "service-unavailable"),
        ("<iq from='bob@localhost/r' type='get' id='q-noto'><ping xmlns='urn:xmpp:ping'/></iq>", nil),
        ("<iq from='bob@localhost/r' to='msrp.test' type='result' id='q-result'/>", nil),
        ("<presence from='bob@localhost/r' to='\(to)' type='subscribe'/>", nil),
        ("<message from='bob@localhost/r' to='\(to)' type='chat' id='ok-2'><body>taken too</body></message>", nil),
    ]

    @Test func eachStanzaGetsItsAnswer() async throws {
        let server = try await HostileXMPPServer(payload: Array(Self.table.map(\.0).joined().utf8), closeAfterPayload: false)
        defer { server.stop() }
        let gw = try await TestGateway()
        let component = XMPPComponent(configuration: XMPPComponentConfiguration(host: "127.0.0.1", port: server.port, domain: "msrp.test", secret: "s"),
                                      group: server.group)
        let bridge = XMPPBridge(name: "t", component: component, addresses: XMPPAddressBook(domain: "msrp.test", msrpDomains: ["example.com"]),
                                receiptWait: .zero)
        let inbound = XMPPToMSRP(bridge: bridge, gateway: gw.gateway, senderDomains: ["localhost"], version: "test", logger: .init(label: "test"))
        let tasks = [Task { await component.run() }, Task { await inbound.run() }]
        defer { for t in tasks { t.cancel() } }

        // The two allowed messages become events for the MSRP peer, nothing else
        // does. (30 s: the first minute of a loaded full run starves everything.)
        #expect(await until(.seconds(30)) {
            let events = (try? await gw.queue.events(EventFilter(adapter: "msrp"))) ?? []
            return events.count == 2
        })
        let events = try await gw.queue.events(EventFilter(adapter: "msrp"))
        #expect(Set(events.map(\.target)) == ["sip:alice@example.com"])
        #expect(Set(events.compactMap { $0.body.contents() }.map { String(decoding: $0, as: UTF8.self) }) == ["taken", "taken too"])
        #expect(events.allSatisfy { $0.envelope.from == "bob@localhost <xmpp:bob@localhost>" })

        // Refusals and answers name the stanza they answer, with the right condition.
        let sent = { server.received(0) }
        for (stanza, condition) in Self.table {
            guard let id = stanza.split(separator: "id='").dropFirst().first?.split(separator: "'").first.map(String.init) else { continue }
            if let condition {
                #expect(await until(.seconds(10)) { Self.reply(to: id, in: sent())?.contains("<\(condition) ") == true },
                        "\(id): no \(condition) in \(Self.reply(to: id, in: sent()) ?? "nothing")")
            } else {
                #expect(Self.reply(to: id, in: sent()) == nil || id.hasPrefix("ok-"), "\(id) was answered: \(Self.reply(to: id, in: sent()) ?? "")")
            }
        }
        await gw.stop()
    }

    /// The stanza we wrote with `id='ID'`, if any.
    static func reply(to id: String, in text: String) -> String? {
        guard let r = text.range(of: "id='\(id)'") else { return nil }
        let start = text[..<r.lowerBound].range(of: "<", options: .backwards)?.lowerBound ?? r.lowerBound
        let rest = text[start...]
        let end = rest.range(of: "</message>")?.upperBound ?? rest.range(of: "</iq>")?.upperBound ?? rest.endIndex
        return String(rest[..<end])
    }
}
