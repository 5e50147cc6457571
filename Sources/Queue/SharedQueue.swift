/// A queue other gateway nodes write to as well: it tells this node when any
/// node stored events, so that an idle dispatcher starts at once instead of
/// at its next poll (a REPORT stored by the node that delivered, for a session
/// this node holds, say).
public protocol SharedQueue: EventQueue {
    /// `handler` gets the adapters with new events, for as long as the queue is
    /// open; a lost notification costs only the wait until the next poll.
    func onNewEvents(_ handler: @escaping @Sendable (Set<String>) -> Void)
}
