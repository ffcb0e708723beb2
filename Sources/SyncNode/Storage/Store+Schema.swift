import Foundation
import GRDB
import SyncProtocol

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
        migrator.registerMigration("v4-packed") { db in
            try db.execute(
                sql: """
                    -- Node ids and names (collections, fields) interned to small integers.
                    CREATE TABLE node (ix INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE);
                    CREATE TABLE name (ix INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);

                    -- One row per record: the live versions of its fields packed in `state`
                    -- (RecordCodec); `conflicts` counts its fields whose heads disagree.
                    CREATE TABLE record (
                        collection INTEGER NOT NULL,
                        record_id TEXT NOT NULL,
                        state BLOB NOT NULL,
                        conflicts INTEGER NOT NULL,
                        PRIMARY KEY (collection, record_id)
                    ) WITHOUT ROWID;
                    CREATE INDEX record_conflicted ON record (collection) WHERE conflicts > 0;

                    -- Versions some later version replaced: the history, written only on replacement.
                    CREATE TABLE field_history (
                        collection INTEGER NOT NULL,
                        record_id TEXT NOT NULL,
                        field INTEGER NOT NULL,
                        clock INTEGER NOT NULL,
                        node INTEGER NOT NULL,
                        seq INTEGER NOT NULL,
                        value,
                        PRIMARY KEY (collection, record_id, field, clock, node)
                    ) WITHOUT ROWID;

                    -- Versions named as replaced (base or resolved) before they arrived.
                    CREATE TABLE dangling_ref (
                        collection INTEGER NOT NULL,
                        record_id TEXT NOT NULL,
                        field INTEGER NOT NULL,
                        clock INTEGER NOT NULL,
                        node INTEGER NOT NULL,
                        PRIMARY KEY (collection, record_id, field, clock, node)
                    ) WITHOUT ROWID;

                    -- The change log: each transaction's exact bytes (deflated when `size` is set:
                    -- the length they inflate to), its signature, and the refusal reason if refused.
                    CREATE TABLE log_v4 (
                        origin INTEGER NOT NULL,
                        seq INTEGER NOT NULL,
                        hlc INTEGER NOT NULL,
                        body BLOB NOT NULL,
                        size INTEGER,
                        sig BLOB,
                        refused TEXT,
                        received INTEGER NOT NULL,
                        PRIMARY KEY (origin, seq)
                    ) WITHOUT ROWID;
                    """)
            try migrateToPacked(db)
            try db.execute(
                sql: """
                    DROP TABLE log;
                    ALTER TABLE log_v4 RENAME TO log;
                    DROP TABLE field_version;
                    DROP TABLE field_state;
                    DROP TABLE field_ref;
                    """)
        }
        migrator.registerMigration("v5-integrity") { db in
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
        migrator.registerMigration("v6-ledger-money") { db in
            // HQ's merged view sums money per county and year, and per project, over up to
            // millions of entries. `ledger_money` is a typed projection of every entry that
            // carries `amount_fen` and is not a reversal: kept by triggers in the same SQLite
            // transaction as every write of `ledger_entry` (apply, duplicates, rebuilds), so a
            // report reads narrow indexed rows, never the entries' JSON (`Store.ledgerTotals`).
            let (county, year, project, amount, counted) = MoneyProjection.columns
            let insert = """
                INSERT OR REPLACE INTO ledger_money (ledger, entry_id, origin, county, year, project, amount_fen)
                SELECT NEW.ledger, NEW.entry_id, NEW.origin, \(county), \(year), \(project), \(amount) WHERE \(counted);
                """
            let delete = "DELETE FROM ledger_money WHERE ledger = OLD.ledger AND entry_id = OLD.entry_id AND origin = OLD.origin;"
            try db.execute(
                sql: """
                    CREATE TABLE ledger_money (
                        ledger TEXT NOT NULL, entry_id TEXT NOT NULL, origin BLOB NOT NULL,
                        county TEXT, year INTEGER, project TEXT, amount_fen INTEGER NOT NULL,
                        PRIMARY KEY (ledger, entry_id, origin)
                    ) WITHOUT ROWID;
                    CREATE INDEX ledger_money_county_year ON ledger_money (ledger, county, year, amount_fen);
                    CREATE INDEX ledger_money_project ON ledger_money (ledger, project, amount_fen) WHERE project IS NOT NULL;
                    CREATE TRIGGER ledger_money_insert AFTER INSERT ON ledger_entry BEGIN \(insert) END;
                    -- Who made each transaction at its origin (`Change.author`), by its clock.
                    CREATE TABLE tx_author (node BLOB NOT NULL, clock INTEGER NOT NULL, name TEXT NOT NULL, PRIMARY KEY (node, clock)) WITHOUT ROWID;
                    CREATE TRIGGER ledger_money_update AFTER UPDATE ON ledger_entry BEGIN \(delete) \(insert) END;
                    CREATE TRIGGER ledger_money_delete AFTER DELETE ON ledger_entry BEGIN \(delete) END;
                    """)
            try db.execute(
                sql: """
                    INSERT INTO ledger_money (ledger, entry_id, origin, county, year, project, amount_fen)
                    SELECT ledger, entry_id, origin, \(county), \(year), \(project), \(amount) FROM ledger_entry AS NEW WHERE \(counted)
                    """)
        }
        migrator.registerMigration("v7-contact") { db in
            // What a serving node learns from each authenticated request: when the caller was
            // last heard from, how far its clock was from this one, the protocol it spoke, and
            // how many transactions of its own it held then (its own entry of the vector it sent).
            // Local to the serving node, never replicated: HQ's sync report and `node list`.
            try db.execute(
                sql: """
                    CREATE TABLE contact (
                        node BLOB PRIMARY KEY NOT NULL, heard INTEGER NOT NULL, skew INTEGER NOT NULL,
                        protocol INTEGER NOT NULL, own_seq INTEGER
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v8-web") { db in
            // The people who may use this node's web pages, and their sessions (a session is
            // found by the SHA-256 of its cookie's token). Local to the node, never replicated.
            try db.execute(
                sql: """
                    CREATE TABLE web_user (name TEXT PRIMARY KEY NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL, created INTEGER NOT NULL) WITHOUT ROWID;
                    CREATE TABLE web_session (token TEXT PRIMARY KEY NOT NULL, user TEXT NOT NULL, csrf TEXT NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID;
                    CREATE INDEX web_session_user ON web_session (user);
                    """)
        }
        migrator.registerMigration("v9-report-index") { db in
            // HQ's dashboard shows every report at once over up to millions of entries; what
            // the reports would otherwise recompute per view is kept here, in the same SQLite
            // transaction as the writes it follows (docs/PERFORMANCE.md, P10):
            // - money totals per ledger, county and year, and per ledger and project, kept from
            //   `ledger_money` (a row's amount is added when it is inserted, taken off when it is
            //   deleted; the insert trigger of `ledger_money` now deletes before it inserts, so
            //   no row is ever replaced unseen);
            // - the reversals of a ledger, through a partial index;
            // - the entries and records the plan's review must look at (`ReviewIndex`: its
            //   triggers depend on the plan and are made by the store, not here).
            let (county, year, project, amount, counted) = MoneyProjection.columns
            let byCountyYear = "typeof(NEW.county) = 'text' AND NEW.year IS NOT NULL"
            let byProject = "typeof(NEW.project) = 'text'"
            try db.execute(
                sql: """
                    DROP TRIGGER ledger_money_insert;
                    CREATE TRIGGER ledger_money_insert AFTER INSERT ON ledger_entry BEGIN
                        DELETE FROM ledger_money WHERE ledger = NEW.ledger AND entry_id = NEW.entry_id AND origin = NEW.origin;
                        INSERT INTO ledger_money (ledger, entry_id, origin, county, year, project, amount_fen)
                        SELECT NEW.ledger, NEW.entry_id, NEW.origin, \(county), \(year), \(project), \(amount) WHERE \(counted);
                    END;

                    CREATE TABLE ledger_money_total (
                        ledger TEXT NOT NULL, county TEXT NOT NULL, year INTEGER NOT NULL, total INTEGER NOT NULL,
                        PRIMARY KEY (ledger, county, year)
                    ) WITHOUT ROWID;
                    CREATE TABLE ledger_project_total (
                        ledger TEXT NOT NULL, project TEXT NOT NULL, total INTEGER NOT NULL, PRIMARY KEY (ledger, project)
                    ) WITHOUT ROWID;
                    INSERT INTO ledger_money_total SELECT ledger, county, year, sum(amount_fen) FROM ledger_money AS NEW
                        WHERE \(byCountyYear) GROUP BY ledger, county, year;
                    INSERT INTO ledger_project_total SELECT ledger, project, sum(amount_fen) FROM ledger_money AS NEW
                        WHERE \(byProject) GROUP BY ledger, project;
                    CREATE TRIGGER ledger_money_total_insert AFTER INSERT ON ledger_money BEGIN
                        INSERT INTO ledger_money_total SELECT NEW.ledger, NEW.county, NEW.year, NEW.amount_fen WHERE \(byCountyYear)
                            ON CONFLICT DO UPDATE SET total = total + excluded.total;
                        INSERT INTO ledger_project_total SELECT NEW.ledger, NEW.project, NEW.amount_fen WHERE \(byProject)
                            ON CONFLICT DO UPDATE SET total = total + excluded.total;
                    END;
                    CREATE TRIGGER ledger_money_total_delete AFTER DELETE ON ledger_money BEGIN
                        UPDATE ledger_money_total SET total = total - OLD.amount_fen
                            WHERE ledger = OLD.ledger AND county = OLD.county AND year = OLD.year AND typeof(OLD.county) = 'text';
                        UPDATE ledger_project_total SET total = total - OLD.amount_fen
                            WHERE ledger = OLD.ledger AND project = OLD.project AND typeof(OLD.project) = 'text';
                    END;

                    CREATE INDEX ledger_entry_reversal ON ledger_entry (ledger) WHERE json_extract(fields, '$._reverses') IS NOT NULL;

                    -- Entries the plan's SQL conditions do not clear, and records changed since the
                    -- review last checked them, with the problems found in those it checked.
                    CREATE TABLE ledger_unfit (
                        ledger TEXT NOT NULL, entry_id TEXT NOT NULL, origin BLOB NOT NULL, PRIMARY KEY (ledger, entry_id, origin)
                    ) WITHOUT ROWID;
                    CREATE TRIGGER ledger_unfit_delete AFTER DELETE ON ledger_entry BEGIN
                        DELETE FROM ledger_unfit WHERE ledger = OLD.ledger AND entry_id = OLD.entry_id AND origin = OLD.origin;
                    END;
                    CREATE TABLE record_dirty (collection INTEGER NOT NULL, record_id TEXT NOT NULL, PRIMARY KEY (collection, record_id)) WITHOUT ROWID;
                    CREATE TABLE record_problem (
                        kind INTEGER NOT NULL, collection INTEGER NOT NULL, record_id TEXT NOT NULL, problems TEXT NOT NULL,
                        PRIMARY KEY (kind, record_id, collection)
                    ) WITHOUT ROWID;
                    CREATE INDEX record_problem_record ON record_problem (collection, record_id);
                    """)
        }
        migrator.registerMigration("v10-money-model") { db in
            // The money model (`MoneyModel`): an entry counts against its budget year
            // (`budget_year`, else `year`, else its date's year), and no counted amount is left
            // out of every total: an entry of no county or no year is kept under '' and 0, which
            // the funds report shows as rows of their own. Project totals are kept per county and
            // payment stage too (the review's cross-checks: money booked to another county than
            // its project's, a payment stage the project has not reached). A sum beyond 64 bits
            // becomes REAL in SQLite; the reader then sums that group's rows exactly in Swift.
            try db.execute(
                sql: """
                    DROP TRIGGER ledger_money_insert;
                    DROP TRIGGER ledger_money_update;
                    DROP TRIGGER ledger_money_total_insert;
                    DROP TRIGGER ledger_money_total_delete;
                    DROP TABLE ledger_money_total;
                    DROP TABLE ledger_project_total;
                    DELETE FROM ledger_money;
                    ALTER TABLE ledger_money ADD COLUMN stage TEXT;
                    ALTER TABLE ledger_money ADD COLUMN ts BLOB;
                    -- A county-year's latest entry (a target: the latest setting wins) by one seek.
                    CREATE INDEX ledger_money_latest ON ledger_money (ledger, county, year, ts);
                    DROP INDEX ledger_money_project;
                    CREATE INDEX ledger_money_project ON ledger_money (ledger, project, county, stage, amount_fen) WHERE project IS NOT NULL;

                    CREATE TABLE ledger_money_total (
                        ledger TEXT NOT NULL, county TEXT NOT NULL, year INTEGER NOT NULL, total NOT NULL,
                        PRIMARY KEY (ledger, county, year)
                    ) WITHOUT ROWID;
                    CREATE TABLE ledger_project_total (
                        ledger TEXT NOT NULL, project TEXT NOT NULL, county TEXT NOT NULL, stage TEXT NOT NULL, total NOT NULL,
                        PRIMARY KEY (ledger, project, county, stage)
                    ) WITHOUT ROWID;
                    CREATE TRIGGER ledger_money_total_insert AFTER INSERT ON ledger_money BEGIN
                        INSERT INTO ledger_money_total VALUES (NEW.ledger, coalesce(NEW.county, ''), coalesce(NEW.year, 0), NEW.amount_fen)
                            ON CONFLICT DO UPDATE SET total = total + excluded.total;
                        INSERT INTO ledger_project_total
                            SELECT NEW.ledger, NEW.project, coalesce(NEW.county, ''), coalesce(NEW.stage, ''), NEW.amount_fen WHERE NEW.project IS NOT NULL
                            ON CONFLICT DO UPDATE SET total = total + excluded.total;
                    END;
                    CREATE TRIGGER ledger_money_total_delete AFTER DELETE ON ledger_money BEGIN
                        UPDATE ledger_money_total SET total = total - OLD.amount_fen
                            WHERE ledger = OLD.ledger AND county = coalesce(OLD.county, '') AND year = coalesce(OLD.year, 0);
                        UPDATE ledger_project_total SET total = total - OLD.amount_fen
                            WHERE ledger = OLD.ledger AND project = OLD.project AND county = coalesce(OLD.county, '') AND stage = coalesce(OLD.stage, '');
                    END;
                    CREATE TRIGGER ledger_money_insert AFTER INSERT ON ledger_entry BEGIN
                        DELETE FROM ledger_money WHERE ledger = NEW.ledger AND entry_id = NEW.entry_id AND origin = NEW.origin;
                        \(MoneySQL.insert("NEW"))
                    END;
                    CREATE TRIGGER ledger_money_update AFTER UPDATE ON ledger_entry BEGIN
                        DELETE FROM ledger_money WHERE ledger = OLD.ledger AND entry_id = OLD.entry_id AND origin = OLD.origin;
                        \(MoneySQL.insert("NEW"))
                    END;
                    """)
            try db.execute(sql: MoneySQL.insert("e", from: "FROM ledger_entry AS e"))
        }
        migrator.registerMigration("v11-forks") { db in
            // Each log row carries its origin's history up to it (`HistoryChain`), so that two
            // replicas holding different signed transactions under one (origin, seq) find out
            // when they meet; `fork_copy` keeps the copies that were not kept, as evidence.
            try db.execute(
                sql: """
                    ALTER TABLE log ADD COLUMN chain BLOB;
                    CREATE TABLE fork_copy (
                        origin BLOB NOT NULL,
                        seq INTEGER NOT NULL,
                        sig BLOB NOT NULL,
                        body BLOB NOT NULL,
                        hlc INTEGER NOT NULL,
                        source TEXT NOT NULL,
                        seen INTEGER NOT NULL,
                        withdrawn INTEGER NOT NULL,
                        reported INTEGER NOT NULL DEFAULT 0,
                        PRIMARY KEY (origin, seq, sig)
                    ) WITHOUT ROWID;
                    """)
            var previous: (origin: Int64, seq: Int64, chain: Data)?
            let rows = try Row.fetchAll(db, sql: "SELECT origin, seq, sig, refused FROM log ORDER BY origin, seq")
            for row in rows {
                let origin: Int64 = row["origin"]
                let seq: Int64 = row["seq"]
                let before = previous.flatMap { $0.origin == origin && $0.seq == seq - 1 ? $0.chain : nil }
                let chain = HistoryChain.link(before, signature: [UInt8]((row["sig"] as Data?) ?? Data()), refused: row["refused"] as String? != nil)
                try db.execute(sql: "UPDATE log SET chain = ? WHERE origin = ? AND seq = ?", arguments: [chain, origin, seq])
                previous = (origin, seq, chain)
            }
        }
        migrator.registerMigration("v12-held-index") { db in
            // Held work is counted per sender (each sender's share of the bound), listed and
            // dropped by sender, and dropped by age: one seek each instead of a scan of `held`.
            try db.execute(
                sql: """
                    CREATE INDEX held_via ON held (via, origin);
                    CREATE INDEX held_received ON held (received);
                    """)
        }
        return migrator
    }

    /// The columns of `ledger_money` as SQL over the entry `NEW` (its JSON `fields`), and when
    /// an entry is projected at all: migrations v6 and v9 (as they were then; kept so that they
    /// run as they ran).
    enum MoneyProjection {
        static let amount = "json_extract(NEW.fields, '$.amount_fen')"
        static let columns = (
            county: "json_extract(NEW.fields, '$.county')",
            year: "CAST(coalesce(json_extract(NEW.fields, '$.year'), substr(json_extract(NEW.fields, '$.date'), 1, 4)) AS INTEGER)",
            project: "json_extract(NEW.fields, '$.project')", amount: amount,
            counted: "json_extract(NEW.fields, '$._reverses') IS NULL AND typeof(\(amount)) = 'integer'"
        )
    }

    /// `MoneyModel.placement` written in SQL over an entry's JSON `fields` (`column`): the
    /// projection `ledger_money` (v10) keeps for every entry that counts. The rule is the Swift
    /// one; `MoneyModelTests` holds this to it over random entries (each field absent, null, of
    /// the wrong type, malformed or sound).
    enum MoneySQL {
        static func text(_ column: String, _ name: String) -> String {
            "CASE WHEN json_type(\(column), '$.\(name)') = 'text' THEN json_extract(\(column), '$.\(name)') END"
        }

        /// `MoneyModel.budgetYear`: `budget_year`, else `year`, else the date's first four digits.
        static func year(_ column: String) -> String {
            var cases: [String] = []
            for name in ["budget_year", "year"] {
                let type = "json_type(\(column), '$.\(name)')"
                let value = "json_extract(\(column), '$.\(name)')"
                cases.append("WHEN \(type) = 'integer' THEN \(value)")
                cases.append("WHEN \(type) = 'text' THEN (CASE WHEN \(value) GLOB '[0-9][0-9][0-9][0-9]' THEN CAST(\(value) AS INTEGER) END)")
                cases.append("WHEN \(type) <> 'null' THEN NULL")
            }
            let prefix = "substr(json_extract(\(column), '$.date'), 1, 4)"
            cases.append("WHEN json_type(\(column), '$.date') = 'text' AND \(prefix) GLOB '[0-9][0-9][0-9][0-9]' THEN CAST(\(prefix) AS INTEGER)")
            return "(CASE \(cases.joined(separator: " ")) END)"
        }

        /// `MoneyModel.isReversal` negated (the form the partial index of reversals is made with).
        static func notReversal(_ column: String) -> String { "json_extract(\(column), '$._reverses') IS NULL" }

        /// `MoneyModel.placement` is not nil.
        static func counted(_ column: String) -> String {
            "\(notReversal(column)) AND json_type(\(column), '$.amount_fen') = 'integer'"
        }

        /// Projects the entries `row` of `from` (`NEW`, in a trigger) that count.
        static func insert(_ row: String, from: String = "") -> String {
            let fields = "\(row).fields"
            return """
                INSERT INTO ledger_money (ledger, entry_id, origin, county, year, project, stage, amount_fen, ts)
                SELECT \(row).ledger, \(row).entry_id, \(row).origin, \(text(fields, "county")), \(year(fields)),
                    \(text(fields, "project")), \(text(fields, "stage")), json_extract(\(fields), '$.amount_fen'), \(row).ts
                \(from) WHERE \(counted(fields));
                """
        }
    }

    /// Moves a v3 node's data into the v4 layout: the log re-keyed and deflated, every field's
    /// versions split into live ones (packed per record) and replaced ones (history).
    private static func migrateToPacked(_ db: Database) throws {
        var interner = Interner(nil)
        let deflater = Deflate()
        let logRows = try Row.fetchCursor(db, sql: "SELECT origin, seq, hlc, body, received, sig, refused FROM log ORDER BY origin, seq")
        while let row = try logRows.next() {
            guard let origin = NodeID(bytes: row["origin"] as Data), let hlc = Timestamp(bytes: row["hlc"] as Data) else {
                throw SyncNodeError(.databaseCorrupt, "the log holds a transaction with a malformed origin or clock; the node cannot be upgraded")
            }
            let body = [UInt8](row["body"] as Data)
            let packed = deflater.pack(body)
            try db.cachedStatement(sql: "INSERT INTO log_v4 (origin, seq, hlc, body, size, sig, refused, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .execute(
                    arguments: [
                        try interner.nodeIx(origin, db), row["seq"] as Int64, Int64(bitPattern: hlc.clock), Data(packed ?? body),
                        packed.map { _ in body.count }, row["sig"] as Data?, row["refused"] as String?, row["received"] as Int64,
                    ])
        }

        // Replaced timestamps whose version is not held: they stay dangling references.
        var dangling = Set<[ExactText]>()
        for row in try Row.fetchAll(
            db,
            sql: """
                SELECT r.collection, r.record_id, r.field, r.ts FROM field_ref r
                WHERE NOT EXISTS (SELECT 1 FROM field_version v
                    WHERE v.collection = r.collection AND v.record_id = r.record_id AND v.field = r.field AND v.ts = r.ts)
                """)
        {
            guard let ts = Timestamp(bytes: row["ts"] as Data) else { continue }
            let collection = try interner.nameIx(row["collection"], db)!
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO dangling_ref (collection, record_id, field, clock, node) VALUES (?, ?, ?, ?, ?)")
                .execute(
                    arguments: [
                        collection, row["record_id"] as String, try interner.nameIx(row["field"], db)!, Int64(bitPattern: ts.clock),
                        try interner.nodeIx(ts.node, db)!,
                    ])
            dangling.insert([ExactText(row["collection"]), ExactText(row["record_id"])])
        }

        var current: (collection: String, recordID: String)?
        var record = StoredRecord()
        func flush() throws {
            guard let (collection, recordID) = current else { return }
            let collectionIx = try interner.nameIx(collection, db)!
            for (field, versions) in record.fields {
                let (live, retired) = MergeRule.settle(versions)
                for v in retired {
                    try db.cachedStatement(
                        sql: "INSERT INTO field_history (collection, record_id, field, clock, node, seq, value) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    ).execute(
                        arguments: [
                            collectionIx, recordID, field, Int64(bitPattern: v.ts.clock), try interner.nodeIx(v.ts.node, db)!, Int64(v.seq),
                            v.value.databaseValue,
                        ])
                }
                record.fields[field] = live
            }
            record.hasDanglingRefs = dangling.contains([ExactText(collection), ExactText(recordID)])
            try db.cachedStatement(sql: "INSERT INTO record (collection, record_id, state, conflicts) VALUES (?, ?, ?, ?)").execute(
                arguments: [collectionIx, recordID, Data(try RecordCodec.encode(record, &interner, db)), record.conflictCount])
            record = StoredRecord()
        }
        let versions = try Row.fetchCursor(
            db, sql: "SELECT collection, record_id, field, ts, value, seq, is_head FROM field_version ORDER BY collection, record_id, field, ts")
        while let row = try versions.next() {
            let key = (collection: row["collection"] as String, recordID: row["record_id"] as String)
            if current.map({ !$0.collection.sameBytes(as: key.collection) || !$0.recordID.sameBytes(as: key.recordID) }) ?? true {
                try flush()
                current = key
            }
            guard let ts = Timestamp(bytes: row["ts"] as Data) else {
                throw SyncNodeError(.databaseCorrupt, "a field version has a malformed timestamp; the node cannot be upgraded")
            }
            let field = try interner.nameIx(row["field"], db)!
            record.fields[field, default: []].append(
                LiveVersion(ts: ts, seq: UInt64(row["seq"] as Int64), value: Value(row["value"]), isHead: row["is_head"]))
        }
        try flush()
    }
}
