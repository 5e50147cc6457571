import Events
import Foundation
import GRDB

/// One row of the `event` table: the mapping between `NewEvent`/`QueuedEvent`
/// and the columns.
struct EventRow: Sendable {
    var new: NewEvent
    var id: EventID
    var now: Date
    /// Stored already leased (`SQLiteEventQueue` granted the claim).
    var claim: LeaseClaim?

    init(new: NewEvent, id: EventID, now: Date, claim: LeaseClaim? = nil) {
        self.new = new
        self.id = id
        self.now = now
        self.claim = claim
    }

    /// When the event is due (or, claimed, when its lease ends).
    var dueAt: Millis {
        if let claim { return Millis(now) + Millis(claim.duration) }
        return new.notBefore.map { Millis($0) } ?? Millis(now)
    }

    /// The columns that depend on whether the event is stored claimed come last:
    /// the others are bound before the writer runs (`fixedArguments`), so that the
    /// queue's single writer does not spend its time boxing them (issue 15).
    private static let insertSQL = """
        INSERT INTO event (id, kind, adapter, target, dedupe_key, parent_id, session_id, message_id, from_path,
          to_path, byte_count, success_report, failure_report, imdn_message_id, imdn_dispositions, env_from, env_to, env_cc,
          env_subject, env_datetime, content_type, env_headers, body, body_path, body_size, retry_base_at,
          created_at, updated_at, page_mode_sender, state, next_attempt_at, attempts, lease_owner)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(dedupe_key) DO NOTHING
        """

    /// The insert's arguments that do not depend on the claim, in `insertSQL`'s order.
    func fixedArguments() throws -> StatementArguments {
        let e = new
        let stamp = Millis(now)
        var inline: Data? = nil
        var path: String? = nil
        switch e.body {
        case .inline(let bytes): inline = Data(bytes)
        case .file(let p, _): path = p
        }
        let headers: String? = e.envelope.headers.isEmpty ? nil
            : String(decoding: try JSONEncoder().encode(e.envelope.headers), as: UTF8.self)
        let arguments: [(any DatabaseValueConvertible)?] = [
            id.rawValue, e.kind.rawValue, e.adapter, e.target, e.dedupeKey, e.parent?.rawValue, e.origin.sessionID,
            e.origin.messageID, Self.path(e.origin.fromPath), Self.path(e.origin.toPath), e.origin.byteCount, e.origin.successReport ? 1 : 0,
            e.origin.failureReport.rawValue, e.origin.imdnMessageID, e.origin.imdnDispositions.joined(separator: ","),
            e.envelope.from, e.envelope.to.joined(separator: "\n"), e.envelope.cc.joined(separator: "\n"),
            e.envelope.subject, e.envelope.dateTime, e.envelope.contentType, headers, inline, path, e.body.size,
            stamp, stamp, stamp, e.origin.pageModeSender,
        ]
        return StatementArguments(arguments)
    }

    /// Inserts the event, or finds the one already stored under its dedupe key.
    /// A claimed event newly stored comes back as leased. `fixed`: this row's
    /// `fixedArguments()`, when the caller made them already.
    func insertOrFind(_ db: Database, fixed: StatementArguments? = nil) throws -> Enqueued {
        let stamp = Millis(now)
        let claimed: StatementArguments = [
            claim == nil ? EventState.queued.rawValue : EventState.leased.rawValue, dueAt, claim == nil ? 0 : 1, claim?.owner,
        ]
        try db.cachedStatement(sql: Self.insertSQL).execute(arguments: try (fixed ?? fixedArguments()) + claimed)
        if db.changesCount > 0 { return Enqueued(id: id, wasStored: false, leased: claim.map { leased($0, stamp: stamp) }) }
        guard let key = new.dedupeKey,
            let existing = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM event WHERE dedupe_key = ?"), arguments: [key])
        else { throw QueueError(.other, "insert of event \(id) changed nothing") }
        return Enqueued(id: EventID(rawValue: existing), wasStored: true)
    }

    /// The event as a lease would read it back.
    private func leased(_ claim: LeaseClaim, stamp: Millis) -> QueuedEvent {
        let at = Date(millis: stamp)
        return QueuedEvent(
            id: id, kind: new.kind, state: .leased, adapter: new.adapter, target: new.target, origin: new.origin, envelope: new.envelope,
            body: new.body, parent: new.parent, attempts: 1, nextAttemptAt: Date(millis: dueAt), leaseOwner: claim.owner, lastError: nil,
            proof: nil, statusCode: nil, createdAt: at, updatedAt: at)
    }

    /// The columns `decode` reads, in this order: select them with
    /// `SELECT \(EventRow.columns) FROM event`. Read by position, because a
    /// lookup by name lowercases the name on every access (it was 14% of a
    /// lease + complete profile).
    static let columns = """
        id, kind, state, adapter, target, parent_id, session_id, message_id, from_path, to_path, byte_count, \
        success_report, failure_report, imdn_message_id, imdn_dispositions, env_from, env_to, env_cc, env_subject, \
        env_datetime, content_type, env_headers, body, body_path, body_size, attempts, next_attempt_at, lease_owner, \
        last_error, proof, status_code, created_at, updated_at, retry_base_at, page_mode_sender
        """
    /// Position of `retry_base_at` in `columns`.
    static let retryBaseColumn = 33

    /// A path as MSRP writes it: URIs separated by spaces (NULL when empty).
    static func path(_ uris: [String]) -> String? { uris.isEmpty ? nil : uris.joined(separator: " ") }

    static func decode(_ row: Row) throws -> QueuedEvent {
        func list(_ s: String?, _ sep: Character) -> [String] {
            (s ?? "").split(separator: sep).map(String.init)
        }
        guard let kind = EventKind(rawValue: row[1]), let state = EventState(rawValue: row[2]) else {
            throw QueueError(.corrupt, "event \(row[0] as Int64? ?? 0) has an unknown kind or state")
        }
        var headers: [String: String] = [:]
        if let json: String = row[21] {
            headers = (try? JSONDecoder().decode([String: String].self, from: Data(json.utf8))) ?? [:]
        }
        let body: EventBody
        if let path: String = row[23] {
            body = .file(path: path, size: row[24])
        } else {
            let data: Data? = row[22]
            body = .inline(data.map { [UInt8]($0) } ?? [])
        }
        guard let failureReport = FailureReportRequest(rawValue: row[12]) else {
            throw QueueError(.corrupt, "event \(row[0] as Int64? ?? 0) has an unknown failure_report")
        }
        let origin = EventOrigin(
            sessionID: row[6], messageID: row[7], fromPath: list(row[8], " "), toPath: list(row[9], " "),
            pageModeSender: row[34], byteCount: row[10], successReport: (row[11] as Int64? ?? 0) != 0,
            failureReport: failureReport, imdnMessageID: row[13], imdnDispositions: list(row[14], ","))
        let envelope = EventEnvelope(
            from: row[15], to: list(row[16], "\n"), cc: list(row[17], "\n"), subject: row[18],
            dateTime: row[19], contentType: row[20], headers: headers)
        return QueuedEvent(
            id: EventID(rawValue: row[0]), kind: kind, state: state, adapter: row[3], target: row[4],
            origin: origin, envelope: envelope, body: body, parent: (row[5] as Int64?).map(EventID.init(rawValue:)),
            attempts: row[25], nextAttemptAt: Date(millis: row[26]), leaseOwner: row[27],
            lastError: row[28], proof: row[29], statusCode: row[30],
            createdAt: Date(millis: row[31]), updatedAt: Date(millis: row[32]))
    }
}
