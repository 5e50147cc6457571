import Events
import Foundation
import NIOCore
import PostgresNIO

/// The mapping between events and the `event` table on PostgreSQL: the same
/// columns as on SQLite (`EventRow.columns`), read by position.
enum PostgresEventRow {
    /// Rows per INSERT statement: a bound on one statement's size and time.
    static let rowsPerInsert = 1000

    /// New events as one array per column, inserted with one statement of a
    /// fixed text (`INSERT ... SELECT * FROM unnest($1, ..., $32)`): PostgreSQL
    /// parses a multi-row VALUES list element by element, which cost it twice
    /// the time of the insert itself (2.5 ms against 1.2 ms for 32 events).
    struct Columns {
        var id: [Int64] = [], kind: [String] = [], adapter: [String] = [], target: [String] = []
        var dedupeKey: [String?] = [], parent: [Int64?] = [], sessionID: [String?] = [], messageID: [String?] = []
        var fromPath: [String?] = [], toPath: [String?] = [], byteCount: [Int64?] = [], successReport: [Bool] = []
        var failureReport: [String] = [], imdnMessageID: [String?] = [], imdnDispositions: [String] = [], from: [String?] = []
        var to: [String] = [], cc: [String] = [], subject: [String?] = [], dateTime: [String?] = [], contentType: [String] = []
        var headers: [String?] = [], body: [ByteBuffer?] = [], bodyPath: [String?] = [], bodySize: [Int64] = []
        var nextAttemptAt: [Int64] = [], stamp: [Int64] = [], pageModeSender: [String?] = [], node: [Int64?] = []

        /// Adds one new event; `node`: the only node that may deliver it (nil: any).
        mutating func append(_ row: EventRow, node: Int?) throws {
            let e = row.new
            let now = Millis(row.now)
            switch e.body {
            case .inline(let bytes):
                body.append(ByteBuffer(bytes: bytes))
                bodyPath.append(nil)
            case .file(let path, _):
                body.append(nil)
                bodyPath.append(path)
            }
            headers.append(e.envelope.headers.isEmpty ? nil : String(decoding: try JSONEncoder().encode(e.envelope.headers), as: UTF8.self))
            id.append(row.id.rawValue)
            kind.append(e.kind.rawValue)
            adapter.append(e.adapter)
            target.append(e.target)
            dedupeKey.append(e.dedupeKey)
            parent.append(e.parent?.rawValue)
            sessionID.append(e.origin.sessionID)
            messageID.append(e.origin.messageID)
            fromPath.append(EventRow.path(e.origin.fromPath))
            toPath.append(EventRow.path(e.origin.toPath))
            byteCount.append(e.origin.byteCount)
            successReport.append(e.origin.successReport)
            failureReport.append(e.origin.failureReport.rawValue)
            imdnMessageID.append(e.origin.imdnMessageID)
            imdnDispositions.append(e.origin.imdnDispositions.joined(separator: ","))
            from.append(e.envelope.from)
            to.append(e.envelope.to.joined(separator: "\n"))
            cc.append(e.envelope.cc.joined(separator: "\n"))
            subject.append(e.envelope.subject)
            dateTime.append(e.envelope.dateTime)
            contentType.append(e.envelope.contentType)
            bodySize.append(e.body.size)
            nextAttemptAt.append(e.notBefore.map { Millis($0) } ?? now)
            stamp.append(now)
            pageModeSender.append(e.origin.pageModeSender)
            self.node.append(node.map(Int64.init))
        }

