import NIOConcurrencyHelpers
import NIOCore
import XMPPWire

/// The stanzas for the component that nothing inside it settled, in stream
/// order, with back-pressure: once `pauseAt` of them wait unread, the
/// component stops reading from the server (TCP then slows the server down);
/// it reads again when the reader is down to `resumeAt`. Nothing is dropped.
public struct XMPPIncoming: AsyncSequence, Sendable {
    public typealias Element = XMPPElement
    let stream: AsyncStream<XMPPElement>
    let taken: @Sendable () -> Void

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<XMPPElement>.AsyncIterator
        let taken: @Sendable () -> Void

        public mutating func next() async -> XMPPElement? {
            let stanza = await base.next()
            if stanza != nil { taken() }
            return stanza
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), taken: taken)
    }
}

/// How many stanzas wait unread, and whether reading is paused for them.
final class XMPPBacklog: Sendable {
    let pauseAt: Int
    let resumeAt: Int
    private let state = NIOLockedValueBox((waiting: 0, paused: false))

    init(pauseAt: Int = 5_000, resumeAt: Int = 1_000) {
        self.pauseAt = pauseAt
        self.resumeAt = resumeAt
    }

    var waiting: Int { state.withLockedValue { $0.waiting } }
    var isPaused: Bool { state.withLockedValue { $0.paused } }

    /// One more waits: true when reading must pause (every time past the bound:
    /// a resume racing a pause is then undone by the next stanza).
    func added() -> Bool {
        state.withLockedValue { s in
            s.waiting += 1
            guard s.waiting >= pauseAt else { return false }
            s.paused = true
            return true
        }
    }

    /// One was read: true when reading may go on now.
    func taken() -> Bool {
        state.withLockedValue { s in
            s.waiting -= 1
            guard s.paused, s.waiting <= resumeAt else { return false }
            s.paused = false
            return true
        }
    }
}
