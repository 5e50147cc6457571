import MSRP
import NIOConcurrencyHelpers
import NIOCore

/// An MSRP session (§5.2): our URI, the peer's path, the connection it is bound
/// to, and whoever receives its messages. Thread-safe.
public final class MSRPSession: Sendable, CustomStringConvertible {
    /// Which side opens the connection (RFC 4145 `a=setup`; §5.4).
    public enum Setup: String, Sendable {
        /// We connect to the first URI of the peer's path.
        case active
        /// We wait for the peer to connect and send the first request.
        case passive
    }

    struct State {
        var remotePath: [MSRPURI]
        var connection: MSRPConnection?
        var closed = false
        var acceptTypes: [MediaType]
    }

    /// The session id: the key of the session table and the last part of `localURI`.
    public let id: String
    public let localURI: MSRPURI
    public let setup: Setup
    public let delegate: (any MSRPSessionDelegate)?
    private let state: NIOLockedValueBox<State>
    unowned let endpoint: MSRPEndpoint

    init(
        id: String, localURI: MSRPURI, setup: Setup, remotePath: [MSRPURI], acceptTypes: [MediaType],
        delegate: (any MSRPSessionDelegate)?, endpoint: MSRPEndpoint
    ) {
        self.id = id
        self.localURI = localURI
        self.setup = setup
        self.delegate = delegate
        self.endpoint = endpoint
        self.state = NIOLockedValueBox(State(remotePath: remotePath, acceptTypes: acceptTypes))
    }

    public var description: String { "MSRPSession(\(id))" }

    /// The peer's path from its SDP `a=path` (To-Path of what we send).
    public var remotePath: [MSRPURI] {
        get { state.withLockedValue { $0.remotePath } }
        set { state.withLockedValue { $0.remotePath = newValue } }
    }

    /// Content types we accept (our `a=accept-types`); a SEND of another type gets 415.
    public var acceptTypes: [MediaType] {
        get { state.withLockedValue { $0.acceptTypes } }
        set { state.withLockedValue { $0.acceptTypes = newValue } }
    }

    public var connection: MSRPConnection? { state.withLockedValue { $0.connection } }
    public var isClosed: Bool { state.withLockedValue { $0.closed } }

    func accepts(_ type: MediaType) -> Bool {
        let accepted = acceptTypes
        return accepted.isEmpty || accepted.contains { $0.accepts(type) }
    }

    /// Binds to `connection` unless bound to another one already; false then.
    func bind(to connection: MSRPConnection) -> Bool {
        state.withLockedValue { s in
            if s.closed { return false }
            if let c = s.connection { return c === connection }
            s.connection = connection
            return true
        }
    }

    /// Opens (or reuses) a connection to the peer and binds the session with a
    /// bodiless SEND (§5.4). For active sessions; passive ones wait to be reached.
    public func connect() async throws {
        if connection != nil { return }
        guard let first = remotePath.first else {
            throw MSRPSendError(reason: .notConnected, detail: "no remote path to connect to")
        }
        let conn = try await endpoint.connection(to: first)
        guard bind(to: conn) else {
            throw MSRPSendError(reason: .notConnected, detail: "session is bound to another connection or closed")
        }
        try await conn.withHandler { [self] in $0.attach(self) }.get()
        let head = MSRPRequestHead(
            transactionID: MSRPIdentifier.make(), method: .send, toPath: remotePath, fromPath: [localURI],
            headers: [.messageID(MSRPIdentifier.make()), .byteRange(ByteRange(start: 1, end: 0, total: 0))])
        let response = try await request(head, body: nil)
        guard response.code == 200 else {
            throw MSRPSendError(reason: .notConnected, detail: "binding SEND answered \(response.code)")
        }
    }

    private func boundConnection() throws(MSRPSendError) -> MSRPConnection {
        let (conn, closed) = state.withLockedValue { ($0.connection, $0.closed) }
        if closed { throw MSRPSendError(reason: .sessionClosed, detail: "session \(id) is closed") }
        guard let conn else { throw MSRPSendError(reason: .notConnected, detail: "session \(id) has no connection yet") }
        return conn
    }

    /// Sends a message, chunked as configured, and waits for the transaction outcome.
    /// Cancelling the calling task abandons the message: the chunk on the wire
    /// ends with `#` and the call throws `CancellationError`.
    public func send(_ message: MSRPOutgoingMessage) async throws -> MSRPSendOutcome {
        let conn = try boundConnection()
        let promise = conn.eventLoop.makePromise(of: MSRPSendOutcome.self)
        let job = conn.withHandler { [self] in $0.enqueue(message, session: self, promise: promise) }
        job.whenFailure { promise.fail($0) }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            job.whenSuccess { id in
                guard let id else { return }
                _ = conn.withHandler { $0.cancel(id) }
            }
        }
    }

    /// Sends a REPORT (never answered, §7.1.2).
    /// Sends a REPORT; its body, if any, is informational (RFC 4975 §7.1.2: a
    /// chat room's 427 carries the recipients it could not reach).
    public func sendReport(_ report: MSRPRequestHead, body: ByteBuffer? = nil) throws {
        let conn = try boundConnection()
        _ = conn.withHandler { $0.enqueueRequest(report, body: body, promise: nil) }
    }

    /// Sends a non-SEND request (AUTH, NICKNAME, ...) and waits for its response;
    /// a synthesised 408 if none comes within the transaction timeout.
    public func request(_ head: MSRPRequestHead, body: ByteBuffer?) async throws -> MSRPResponseHead {
        let conn = try boundConnection()
        let promise = conn.eventLoop.makePromise(of: MSRPResponseHead.self)
        conn.withHandler { $0.enqueueRequest(head, body: body, promise: promise) }.whenFailure { promise.fail($0) }
        return try await promise.futureResult.get()
    }

    /// Ends the session: it leaves the session table and its connection.
    public func close() {
        let conn: MSRPConnection? = state.withLockedValue { s in
            if s.closed { return nil }
            s.closed = true
            defer { s.connection = nil }
            return s.connection
        }
        endpoint.registry.remove(id)
        if let conn { _ = conn.withHandler { [id] in $0.detach(id) } }
        delegate?.sessionDidClose(self, reason: .local)
    }

    /// The connection died under the session.
    func connectionLost() {
        let wasOpen = state.withLockedValue { s in
            defer {
                s.closed = true
                s.connection = nil
            }
            return !s.closed
        }
        endpoint.registry.remove(id)
        if wasOpen { delegate?.sessionDidClose(self, reason: .connectionLost) }
    }
}

/// Live sessions by session id.
final class MSRPSessionRegistry: Sendable {
    private let sessions = NIOLockedValueBox<[String: MSRPSession]>([:])

    func session(id: String) -> MSRPSession? { sessions.withLockedValue { $0[id] } }
    func insert(_ s: MSRPSession) { sessions.withLockedValue { $0[s.id] = s } }
    func remove(_ id: String) { sessions.withLockedValue { _ = $0.removeValue(forKey: id) } }
    var count: Int { sessions.withLockedValue { $0.count } }
    var all: [MSRPSession] { sessions.withLockedValue { Array($0.values) } }
}
