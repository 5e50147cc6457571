import Events
import Testing

@testable import Gateway

/// Which node alone may deliver an event when nodes share the queue.
@Suite struct SessionAffinityTests {
    let affinity = SessionAffinity()

    @Test(arguments: [
        // What goes out on a session: its node's.
        (EventKind.report, "msrp", "n3-abc", nil, 3),
        (EventKind.delivery, "msrp", "n12-xyz", "n3-abc", 12),
        // What came in on a session, wherever it goes: that session's node's (its order).
        (EventKind.delivery, "webhook", "ops", "n3-abc", 3),
        (EventKind.delivery, "msrp", "sip:bob@example.com", "n7-q", 7),
        // No session, or one made without a node: anyone's.
        (EventKind.delivery, "webhook", "ops", nil, nil),
        (EventKind.delivery, "msrp", "sip:bob@example.com", nil, nil),
        (EventKind.delivery, "webhook", "ops", "plainsession", nil),
        (EventKind.imdn, "msrp", "no-prefix", nil, nil),
    ] as [(EventKind, String, String, String?, Int?)])
    func pinsWhatASessionSendsAndWhatCameInOnIt(_ kind: EventKind, _ adapter: String, _ target: String, _ origin: String?, _ node: Int?) {
        let event = NewEvent(kind: kind, adapter: adapter, target: target, origin: EventOrigin(sessionID: origin))
        #expect(affinity.node(for: event) == node)
    }
}
