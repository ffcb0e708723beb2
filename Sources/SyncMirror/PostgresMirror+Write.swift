import Foundation
import Logging
import PostgresNIO
import SyncNode
import SyncProtocol

extension PostgresMirror {
    /// Writes one batch and the vector it reaches, in one PostgreSQL transaction.
    func write(_ batch: MirrorBatch, chains: [(NodeID, String?)], _ db: PostgresConnection) async throws {
        let records = try MirrorRows.json(batch.records.map(MirrorRows.record))
        let entries = batch.entries
        func isCancelled(_ e: MirrorEntry) -> Bool {
            batch.cancelled[e.ledger]?.contains(EntryKey(entryID: e.entryID, origin: e.origin)) ?? false
        }
        let ledgerRows = try MirrorRows.copyText(entries.map { MirrorRows.entry($0, cancelled: isCancelled($0)) })
        let moneyRows = MirrorRows.copyText(entries.filter(\.isMoney).map { MirrorRows.money($0, cancelled: isCancelled($0)) })
        let vector = try MirrorRows.json(chains.map { VectorRow(origin: $0.0.hex, seq: Int64(clamping: batch.through[$0.0]), chain: $0.1) })
        let total = String(batch.through.total)
        try await db.transaction(logger: logger) { db in
            if !batch.records.isEmpty {
                try await db.run(
                    """
                    INSERT INTO records (collection, record_id, fields, deleted, updated, updated_by, conflicted_fields)
                    SELECT * FROM json_to_recordset(\(records)::json) AS r(
                        collection text, record_id text, fields jsonb, deleted boolean, updated timestamptz, updated_by text, conflicted_fields jsonb)
                    ON CONFLICT (collection, record_id) DO UPDATE SET fields = excluded.fields, deleted = excluded.deleted,
                        updated = excluded.updated, updated_by = excluded.updated_by, conflicted_fields = excluded.conflicted_fields
                    """, logger: logger)
            }
            // The entries by COPY into a table of this session's (emptied at each commit), then
            // one upsert from it: an order of magnitude faster than rows parsed from one document.
            if !entries.isEmpty {
                try await db.run("CREATE TEMP TABLE IF NOT EXISTS ledger_entries_in (LIKE ledger_entries) ON COMMIT DELETE ROWS", logger: logger)
                try await db.copy(into: "ledger_entries_in", columns: MirrorRows.ledgerColumns, text: ledgerRows, logger: logger)
                try await db.run(
                    """
                    INSERT INTO ledger_entries (ledger, entry_id, origin, kind, time, author, fields, reversal, cancelled)
                    SELECT ledger, entry_id, origin, kind, time, author, fields, reversal, cancelled FROM ledger_entries_in
                    ON CONFLICT (ledger, entry_id, origin) DO UPDATE SET kind = excluded.kind, time = excluded.time, author = excluded.author,
                        fields = excluded.fields, reversal = excluded.reversal, cancelled = excluded.cancelled
                    """, logger: logger)
            }
            if entries.contains(where: \.isMoney) {
                try await db.run("CREATE TEMP TABLE IF NOT EXISTS money_entries_in (LIKE money_entries) ON COMMIT DELETE ROWS", logger: logger)
                try await db.copy(into: "money_entries_in", columns: MirrorRows.moneyColumns, text: moneyRows, logger: logger)
                try await db.run(
                    """
                    INSERT INTO money_entries (ledger, id, origin, kind, county, year, project, stage, amount_fen, placed, cancelled, counts, reversal, author, time)
                    SELECT ledger, id, origin, kind, county, year, project, stage, amount_fen, placed, cancelled, counts, reversal, author, time
                    FROM money_entries_in
                    ON CONFLICT (ledger, id, origin) DO UPDATE SET kind = excluded.kind, county = excluded.county, year = excluded.year,
                        project = excluded.project, stage = excluded.stage, amount_fen = excluded.amount_fen, placed = excluded.placed,
                        cancelled = excluded.cancelled, counts = excluded.counts, reversal = excluded.reversal, author = excluded.author,
                        time = excluded.time
                    """, logger: logger)
            }
            for (ledger, cancelled) in batch.cancelled.sorted(by: { $0.key < $1.key }) {
                try await reconcile(ledger: ledger, cancelled: cancelled, db)
            }
            try await db.run(
                """
                INSERT INTO mirror_vector (origin, seq, chain) SELECT * FROM json_to_recordset(\(vector)::json) AS r(origin text, seq bigint, chain text)
                ON CONFLICT (origin) DO UPDATE SET seq = excluded.seq, chain = excluded.chain
                """, logger: logger)
            try await db.run(
                "INSERT INTO syncnode_mirror (key, value) VALUES ('mirrored', \(total)) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                logger: logger)
        }
    }

    private struct VectorRow: Encodable {
        var origin: String
        var seq: Int64
        var chain: String?
    }

    /// Makes the mirror's cancelled entries of `ledger` the node's: an entry a reversal now
    /// cancels stops counting; one no reversal cancels any more (its reversal was withdrawn with
    /// a forked history) counts again where it has a place.
    private func reconcile(ledger: String, cancelled: Set<EntryKey>, _ db: PostgresConnection) async throws {
        // As PostgreSQL holds them (`MirrorRows.pg`).
        let ledger = MirrorRows.pg(ledger)
        let cancelled = Set(cancelled.map { EntryKey(entryID: MirrorRows.pg($0.entryID), origin: $0.origin) })
        var before = Set<EntryKey>()
        let rows = try await db.run("SELECT entry_id, origin FROM ledger_entries WHERE ledger = \(ledger) AND cancelled", logger: logger)
        for try await (id, origin) in rows.decode((String, String).self) {
            if let node = NodeID(hex: origin) { before.insert(EntryKey(entryID: id, origin: node)) }
        }
        let changes =
            cancelled.subtracting(before).map { MirrorRows.Cancellation(entry_id: MirrorRows.pg($0.entryID), origin: $0.origin.hex, cancelled: true) }
            + before.subtracting(cancelled).map {
                MirrorRows.Cancellation(entry_id: MirrorRows.pg($0.entryID), origin: $0.origin.hex, cancelled: false)
            }
        guard !changes.isEmpty else { return }
        let json = try MirrorRows.json(changes)
        try await db.run(
            """
            UPDATE ledger_entries AS e SET cancelled = r.cancelled
            FROM json_to_recordset(\(json)::json) AS r(entry_id text, origin text, cancelled boolean)
            WHERE e.ledger = \(ledger) AND e.entry_id = r.entry_id AND e.origin = r.origin
            """, logger: logger)
        try await db.run(
            """
            UPDATE money_entries AS m SET cancelled = r.cancelled, counts = m.placed AND NOT r.cancelled
            FROM json_to_recordset(\(json)::json) AS r(entry_id text, origin text, cancelled boolean)
            WHERE m.ledger = \(ledger) AND m.id = r.entry_id AND m.origin = r.origin
            """, logger: logger)
    }

    /// The tables computed from everything at once, written again whole in one transaction: the
    /// open conflicts, the nodes' labels, and the funds and review reports as the node computes
    /// them (the same figures as `report funds --json` and `report review --json`). `key` says
    /// what they were computed from (`syncnode_mirror.derived_through`).
    func refreshDerived(key: String, _ db: PostgresConnection) async throws {
        let (conflicts, labels, funds, review) = try await BlockingWork.run { [store] in
            (
                try store.conflicts(), try store.nodeLabels(), try store.report("funds", today: Self.today()),
                try store.report("review", today: Self.today())
            )
        }
        let conflictRows = try MirrorRows.json(conflicts.map { MirrorRows.conflict($0, labels: labels) })
        let nodeRows = try MirrorRows.json(labels.map { NodeRow(node: $0.key.hex, label: MirrorRows.pg($0.value)) })
        let reports = try [funds, review].map { table in
            let columns = MirrorSchema.columns(of: table)
            return (table.name, columns, try MirrorSchema.reportRows(table, columns))
        }
        let now = MirrorRows.time(UInt64(Date().timeIntervalSince1970 * 1000))
        try await db.transaction(logger: logger) { db in
            // One writer of these tables at a time (a `mirror` run beside `serve`'s): a second
            // waits here, then replaces what the first wrote.
            for try await _ in try await db.run("SELECT pg_advisory_xact_lock(\(MirrorSchema.lockKey + 1))", logger: logger) {}
            try await db.run("DELETE FROM conflicts", logger: logger)
            try await db.run(
                """
                INSERT INTO conflicts SELECT * FROM json_to_recordset(\(conflictRows)::json) AS r(
                    collection text, record_id text, field text, winner jsonb, winner_time timestamptz, winner_node text, other jsonb,
                    other_time timestamptz, other_node text)
                """, logger: logger)
            try await db.run("DELETE FROM nodes", logger: logger)
            try await db.run(
                "INSERT INTO nodes SELECT * FROM json_to_recordset(\(nodeRows)::json) AS r(node text, label text)", logger: logger)
            for (name, columns, rows) in reports {
                try await makeReportTable(name, columns, db)
                try await db.run(PostgresQuery(unsafeSQL: "DELETE FROM \(name)"), logger: logger)
                var binds = PostgresBindings()
                binds.append(rows)
                try await db.run(PostgresQuery(unsafeSQL: MirrorSchema.insertReport(name, columns), binds: binds), logger: logger)
            }
            try await db.run(
                """
                INSERT INTO syncnode_mirror (key, value) VALUES ('derived_through', \(key)), ('refreshed_at', \(now))
                ON CONFLICT (key) DO UPDATE SET value = excluded.value
                """, logger: logger)
        }
    }

    private struct NodeRow: Encodable {
        var node: String
        var label: String
    }

    /// Makes a report's table, or adds the columns a newer report has; nothing when it has them
    /// all (an ALTER would lock the table against analysts' reads even when it changes nothing).
    private func makeReportTable(_ name: String, _ columns: [MirrorSchema.ReportColumn], _ db: PostgresConnection) async throws {
        var present = Set<String>()
        let rows = try await db.run(
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = \(name)", logger: logger)
        for try await column in rows.decode(String.self) { present.insert(column) }
        guard columns.contains(where: { !present.contains($0.name) }) else { return }
        for statement in MirrorSchema.reportTable(name, columns) { try await db.run(PostgresQuery(unsafeSQL: statement), logger: logger) }
    }

    /// Today in the node's time zone, as the reports take it.
    static func today() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: Date())
    }
}
