import MSRP
import NIOCore

/// What a connection's state machine asks of the world outside it, answered at
/// once: which session a request is for, and what the relay role (if any) does
/// with it. The NIO handler answers from the endpoint; tests from a table.
protocol MSRPConnectionEnvironment {
    /// The session `sessionID` names, bound to this connection if it can be.
    func lookup(sessionID: String, fromPath: [MSRPURI]) -> MSRPConnectionStateMachine.SessionLookup
    /// Whether the request is for a session of ours (`nil`: no relay role, or
    /// the relay says it is local), answered by the relay, or forwarded.
    func relayDecision(for request: MSRPRequestHead) -> MSRPRelayRole.Decision?
}

/// The inbound protocol of one MSRP connection (RFC 4975 §7, RFC 4976 for the
/// relay role), with no I/O: bytes in, actions out.
///
/// It parses frames, finds their session (481 unknown, 506 bound elsewhere),
/// chooses the status of every refusal (400 bad syntax or no Message-ID, 413,
/// 415 unacceptable content, 501 unknown method), reassembles chunks per
/// session, gates every response by the request's Failure-Report (§7.1.2:
/// `no` never, `partial` errors only), and hands the relay role what it
/// forwards, a large SEND chunk in parts of `chunkSize` as they arrive. The
/// handler performs the actions: writes, calls to session delegates, forwarding.
/// Modelled on swift-nio-ssh's `SSHConnectionStateMachine`: each input is a
/// unit-testable transition.
struct MSRPConnectionStateMachine {
    enum SessionLookup {
        case found(MSRPSession)
        case unknown
        case boundElsewhere
    }

    enum Action {
        /// A response to write (already allowed by the request's Failure-Report).
        case write(MSRPResponseHead)
        /// A REPORT for the session's delegate; REPORTs are never answered.
        case report(MSRPSession, MSRPRequestHead)
        /// Any other request for the session's delegate to decide; its decision
        /// comes back through `answer(_:decision:session:)`.
        case ask(MSRPSession, MSRPRequestHead)
        /// A complete message. Its last chunk is answered when the owner
        /// acknowledges it (`response(to:code:comment:session:)`), not before.
        case deliver(MSRPSession, AssembledMessage, lastChunk: MSRPRequestHead)
        /// What the relay role forwards: a request, or a part of a SEND chunk.
        case forward(MSRPRequestHead, body: ByteBuffer?, flag: ContinuationFlag, sid: String, grant: MSRPRelayRole.Grant, part: MSRPRelayRole.Part)
        /// A frame the parser refused, and the error response its sender gets (if any).
        case refused(MSRPParseError, response: MSRPResponseHead?)
        /// A response to a request this connection sent.
        case response(MSRPResponseHead)
        /// Input that cannot be parsed: the connection must close.
        case close(reason: String)
    }

    /// What to do with the rest of the frame whose head arrived.
    private enum InboundFrame {
        case none
        /// A SEND chunk going into a session's assembler.
        case send(MSRPSession, ChunkAssembler, MSRPRequestHead)
        /// A frame whose body is ignored (REPORT, other requests, responses, refused SENDs).
        case skip
        /// A request the relay role forwards: its body so far, and how many of its
        /// body bytes have gone on already (a large SEND chunk goes on in parts).
        case relay(MSRPRequestHead, ByteBuffer, sid: String, MSRPRelayRole.Grant, sent: Int64)
    }

    private var parser: MSRPParser
    private var frame: InboundFrame = .none
    private let assemblerLimits: ChunkAssemblerLimits
    /// A relayed SEND chunk goes on in parts once this much of it has arrived.
    private let chunkSize: Int
    /// Sessions bound to this connection, by session id, with their assemblers.
    private(set) var sessions: [String: (session: MSRPSession, assembler: ChunkAssembler)] = [:]
    /// True once the input could not be parsed (or the connection closed).
    private(set) var isClosed = false

    init(parserLimits: MSRPParserLimits, assemblerLimits: ChunkAssemblerLimits, chunkSize: Int) {
        self.parser = MSRPParser(limits: parserLimits)
        self.assemblerLimits = assemblerLimits
        self.chunkSize = chunkSize
    }