        static let insertSQL = """
            INSERT INTO event (id, kind, state, adapter, target, dedupe_key, parent_id, session_id, message_id, from_path, to_path, byte_count,
              success_report, failure_report, imdn_message_id, imdn_dispositions, env_from, env_to, env_cc, env_subject, env_datetime,
              content_type, env_headers, body, body_path, body_size, next_attempt_at, retry_base_at, created_at, updated_at,
              page_mode_sender, node)
            SELECT id, kind, 'queued', adapter, target, dedupe_key, parent_id, session_id, message_id, from_path, to_path, byte_count,
              success_report, failure_report, imdn_message_id, imdn_dispositions, env_from, env_to, env_cc, env_subject, env_datetime,
              content_type, env_headers, body, body_path, body_size, next_attempt_at, stamp, stamp, stamp, page_mode_sender, node
            FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[],
              $10::text[], $11::bigint[], $12::boolean[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
              $19::text[], $20::text[], $21::text[], $22::text[], $23::bytea[], $24::text[], $25::bigint[], $26::bigint[], $27::bigint[],
              $28::text[], $29::bigint[])
              AS new(id, kind, adapter, target, dedupe_key, parent_id, session_id, message_id, from_path, to_path, byte_count,
                success_report, failure_report, imdn_message_id, imdn_dispositions, env_from, env_to, env_cc, env_subject, env_datetime,
                content_type, env_headers, body, body_path, body_size, next_attempt_at, stamp, page_mode_sender, node)
            ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
            """

        var query: PostgresQuery {
            var binds = PostgresBindings(capacity: 29)
            binds.append(id)
            binds.append(kind)
            binds.append(adapter)
            binds.append(target)
            binds.append(NullableArray(dedupeKey))
            binds.append(NullableArray(parent))
            binds.append(NullableArray(sessionID))
            binds.append(NullableArray(messageID))
            binds.append(NullableArray(fromPath))
            binds.append(NullableArray(toPath))
            binds.append(NullableArray(byteCount))
            binds.append(successReport)
            binds.append(failureReport)
            binds.append(NullableArray(imdnMessageID))
            binds.append(imdnDispositions)
            binds.append(NullableArray(from))
            binds.append(to)
            binds.append(cc)
            binds.append(NullableArray(subject))
            binds.append(NullableArray(dateTime))
            binds.append(contentType)
            binds.append(NullableArray(headers))
            binds.append(NullableArray(body))
            binds.append(NullableArray(bodyPath))
            binds.append(bodySize)
            binds.append(nextAttemptAt)
            binds.append(stamp)
            binds.append(NullableArray(pageModeSender))
            binds.append(NullableArray(node))
            return PostgresQuery(unsafeSQL: Self.insertSQL, binds: binds)
        }
    }

    /// The insert as a statement each connection prepares once: the server
    /// parses and plans it once, not for every batch.
    struct Insert: PostgresPreparedStatement {
        static let name = "msrpgw_insert_events"
        static let sql = Columns.insertSQL
        typealias Row = Int64
        let columns: Columns

        func makeBindings() throws -> PostgresBindings { columns.query.binds }
        func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
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

/// A one-dimensional array whose elements may be NULL (postgres-nio encodes
/// arrays of values only), in PostgreSQL's binary array format.
struct NullableArray<Element: PostgresArrayEncodable & PostgresNonThrowingEncodable>: PostgresNonThrowingEncodable {
    var elements: [Element?]
    init(_ elements: [Element?]) { self.elements = elements }

    static var psqlType: PostgresDataType { Element.psqlArrayType }
    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        // Dimensions, whether any element is NULL, the element type; then the
        // length and lower bound of the one dimension.
        buffer.writeInteger(elements.isEmpty ? 0 : 1, as: Int32.self)
        buffer.writeInteger(elements.contains { $0 == nil } ? 1 : 0, as: Int32.self)
        buffer.writeInteger(Element.psqlType.rawValue)
        guard !elements.isEmpty else { return }
        buffer.writeInteger(Int32(elements.count))
        buffer.writeInteger(1, as: Int32.self)
        for element in elements {
            if let element {
                // Each element: its length, then its bytes.
                let lengthAt = buffer.writerIndex
                buffer.writeInteger(0, as: Int32.self)
                let start = buffer.writerIndex
                element.encode(into: &buffer, context: context)
                buffer.setInteger(Int32(buffer.writerIndex - start), at: lengthAt)
            } else {
                buffer.writeInteger(-1, as: Int32.self)
            }
        }
    }
}
