import Events
import Foundation
import NIOPosix
import Testing
import XMPPWire
@testable import XMPPAdapter
@testable import XMPPClient

/// The bridge's pure decisions: who is who across it, what an event becomes,
/// what a stanza error means for the MSRP sender.
struct XMPPAdapterTests {
    let book = XMPPAddressBook(domain: "msrp.example.org", aliases: ["Alice": "sip:alice@example.com"], msrpDomains: ["example.com"])

    @Test func addressesBothWays() throws {
        #expect(book.jid(forPeer: "sip:alice@example.com")?.description == "alice@msrp.example.org", "an alias wins")
        #expect(book.jid(forPeer: "Bob <sip:bob@example.com>")?.description == "bob\\40example.com@msrp.example.org")
        #expect(book.jid(forPeer: "tel:+15551234")?.description == "tel\\3a+15551234@msrp.example.org")
        #expect(book.peer(for: try #require(JID("bob\\40example.com@msrp.example.org/x"))) == "sip:bob@example.com")
        #expect(book.peer(for: try #require(JID("alice@msrp.example.org"))) == "sip:alice@example.com")
        #expect(book.peer(for: try #require(JID("sips\\3acarol\\40example.com@msrp.example.org"))) == "sips:carol@example.com")
        // No open relay: another domain, a tel: peer, another component, a bare domain.
        for refused in ["mallory\\40evil.example@msrp.example.org", "tel\\3a+15551234@msrp.example.org", "bob\\40example.com@other.example.org",
                        "msrp.example.org"] {
            #expect(book.peer(for: try #require(JID(refused))) == nil, "\(refused)")
        }
    }

    @Test(arguments: [
        ("item-not-found", "cancel", 404), ("jid-malformed", "modify", 404), ("forbidden", "auth", 403), ("not-allowed", "cancel", 403),
        ("policy-violation", "modify", 403), ("not-acceptable", "modify", 400), ("undefined-condition", "cancel", 400),
    ])
    func stanzaErrorsThatFail(_ condition: String, _ type: String, _ code: Int) {
        let outcome = XMPPStanzas.outcome(for: XMPPStanzaError(type: type, condition: condition), to: "xmpp:bob@example.org")
        guard case .permanentFailure(let c, _) = outcome else { Issue.record("\(condition): \(outcome)"); return }
        #expect(c == code)
    }

    @Test(arguments: ["service-unavailable", "remote-server-not-found", "recipient-unavailable", "resource-constraint"])
    func stanzaErrorsThatAreRetried(_ condition: String) {
        let outcome = XMPPStanzas.outcome(for: XMPPStanzaError(type: "cancel", condition: condition), to: "xmpp:bob@example.org")
        guard case .retry = outcome else { Issue.record("\(condition): \(outcome)"); return }
    }

    @Test func whatAnEventBecomes() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let component = XMPPComponent(configuration: XMPPComponentConfiguration(host: "127.0.0.1", port: 1, domain: "msrp.example.org", secret: "s"), group: group)
        let bridge = XMPPBridge(name: "x", component: component, addresses: book, receiptWait: .seconds(1))
        let adapter = XMPPAdapter(bridges: [bridge])
        let target = try #require(XMPPTarget("xmpp:bob@example.org"))
        func event(_ kind: EventKind = .delivery, contentType: String = "text/plain", age: TimeInterval = 0) -> QueuedEvent {
            let created = Date().addingTimeInterval(-age)
            return QueuedEvent(
                id: EventID(rawValue: 42), kind: kind, state: .leased, adapter: "xmpp", target: "xmpp:bob@example.org", origin: EventOrigin(),
                envelope: EventEnvelope(from: "Carol <sip:carol@example.com>", dateTime: "2026-12-05T08:00:00Z", contentType: contentType),
                body: .inline(Array("hi <there>".utf8)), parent: nil, attempts: 2, nextAttemptAt: created, leaseOwner: nil, lastError: nil,
                proof: nil, statusCode: nil, createdAt: created, updatedAt: created)
        }
        let chat = try adapter.stanza(for: event(), to: target, through: bridge).get()
        #expect(chat["from"] == "carol\\40example.com@msrp.example.org" && chat["type"] == "chat" && chat["id"] == "msrpgw-42-2")
        #expect(chat.child("body")?.text == "hi <there>" && chat.child("request", namespace: XMPPNamespace.receipts) != nil)
        #expect(chat.child("origin-id", namespace: XMPPNamespace.stanzaID)?["id"] == "msrpgw-42", "the same across retries")
        #expect(chat.child("delay", namespace: XMPPNamespace.delay) == nil, "sent at once: no delay")
        let late = try adapter.stanza(for: event(age: 60), to: target, through: bridge).get()
        #expect(late.child("delay", namespace: XMPPNamespace.delay)?["stamp"] == "2026-12-05T08:00:00Z", "it waited: when it was said")
        #expect(try adapter.stanza(for: event(.system), to: target, through: bridge).get()["from"] == "msrp.example.org", "system: the component")
        guard case .failure(let refused) = adapter.stanza(for: event(contentType: "image/png"), to: target, through: bridge),
              case .permanentFailure(415, _) = refused.outcome else {
            Issue.record("an image is not sent as chat text")
            return
        }
        #expect(adapter.endpoint(of: "xmpp:bob@example.org/phone") == "xmpp:x/bob@example.org", "a lane per recipient")
        #expect(throws: RouteError.self) { try adapter.validate(target: "xmpp:example.org") }
    }
}