    // MARK: - Inputs

    /// Parses from `buffer` (consuming it) until something is to be done, and
    /// returns that; nil when the buffer holds nothing more to act on. The
    /// caller performs each action before asking for the next, so that what a
    /// delegate does (close its session, answer at once) comes in order.
    mutating func next(_ buffer: inout ByteBuffer, environment: some MSRPConnectionEnvironment) -> Action? {
        do {
            while !isClosed, let event = try parser.next(&buffer) {
                if let action = handle(event, environment) { return action }
            }
        } catch {
            isClosed = true
            return .close(reason: "unparseable MSRP input: \(error)")
        }
        return nil
    }

    /// A session's delegate decided about a request (`.ask`).
    static func answer(_ request: MSRPRequestHead, decision: MSRPRequestDecision, session: MSRPSession) -> MSRPResponseHead? {
        switch decision {
        case .respond(let code, let comment, let headers):
            return Self.response(to: request, code: code, comment: comment, session: session, headers: headers)
        case .unknownMethod:
            return Self.response(to: request, code: 501, session: session)  // MSRPStatusCode's reason phrase
        }
    }

    /// The response to `request`, or nil when its Failure-Report says none is
    /// wanted (§7.1.2, §7.2) or it is a REPORT (never answered).
    static func response(
        to request: MSRPRequestHead, code: Int, comment: String? = nil, session: MSRPSession? = nil, headers: MSRPHeaderFields = []
    ) -> MSRPResponseHead? {
        guard request.method != .report else { return nil }
        let fr = request.headers.failureReport
        if code == 200 ? !fr.wantsSuccessResponse : !fr.wantsFailures { return nil }
        return MSRPResponseBuilder.response(to: request, code: code, comment: comment, local: session?.localURI, headers: headers)
    }

    /// Binds a session to this connection. Returns true if it was not bound yet.
    @discardableResult
    mutating func attach(_ session: MSRPSession) -> Bool {
        guard sessions[session.id] == nil else { return false }
        sessions[session.id] = (session, ChunkAssembler(limits: assemblerLimits))
        return true
    }

    /// Unbinds a session (it ended); its partial messages are dropped.
    mutating func detach(_ sessionID: String) {
        sessions.removeValue(forKey: sessionID)?.assembler.discardAll()
    }

    /// The connection is gone: every bound session, to be told so.
    mutating func close() -> [MSRPSession] {
        isClosed = true
        frame = .none
        let bound = sessions
        sessions = [:]
        for (_, entry) in bound { entry.assembler.discardAll() }
        return bound.values.map(\.session)
    }

    // MARK: - Frames

    private mutating func handle(_ event: MSRPParserEvent, _ environment: some MSRPConnectionEnvironment) -> Action? {
        switch event {
        case .head(.response(let response), _):
            frame = .skip
            return .response(response)
        case .head(.request(let request), let hasBody):
            frame = .skip
            return requestHead(request, hasBody: hasBody, environment)
        case .body(let bytes):
            return body(bytes)
        case .end(let flag):
            let current = frame
            frame = .none
            if case .send(let session, let assembler, let head) = current {
                return finishChunk(head, flag: flag, session: session, assembler: assembler)
            } else if case .relay(let head, let body, let sid, let grant, let sent) = current {
                return .forward(
                    head, body: body.readableBytes > 0 || sent > 0 ? body : nil, flag: flag, sid: sid, grant: grant,
                    part: sent > 0 ? .last(sent) : .whole)
            }
            return nil
        case .invalid(let invalid):
            if case .send(_, let assembler, _) = frame { assembler.cancel() }
            frame = .skip
            guard invalid.method != .report, invalid.headers.failureReport.wantsFailures,
                  var response = MSRPResponseBuilder.response(to: invalid)
            else { return .refused(invalid.error, response: nil) }
            if let sid = invalid.toPath?.first?.sessionID, let s = sessions[sid] { response.fromPath = [s.session.localURI] }
            return .refused(invalid.error, response: response)
        }
    }

