import NIOConcurrencyHelpers
import NIOCore

/// The answer to a message's last chunk waits for the message's owner, who may
/// answer from any thread, once: this hops to the connection's event loop and
/// drops every answer after the first.
enum DeferredResponder {
    static func make(on loop: any EventLoop, _ respond: @escaping (Int, String?) -> Void) -> @Sendable (Int, String?) -> Void {
        let loopBound = NIOLoopBound(respond, eventLoop: loop)
        let once = OnceFlag()
        return { code, comment in
            guard once.claim() else { return }
            if loop.inEventLoop {
                loopBound.value(code, comment)
            } else {
                loop.execute { loopBound.value(code, comment) }
            }
        }
    }
}

/// A flag that can be claimed once, from any thread.
final class OnceFlag: Sendable {
    private let claimed = NIOLockedValueBox(false)
    func claim() -> Bool {
        claimed.withLockedValue { c in
            if c { return false }
            c = true
            return true
        }
    }
}
