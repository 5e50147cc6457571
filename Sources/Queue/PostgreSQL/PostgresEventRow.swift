import Events
import Foundation
import NIOCore
import PostgresNIO

/// The mapping between events and the `event` table on PostgreSQL: the same
/// columns as on SQLite (`EventRow.columns`), read by position.
enum PostgresEventRow {
    /// The columns an insert writes, in the order `appendInsert` binds them.
    static let insertColumns = """
        id, kind, state, adapter, target, dedupe_key, parent_id, session_id, message_id, from_path, to_path, byte_count, \
        success_report, failure_report, imdn_message_id, imdn_dispositions, env_from, env_to, env_cc, env_subject, \
        env_datetime, content_type, env_headers, body, body_path, body_size, next_attempt_at, retry_base_at, created_at, \
        updated_at, page_mode_sender, node
        """
    static let insertColumnCount = 32
    /// Rows per INSERT statement: PostgreSQL takes at most 65,535 parameters.
    static let rowsPerInsert = 1000

    /// One `(...)` of a multi-row VALUES list, its parameters numbered from `first`.
    static func valuesTuple(first: Int) -> String {
        "(" + (first..<first + insertColumnCount).map { "$\($0)" }.joined(separator: ", ") + ")"
    }

    /// Binds one new event's columns (see `insertColumns`); `node`: the only
    /// node that may deliver it (nil: any).
    static func appendInsert(_ row: EventRow, node: Int?, to binds: inout PostgresBindings) throws {
        let e = row.new
        let stamp = Millis(row.now)
        var inline: ByteBuffer? = nil
        var path: String? = nil
        switch e.body {
        case .inline(let bytes): inline = ByteBuffer(bytes: bytes)
        case .file(let p, _): path = p
        }
        let headers: String? = e.envelope.headers.isEmpty ? nil
            : String(decoding: try JSONEncoder().encode(e.envelope.headers), as: UTF8.self)
        binds.append(row.id.rawValue)
        binds.append(e.kind.rawValue)
        binds.append("queued")
        binds.append(e.adapter)
        binds.append(e.target)
        binds.append(e.dedupeKey)
        binds.append(e.parent?.rawValue)
        binds.append(e.origin.sessionID)
        binds.append(e.origin.messageID)
        binds.append(EventRow.path(e.origin.fromPath))
        binds.append(EventRow.path(e.origin.toPath))
        binds.append(e.origin.byteCount)
        binds.append(e.origin.successReport)
        binds.append(e.origin.failureReport.rawValue)
        binds.append(e.origin.imdnMessageID)
        binds.append(e.origin.imdnDispositions.joined(separator: ","))
        binds.append(e.envelope.from)
        binds.append(e.envelope.to.joined(separator: "\n"))
        binds.append(e.envelope.cc.joined(separator: "\n"))
        binds.append(e.envelope.subject)
        binds.append(e.envelope.dateTime)
        binds.append(e.envelope.contentType)
        binds.append(headers)
        binds.append(inline)
        binds.append(path)
        binds.append(e.body.size)
        binds.append(e.notBefore.map { Millis($0) } ?? stamp)
        binds.append(stamp)
        binds.append(stamp)
        binds.append(stamp)
        binds.append(e.origin.pageModeSender)
        binds.append(node)
    }

    /// A row selected as `EventRow.columns`.
    static func decode(_ row: PostgresRow) throws(QueueError) -> QueuedEvent {
        let r = row.makeRandomAccess()
        do {
            func text(_ i: Int) throws -> String? { try r[i].decode(String?.self) }
            func list(_ i: Int, _ sep: Character) throws -> [String] { (try text(i) ?? "").split(separator: sep).map(String.init) }
            func millis(_ i: Int) throws -> Date { Date(millis: try r[i].decode(Int64.self)) }
            let id = try r[0].decode(Int64.self)
            guard let kind = EventKind(rawValue: try r[1].decode(String.self)), let state = EventState(rawValue: try r[2].decode(String.self)),
                let failureReport = FailureReportRequest(rawValue: try r[12].decode(String.self))
            else { throw QueueError(.corrupt, "event \(id) has an unknown kind, state or failure_report") }
            var headers: [String: String] = [:]
            if let json = try text(21) {
                headers = (try? JSONDecoder().decode([String: String].self, from: Data(json.utf8))) ?? [:]
            }
            let body: EventBody
            if let path = try text(23) {
                body = .file(path: path, size: try r[24].decode(Int64.self))
            } else {
                let buffer = try r[22].decode(ByteBuffer?.self)
                body = .inline(buffer.map { Array($0.readableBytesView) } ?? [])
            }
            let origin = EventOrigin(
                sessionID: try text(6), messageID: try text(7), fromPath: try list(8, " "), toPath: try list(9, " "),
                pageModeSender: try text(34), byteCount: try r[10].decode(Int64?.self), successReport: try r[11].decode(Bool.self),
                failureReport: failureReport, imdnMessageID: try text(13), imdnDispositions: try list(14, ","))
            let envelope = EventEnvelope(
                from: try text(15), to: try list(16, "\n"), cc: try list(17, "\n"), subject: try text(18),
                dateTime: try text(19), contentType: try r[20].decode(String.self), headers: headers)
            return QueuedEvent(
                id: EventID(rawValue: id), kind: kind, state: state, adapter: try r[3].decode(String.self), target: try r[4].decode(String.self),
                origin: origin, envelope: envelope, body: body, parent: try r[5].decode(Int64?.self).map(EventID.init(rawValue:)),
                attempts: Int(try r[25].decode(Int32.self)), nextAttemptAt: try millis(26), leaseOwner: try text(27),
                lastError: try text(28), proof: try text(29), statusCode: try r[30].decode(Int32?.self).map(Int.init),
                createdAt: try millis(31), updatedAt: try millis(32))
        } catch let error as QueueError {
            throw error
        } catch {
            throw QueueError(.corrupt, "an event row does not decode: \(error)")
        }
    }

    /// `retry_base_at` of a row selected as `EventRow.columns`.
    static func retryBase(_ row: PostgresRow) throws(QueueError) -> Date {
        do {
            return Date(millis: try row.makeRandomAccess()[EventRow.retryBaseColumn].decode(Int64.self))
        } catch {
            throw QueueError(.corrupt, "retry_base_at does not decode: \(error)")
        }
    }
}
