import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Migration `v5-integrity`.
    static func migrateV05Integrity(_ db: Database) throws {
        try db.execute(
            sql: """
                -- A ledger entry is identified by its ledger, id and origin (the node in its
                -- timestamp): no node can take over another's entry by reusing its id.
                CREATE TABLE ledger_entry_v5 (
                    ledger TEXT NOT NULL,
                    entry_id TEXT NOT NULL,
                    origin BLOB NOT NULL,
                    ts BLOB NOT NULL,
                    fields TEXT NOT NULL,
                    PRIMARY KEY (ledger, entry_id, origin)
                ) WITHOUT ROWID;
                INSERT INTO ledger_entry_v5 SELECT ledger, entry_id, substr(ts, 9, 16), ts, fields FROM ledger_entry;
                -- Another origin's entry under a taken id was that origin's own entry, not a duplicate.
                INSERT OR IGNORE INTO ledger_entry_v5 SELECT ledger, entry_id, substr(ts, 9, 16), ts, fields FROM ledger_duplicate ORDER BY ts;
                DELETE FROM ledger_duplicate WHERE EXISTS (
                    SELECT 1 FROM ledger_entry_v5 e WHERE e.ledger = ledger_duplicate.ledger AND e.entry_id = ledger_duplicate.entry_id
                    AND e.ts = ledger_duplicate.ts);
                DROP TABLE ledger_entry;
                ALTER TABLE ledger_entry_v5 RENAME TO ledger_entry;

                -- Which node handed this node a held transaction: each sender's share is bounded.
                ALTER TABLE held ADD COLUMN via BLOB;

                -- Signed requests seen recently (node + nonce), kept across a restart of `serve`
                -- so that a captured request cannot be replayed to the restarted server.
                CREATE TABLE seen_request (key TEXT PRIMARY KEY NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
                """)
        // A version 2 node believed refusal statements: they left log rows with no bytes, and
        // the vector past them. Those rows, and everything of their origin after them, go;
        // the vector goes back, so the signed originals are asked for again; the records are
        // rebuilt from what remains (on the next open, by the store).
        let believed = try Row.fetchAll(db, sql: "SELECT origin, min(seq) AS seq FROM log WHERE length(body) = 0 GROUP BY origin")
        for row in believed {
            let ix: Int64 = row["origin"]
            let seq: Int64 = row["seq"]
            try db.execute(sql: "DELETE FROM log WHERE origin = ? AND seq >= ?", arguments: [ix, seq])
            try db.execute(
                sql: "UPDATE vector SET seq = ? WHERE origin = (SELECT id FROM node WHERE ix = ?)", arguments: [seq - 1, ix])
        }
        if !believed.isEmpty { try Meta.set(db, .rematerialise, 1) }
    }
}
