import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Migration `v4-packed`.
    static func migrateV04Packed(_ db: Database) throws {
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
