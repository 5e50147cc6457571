import Foundation
import GRDB

/// One row of the `event` table: the mapping between `NewEvent`/`QueuedEvent`
/// and the columns.
struct EventRow: Sendable {
    var new: NewEvent
    var id: EventID
    var now: Date

    init(new: NewEvent, id: EventID, now: Date) {
        self.new = new
        self.id = id
        self.now = now
    }

    private static let insertSQL = """
        INSERT INTO event (id, kind, state, adapter, target, dedupe_key, parent_id, session_id, message_id, from_path,
          to_path, byte_count, success_report, failure_report, imdn_message_id, imdn_dispositions, env_from, env_to, env_cc,
          env_subject, env_datetime, content_type, env_headers, body, body_path, body_size, next_attempt_at, retry_base_at,
          created_at, updated_at)
        VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(dedupe_key) DO NOTHING
        """

    /// Inserts the event, or finds the one already stored under its dedupe key.
    func insertOrFind(_ db: Database) throws -> EventID {
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
            e.origin.messageID, e.origin.fromPath, e.origin.toPath, e.origin.byteCount, e.origin.successReport ? 1 : 0,
            e.origin.failureReport, e.origin.imdnMessageID, e.origin.imdnDispositions.joined(separator: ","),
            e.envelope.from, e.envelope.to.joined(separator: "\n"), e.envelope.cc.joined(separator: "\n"),
            e.envelope.subject, e.envelope.dateTime, e.envelope.contentType, headers, inline, path, e.body.size,
            e.notBefore.map { Millis($0) } ?? stamp, stamp, stamp, stamp,
        ]
        try db.cachedStatement(sql: Self.insertSQL).execute(arguments: StatementArguments(arguments))
        if db.changesCount > 0 { return id }
        guard let key = e.dedupeKey,
            let existing = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM event WHERE dedupe_key = ?"), arguments: [key])
        else { throw QueueError(.other, "insert of event \(id) changed nothing") }
        return EventID(rawValue: existing)
    }

    static func decode(_ row: Row) throws -> QueuedEvent {
        func list(_ s: String?, _ sep: Character) -> [String] {
            (s ?? "").split(separator: sep).map(String.init)
        }
        guard let kind = EventKind(rawValue: row["kind"]), let state = EventState(rawValue: row["state"]) else {
            throw QueueError(.corrupt, "event \(row["id"] as Int64? ?? 0) has an unknown kind or state")
        }
        var headers: [String: String] = [:]
        if let json: String = row["env_headers"] {
            headers = (try? JSONDecoder().decode([String: String].self, from: Data(json.utf8))) ?? [:]
        }
        let body: EventBody
        if let path: String = row["body_path"] {
            body = .file(path: path, size: row["body_size"])
        } else {
            let data: Data? = row["body"]
            body = .inline(data.map { [UInt8]($0) } ?? [])
        }
        let origin = EventOrigin(
            sessionID: row["session_id"], messageID: row["message_id"], fromPath: row["from_path"], toPath: row["to_path"],
            byteCount: row["byte_count"], successReport: (row["success_report"] as Int64? ?? 0) != 0,
            failureReport: row["failure_report"], imdnMessageID: row["imdn_message_id"],
            imdnDispositions: list(row["imdn_dispositions"], ","))
        let envelope = EventEnvelope(
            from: row["env_from"], to: list(row["env_to"], "\n"), cc: list(row["env_cc"], "\n"), subject: row["env_subject"],
            dateTime: row["env_datetime"], contentType: row["content_type"], headers: headers)
        return QueuedEvent(
            id: EventID(rawValue: row["id"]), kind: kind, state: state, adapter: row["adapter"], target: row["target"],
            origin: origin, envelope: envelope, body: body, parent: (row["parent_id"] as Int64?).map(EventID.init(rawValue:)),
            attempts: row["attempts"], nextAttemptAt: Date(millis: row["next_attempt_at"]), leaseOwner: row["lease_owner"],
            lastError: row["last_error"], proof: row["proof"], statusCode: row["status_code"],
            createdAt: Date(millis: row["created_at"]), updatedAt: Date(millis: row["updated_at"]))
    }
}
