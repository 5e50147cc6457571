import Logging
import MSRP
import NIOCore

/// Sessions bound to the connection, and the idle timer that closes it when it has none.
extension MSRPConnectionHandler {
    func attach(_ session: MSRPSession) {
        guard machine.attach(session) else { return }
        markUsed()
    }

    /// The connection carries a session (or the relay's traffic): from now on
    /// only the idle time-out applies.
    func markUsed() {
        used = true
        idleTimer?.cancel()
        idleTimer = nil
    }

    /// A session of ours ended (closed here, not by the connection's loss).
    func detach(_ sessionID: String) {
        machine.detach(sessionID)
        guard machine.sessions.isEmpty else { return }
        // A connection the peer opened carries nothing once its last session
        // ends here (an API DELETE, a BYE): close it once what was written has
        // gone out, rather than answer 481 on it until the idle time-out. Our
        // own connections stay for reuse until then.
        if connection?.key == nil, !closed, let context {
            let channel = context.channel
            logger.info("closing the MSRP connection: its last session ended")
            channel.writeAndFlush(ByteBuffer()).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        armIdleTimer()
    }

    func armIdleTimer() {
        // Not once closed: a session detaching as the connection goes would arm
        // a timer that holds the channel (and this handler) for the idle time-out.
        guard !closed, let context, idleTimer == nil, machine.sessions.isEmpty else { return }
        let channel = context.channel
        // A connection a peer opened gets a short time to bind its first session.
        let unbound = !used && connection?.key == nil
        let wait = unbound ? min(configuration.bindTimeout, configuration.idleTimeout) : configuration.idleTimeout
        idleTimer = context.eventLoop.scheduleTask(in: wait) { [logger] in
            logger.info(unbound ? "closing MSRP connection: no session bound to it in time" : "closing idle MSRP connection",
                        metadata: ["after": "\(wait)"])
            channel.close(promise: nil)
        }
    }
}

/// The connection's answers to its state machine: sessions from the endpoint's
/// registry (bound to this connection when they can be), the relay role's decisions.
extension MSRPConnectionHandler: MSRPConnectionEnvironment {
    func lookup(sessionID: String, fromPath: [MSRPURI]) -> MSRPConnectionStateMachine.SessionLookup {
        guard let session = endpoint.registry.session(id: sessionID), let connection else { return .unknown }
        // Bind the session to this connection, unless it already lives on another (§5.4).
        if session.bind(to: connection) {
            markUsed()
            return .found(session)
        }
        if session.isClosed { return .unknown }
        // Through relays the way back need not be the way out: a relay forwarding
        // to our URI opens a connection of its own (RFC 4976 §7.3). Taken from the
        // session's peer (the last From-Path URI) and only when its path has relays.
        let remote = session.remotePath
        if remote.count > 1, let origin = fromPath.last, origin == remote.last {
            markUsed()
            return .found(session)
        }
        return .boundElsewhere
    }

    func relayDecision(for request: MSRPRequestHead) -> MSRPRelayRole.Decision? {
        guard let relay = endpoint.relayRole, let connection else { return nil }
        let decision = relay.classify(request, on: connection)
        switch decision {
        case .forward: markUsed()
        case .answer(let code, _, _) where (200..<300).contains(code): markUsed()
        case .local, .answer: break
        }
        return decision
    }
}
