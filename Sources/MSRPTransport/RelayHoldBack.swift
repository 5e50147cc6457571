import NIOCore

/// A relay's back-pressure on one outgoing connection: clients whose forwarded
/// requests wait here beyond `holdAbove` bytes are not read until fewer than
/// `resumeBelow` wait, so that a client faster than its next hop cannot make the
/// relay hold without bound. Runs on the outgoing connection's event loop.
struct RelayHoldBack {
    static let holdAbove = 4 << 20
    static let resumeBelow = 1 << 20

    private var held: [MSRPConnection] = []

    /// After queuing what `upstream` sent: stops reading it if `queued` is past
    /// the high-water mark. Returns whether it did.
    mutating func holdIfFull(_ upstream: MSRPConnection, queued: Int) -> Bool {
        guard queued > Self.holdAbove, !held.contains(where: { $0 === upstream }) else { return false }
        held.append(upstream)
        upstream.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        return true
    }

    /// Reads held clients again once `queued` is below the low-water mark
    /// (with 0 when the connection ends: all of them).
    mutating func release(queued: Int) {
        guard !held.isEmpty, queued < Self.resumeBelow else { return }
        let released = held
        held = []
        for upstream in released {
            upstream.channel.setOption(ChannelOptions.autoRead, value: true).whenSuccess { upstream.channel.read() }
        }
    }
}
