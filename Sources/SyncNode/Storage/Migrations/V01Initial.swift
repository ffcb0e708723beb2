import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Migration `v1`.
    static func migrateV01Initial(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;

                -- The change log: every transaction held, exactly as it was encoded by its origin.
                CREATE TABLE log (
                    origin BLOB NOT NULL,
                    seq INTEGER NOT NULL,
                    hlc BLOB NOT NULL,
                    body BLOB NOT NULL,
                    received INTEGER NOT NULL,
                    PRIMARY KEY (origin, seq)
                ) WITHOUT ROWID;

                -- Highest seq held per origin (gap-free).
                CREATE TABLE vector (origin BLOB PRIMARY KEY NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID;

                -- The winning value of every field: what readers and reports query.
                CREATE TABLE field_state (
                    collection TEXT NOT NULL,
                    record_id TEXT NOT NULL,
                    field TEXT NOT NULL,
                    value,
                    ts BLOB NOT NULL,
                    PRIMARY KEY (collection, record_id, field)
                ) WITHOUT ROWID;

                -- Every version of every field: the history, and the input of the conflict rule.
                CREATE TABLE field_version (
                    collection TEXT NOT NULL,
                    record_id TEXT NOT NULL,
                    field TEXT NOT NULL,
                    ts BLOB NOT NULL,
                    base BLOB,
                    resolves BLOB,
                    value,
                    seq INTEGER NOT NULL,
                    is_head INTEGER NOT NULL,
                    PRIMARY KEY (collection, record_id, field, ts)
                ) WITHOUT ROWID;
                CREATE INDEX field_version_heads ON field_version (collection, record_id, field) WHERE is_head = 1;

                -- Timestamps some version replaced (as its base or by resolving): those are not heads.
                CREATE TABLE field_ref (
                    collection TEXT NOT NULL,
                    record_id TEXT NOT NULL,
                    field TEXT NOT NULL,
                    ts BLOB NOT NULL,
                    PRIMARY KEY (collection, record_id, field, ts)
                ) WITHOUT ROWID;

                -- Append-only ledgers: merge is union on (ledger, entry_id).
                CREATE TABLE ledger_entry (
                    ledger TEXT NOT NULL,
                    entry_id TEXT NOT NULL,
                    ts BLOB NOT NULL,
                    fields TEXT NOT NULL,
                    PRIMARY KEY (ledger, entry_id)
                ) WITHOUT ROWID;

                -- A second entry under an id already taken: kept for review, never counted.
                CREATE TABLE ledger_duplicate (
                    ledger TEXT NOT NULL,
                    entry_id TEXT NOT NULL,
                    ts BLOB NOT NULL,
                    fields TEXT NOT NULL,
                    PRIMARY KEY (ledger, entry_id, ts)
                ) WITHOUT ROWID;

                -- Nodes this node has heard of (from bundles and peers): for readable history.
                CREATE TABLE known_node (
                    node_id BLOB PRIMARY KEY NOT NULL,
                    site TEXT NOT NULL,
                    label TEXT NOT NULL
                ) WITHOUT ROWID;
                """)
    }
}
