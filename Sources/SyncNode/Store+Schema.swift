import GRDB

extension Store {
    /// Local schema migrations. They never produce replicated changes.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
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
        migrator.registerMigration("v2-peers") { db in
            // Local bookkeeping of remembered peers; never replicated.
            try db.execute(
                sql: """
                    CREATE TABLE peer (
                        url TEXT PRIMARY KEY NOT NULL,
                        added INTEGER NOT NULL,
                        node BLOB,
                        label TEXT,
                        last_attempt INTEGER,
                        last_success INTEGER,
                        last_error TEXT,
                        skew_ms INTEGER,
                        vector TEXT,
                        sent INTEGER NOT NULL DEFAULT 0,
                        received INTEGER NOT NULL DEFAULT 0
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v3-trust") { db in
            try db.execute(
                sql: """
                    -- The origin's Ed25519 signature, and why a transaction was refused (then it is
                    -- kept for the record and the vector, never materialised nor relayed).
                    ALTER TABLE log ADD COLUMN sig BLOB;
                    ALTER TABLE log ADD COLUMN refused TEXT;

                    -- Transactions from nodes the registry does not know yet: applied once it does.
                    CREATE TABLE held (
                        origin BLOB NOT NULL,
                        seq INTEGER NOT NULL,
                        body BLOB NOT NULL,
                        sig BLOB NOT NULL,
                        received INTEGER NOT NULL,
                        PRIMARY KEY (origin, seq)
                    ) WITHOUT ROWID;

                    -- Refusals this node made or learned of (its own work refused elsewhere).
                    CREATE TABLE rejection (
                        origin BLOB NOT NULL,
                        seq INTEGER NOT NULL,
                        reason TEXT NOT NULL,
                        refused_by TEXT NOT NULL,
                        at INTEGER NOT NULL,
                        -- 1: the transaction itself was refused; 0: a bad copy was turned away.
                        permanent INTEGER NOT NULL DEFAULT 1,
                        PRIMARY KEY (origin, seq)
                    ) WITHOUT ROWID;
                    """)
        }
        return migrator
    }
}
