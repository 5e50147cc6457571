import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs work on an event loop only after that loop has next polled its sockets.
///
/// A connection that writes a large message pauses after each burst so that the
/// loop can read (a 413 from the receiver, other connections' requests). A
/// paused writer cannot resume from a scheduled task: NIO runs every task that
/// is ready before it polls again, and a burst takes longer than any short
/// pause, so the resume task is always ready and reads starve (a sender wrote
/// hundreds of MB past the receiver's 413 that way). Instead the gate wakes
/// writers from the read of a pipe it writes to itself: that read happens in
/// the loop's I/O phase, after `epoll_wait` reported every socket that is ready,
/// so whatever arrived meanwhile is read in the same phase.
///
/// One gate per event loop, owned by the endpoint; all state is loop-confined.
final class LoopPollGate: Sendable {
    let eventLoop: any EventLoop
    private let state: NIOLoopBoundBox<State>

    private struct State {
        var waiting: [() -> Void] = []
        var channel: (any Channel)?
        var armed = false
        var closed = false
        /// Counts arms, so that a stale back-stop timer does nothing.
        var generation: UInt64 = 0
    }

    /// A back-stop: if the pipe's wake-up has not come by then, waiting work
    /// runs anyway, so that a writer can never stall on the gate.
    static let backstop = TimeAmount.milliseconds(2)

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.state = .makeBoxSendingValue(State(), eventLoop: eventLoop)
    }

    /// Opens the gate's pipe. Until it is open (or if it cannot be), waiting
    /// work runs from a task scheduled shortly after it was asked for.
    func start() {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }  // NIO makes them non-blocking
        NIOPipeBootstrap(group: eventLoop)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Wakeup(gate: self))
                }
            }
            .takingOwnershipOfDescriptors(input: fds[0], output: fds[1])
            .whenComplete { [self] result in
                let gate = self
                switch result {
                case .success(let channel):
                    if gate.state.value.closed {
                        channel.close(promise: nil)
                    } else {
                        gate.state.value.channel = channel
                        if !gate.state.value.waiting.isEmpty { gate.arm() }
                    }
                case .failure:
                    break  // NIO closed the descriptors; the fallback pause stays in use
                }
            }
    }

    /// Runs `work` on the loop after its next socket poll. Call on the loop.
    func afterNextPoll(_ work: @escaping () -> Void) {
        eventLoop.preconditionInEventLoop()
        state.value.waiting.append(work)
        arm()
    }

    private func arm() {
        guard !state.value.armed else { return }
        state.value.armed = true
        state.value.generation &+= 1
        let generation = state.value.generation
        // Without a pipe (yet) this is the pause: measured from now, after the
        // burst's flush. With one, a back-stop that normally never runs.
        let pause = state.value.channel == nil ? TimeAmount.microseconds(50) : Self.backstop
        eventLoop.scheduleTask(in: pause) { [self] in
            if state.value.armed, state.value.generation == generation { fire() }
        }
        state.value.channel?.writeAndFlush(ByteBuffer(integer: UInt8(1)), promise: nil)
    }

    fileprivate func fire() {
        guard state.value.armed || !state.value.waiting.isEmpty else { return }
        state.value.armed = false
        let work = state.value.waiting
        state.value.waiting = []
        for w in work { w() }
    }

    /// Closes the pipe; work still waiting runs at once. Call on the loop.
    func stop() {
        state.value.closed = true
        state.value.channel?.close(promise: nil)
        state.value.channel = nil
        fire()
    }

    /// The pipe's reading end: each read means the loop has polled.
    private final class Wakeup: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let gate: LoopPollGate
        init(gate: LoopPollGate) { self.gate = gate }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
        func channelReadComplete(context: ChannelHandlerContext) { gate.fire() }
    }
}