    private mutating func body(_ bytes: ByteBuffer) -> Action? {
        var bytes = bytes
        if case .relay(let head, var body, let sid, let grant, var sent) = frame {
            frame = .skip  // keeps `body` uniquely referenced while it grows
            if body.readableBytes == 0 { body = bytes } else { body.writeBuffer(&bytes) }
            // A large SEND chunk is not held whole: what has arrived goes on as a
            // part once there is a chunk's worth of it.
            var action: Action?
            if head.method == .send, body.readableBytes >= chunkSize {
                action = .forward(head, body: body, flag: .more, sid: sid, grant: grant, part: .middle(sent))
                sent += Int64(body.readableBytes)
                body = ByteBuffer()
            }
            frame = .relay(head, body, sid: sid, grant, sent: sent)
            return action
        } else if case .send(_, let assembler, let head) = frame {
            do {
                try assembler.append(bytes)
            } catch {
                assembler.cancel()
                frame = .skip
                return Self.response(to: head, code: error.code, comment: error.reason).map(Action.write)
            }
        }
        return nil
    }

    private mutating func requestHead(_ request: MSRPRequestHead, hasBody: Bool, _ environment: some MSRPConnectionEnvironment) -> Action? {
        // As a relay (RFC 4976): AUTH to it, and requests through the paths it granted.
        switch environment.relayDecision(for: request) {
        case nil, .local?:
            break
        case .answer(let code, let comment, let headers)?:
            guard request.method != .report, let local = request.toPath.first else { return nil }
            return .write(MSRPResponseBuilder.response(to: request, code: code, comment: comment, local: local, headers: headers))
        case .forward(let sid, let grant)?:
            frame = .relay(request, ByteBuffer(), sid: sid, grant, sent: 0)
            return nil
        }
        /// A refusal; without a comment, the status code's reason phrase.
        func refuse(_ code: Int, _ comment: String? = nil, _ session: MSRPSession? = nil) -> Action? {
            Self.response(to: request, code: code, comment: comment, session: session).map(Action.write)
        }
        // §7.3: the To-Path must name a live session associated with this connection.
        let session: MSRPSession
        switch lookup(request.toPath.first?.sessionID, fromPath: request.fromPath, environment) {
        case .found(let s): session = s
        case .unknown: return refuse(481)
        case .boundElsewhere: return refuse(506)
        }
        switch request.method {
        case .send:
            guard let messageID = request.headers.messageID else { return refuse(400, "SEND without Message-ID", session) }
            // A bodiless SEND binds a session or keeps it alive (§5.4); nothing to deliver.
            guard hasBody else { return Self.response(to: request, code: 200, session: session).map(Action.write) }
            let startsMessage = (request.headers.byteRange?.start ?? 1) == 1
            if startsMessage, let type = request.headers.contentType, !session.accepts(type) {
                return refuse(415, "\(type.essence) not accepted", session)
            }
            guard let entry = sessions[session.id] else { return nil }
            do {
                try entry.assembler.begin(request)
                frame = .send(session, entry.assembler, request)
                return nil
            } catch {
                entry.assembler.discard(messageID: messageID)
                return refuse(error.code, error.reason, session)
            }
        case .report:
            return .report(session, request)
        default:
            return .ask(session, request)
        }
    }

    private mutating func lookup(_ sid: String?, fromPath: [MSRPURI], _ environment: some MSRPConnectionEnvironment) -> SessionLookup {
        guard let sid else { return .unknown }
        if let entry = sessions[sid] { return .found(entry.session) }
        let found = environment.lookup(sessionID: sid, fromPath: fromPath)
        if case .found(let session) = found { attach(session) }
        return found
    }

    private func finishChunk(_ head: MSRPRequestHead, flag: ContinuationFlag, session: MSRPSession, assembler: ChunkAssembler) -> Action? {
        let outcome: ChunkAssembler.Outcome
        do {
            outcome = try assembler.end(flag)
        } catch {
            return Self.response(to: head, code: error.code, comment: error.reason, session: session).map(Action.write)
        }
        switch outcome {
        case .incomplete, .aborted:
            return Self.response(to: head, code: 200, session: session).map(Action.write)
        case .complete(let message):
            return .deliver(session, message, lastChunk: head)
        }
    }
}
