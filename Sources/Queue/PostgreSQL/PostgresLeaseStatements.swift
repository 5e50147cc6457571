import PostgresNIO

/// Due events of an adapter in queue order, claimed with SKIP LOCKED: rows
/// another node is claiming or settling right now are passed over, not waited
/// for; events pinned to another node are not this node's. A statement each
/// connection prepares once (the server parsed and planned it every lease).
struct LeaseDue: PostgresPreparedStatement {
    static let name = "msrpgw_lease_due"
    static let sql = leaseSQL(filter: "")
    typealias Row = PostgresRow
    let owner: String
    let until: Int64
    let now: Int64
    let adapter: String
    let limit: Int64
    let node: Int64
    /// Targets to leave out (busy endpoints): `LeaseDueExcluding`.
    let excluding: [String]

    func makeBindings() throws -> PostgresBindings {
        var binds = PostgresBindings(capacity: 7)  // six, and the excluded targets
        binds.append(owner)
        binds.append(until)
        binds.append(now)
        binds.append(adapter)
        binds.append(limit)
        binds.append(node)
        return binds
    }

    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }

    /// The lease, with `filter` narrowing the due events.
    static func leaseSQL(filter: String) -> String {
        """
        WITH due AS (
          SELECT id FROM event WHERE adapter = $4 AND state IN ('queued', 'leased') AND next_attempt_at <= $3
            AND (node IS NULL OR node = $6) \(filter)
          ORDER BY next_attempt_at, id LIMIT $5 FOR UPDATE SKIP LOCKED)
        UPDATE event SET state = 'leased', lease_owner = $1, next_attempt_at = $2, attempts = attempts + 1, updated_at = $3
        WHERE id IN (SELECT id FROM due)
        RETURNING \(EventRow.columns)
        """
    }
}

/// `LeaseDue` leaving targets out. It looks only at the oldest due events
/// (`dueWindow`): a bounded walk of the index whatever the backlog of the
/// targets left out, as on SQLite.
struct LeaseDueExcluding: PostgresPreparedStatement {
    /// How many of the oldest due events a lease that leaves targets out looks at.
    static let dueWindow = 4096
    static let name = "msrpgw_lease_due_excluding"
    static let sql = LeaseDue.leaseSQL(filter: """
        AND target <> ALL($7) AND id IN (
          SELECT id FROM event WHERE adapter = $4 AND state IN ('queued', 'leased') AND next_attempt_at <= $3
          ORDER BY next_attempt_at, id LIMIT \(dueWindow))
        """)
    typealias Row = PostgresRow
    let lease: LeaseDue

    init(_ lease: LeaseDue) { self.lease = lease }

    func makeBindings() throws -> PostgresBindings {
        var binds = try lease.makeBindings()
        binds.append(lease.excluding)
        return binds
    }

    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}
