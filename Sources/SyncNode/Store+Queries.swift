import Foundation
import GRDB
import SyncProtocol

/// A record as a reader sees it: the winning value of each field.
public struct RecordView: Sendable, Equatable {
    public var collection: String
    public var recordID: String
    /// Winning values, without the reserved `_deleted` field.
    public var fields: [String: Value]
    public var deleted: Bool
    /// Timestamp of the newest winning write.
    public var updated: Timestamp
    /// Fields with unresolved concurrent versions.
    public var conflictedFields: [String]
}

/// One version of one field, for the history of a record.
public struct HistoryEntry: Sendable, Equatable {
    public var field: String
    public var value: Value
    public var ts: Timestamp
    public var seq: UInt64
    /// Whether this version is the field's current value.
    public var isCurrent: Bool
    /// Whether no later version replaced this one knowingly (current, or in conflict).
    public var isHead: Bool
}

/// A field with concurrent versions: the winner and one version that lost without being seen.
public struct ConflictItem: Sendable, Equatable, Hashable {
    public var collection: String
    public var recordID: String
    public var field: String
    public var winnerValue: Value
    public var winnerTs: Timestamp
    public var otherValue: Value
    public var otherTs: Timestamp
}

/// One ledger entry as stored.
public struct LedgerRow: Sendable, Equatable {
    public var ledger: String
    public var entryID: String
    public var ts: Timestamp
    public var fields: [String: Value]
    /// The entries that reverse this one.
    public var reversedBy: [String]
}

/// Counts that describe a node's replica.
public struct StoreSummary: Sendable, Equatable {
    public var vector: VersionVector
    public var transactions: Int
    public var records: Int
    public var conflicts: Int
    public var ledgerEntries: Int
    public var ledgerDuplicates: Int
    public var clock: Timestamp
}

extension Store {
    func read<T>(_ body: (Database) throws -> T) throws(SyncNodeError) -> T {
        try StorageErrors.map { try pool.read(body) }
    }

    /// The version vector: the highest seq held for each origin.
    public func vector() throws(SyncNodeError) -> VersionVector {
        try read { db in
            var entries: [NodeID: UInt64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT origin, seq FROM vector") {
                if let id = NodeID(bytes: row["origin"] as Data) { entries[id] = UInt64(row["seq"] as Int64) }
            }
            return VersionVector(entries)
        }
    }

    /// One record, or nil if it never existed. Deleted records are returned with `deleted` set.
    public func record(_ collection: String, _ recordID: String) throws(SyncNodeError) -> RecordView? {
        try read { db in
            let winners = try winningVersions(db, collection: collection, recordID: recordID)
            return try view(db, collection, recordID, winners)
        }
    }

    /// Records of a collection ordered by id; deleted ones only when asked.
    public func records(_ collection: String, includeDeleted: Bool = false) throws(SyncNodeError) -> [RecordView] {
        try read { db in
            var grouped: [(String, [String: FieldVersion])] = []
            let rows = try Row.fetchCursor(
                db, sql: "SELECT record_id, field, value, ts FROM field_state WHERE collection = ? ORDER BY record_id", arguments: [collection])
            while let row = try rows.next() {
                let id: String = row["record_id"]
                let version = FieldVersion(ts: Timestamp(bytes: row["ts"] as Data)!, base: nil, value: Value(row["value"]))
                if grouped.last?.0 == id {
                    grouped[grouped.count - 1].1[row["field"]] = version
                } else {
                    grouped.append((id, [row["field"]: version]))
                }
            }
            return try grouped.compactMap { id, winners in
                guard let v = try view(db, collection, id, winners), includeDeleted || !v.deleted else { return nil }
                return v
            }
        }
    }

    /// Names of all collections that hold records.
    public func collections() throws(SyncNodeError) -> [String] {
        try read { db in try String.fetchAll(db, sql: "SELECT DISTINCT collection FROM field_state ORDER BY collection") }
    }

    private func view(_ db: Database, _ collection: String, _ recordID: String, _ winners: [String: FieldVersion]) throws -> RecordView? {
        guard let updated = winners.values.map(\.ts).max() else { return nil }
        var fields = winners.mapValues(\.value)
        fields[Names.deletedField] = nil
        let conflicted = try String.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT DISTINCT v.field FROM field_version v JOIN field_state s USING (collection, record_id, field)
                    WHERE v.collection = ? AND v.record_id = ? AND v.is_head = 1 AND v.ts <> s.ts AND v.value IS NOT s.value ORDER BY v.field
                    """), arguments: [collection, recordID])
        return RecordView(
            collection: collection, recordID: recordID, fields: fields, deleted: RecordRule.isDeleted(winners: winners), updated: updated,
            conflictedFields: conflicted)
    }

    func winningVersions(_ db: Database, collection: String, recordID: String) throws -> [String: FieldVersion] {
        var out: [String: FieldVersion] = [:]
        let rows = try Row.fetchCursor(
            db.cachedStatement(sql: "SELECT field, value, ts FROM field_state WHERE collection = ? AND record_id = ?"),
            arguments: [collection, recordID])
        while let row = try rows.next() {
            out[row["field"]] = FieldVersion(ts: Timestamp(bytes: row["ts"] as Data)!, base: nil, value: Value(row["value"]))
        }
        return out
    }

    func headVersions(_ db: Database, collection: String, recordID: String, field: String) throws -> [FieldVersion] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: "SELECT ts, value FROM field_version WHERE collection = ? AND record_id = ? AND field = ? AND is_head = 1 ORDER BY ts"),
            arguments: [collection, recordID, field]
        ).map { FieldVersion(ts: Timestamp(bytes: $0["ts"] as Data)!, base: nil, value: Value($0["value"])) }
    }

    /// Every version of every field of a record, oldest first.
    public func history(_ collection: String, _ recordID: String) throws(SyncNodeError) -> [HistoryEntry] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT v.field, v.value, v.ts, v.seq, v.is_head, v.ts = s.ts AS current
                    FROM field_version v JOIN field_state s USING (collection, record_id, field)
                    WHERE v.collection = ? AND v.record_id = ? ORDER BY v.ts, v.field
                    """, arguments: [collection, recordID]
            ).map { row in
                HistoryEntry(
                    field: row["field"], value: Value(row["value"]), ts: Timestamp(bytes: row["ts"] as Data)!,
                    seq: UInt64(row["seq"] as Int64), isCurrent: row["current"], isHead: row["is_head"])
            }
        }
    }

    /// Every unresolved conflict, ordered by collection, record, field and the losing timestamp.
    public func conflicts() throws(SyncNodeError) -> [ConflictItem] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT v.collection, v.record_id, v.field, v.value AS other_value, v.ts AS other_ts, s.value AS winner_value, s.ts AS winner_ts
                    FROM field_version v JOIN field_state s USING (collection, record_id, field)
                    WHERE v.is_head = 1 AND v.ts <> s.ts AND v.value IS NOT s.value
                    ORDER BY v.collection, v.record_id, v.field, v.ts
                    """
            ).map { row in
                ConflictItem(
                    collection: row["collection"], recordID: row["record_id"], field: row["field"], winnerValue: Value(row["winner_value"]),
                    winnerTs: Timestamp(bytes: row["winner_ts"] as Data)!, otherValue: Value(row["other_value"]),
                    otherTs: Timestamp(bytes: row["other_ts"] as Data)!)
            }
        }
    }

    /// The entries of a ledger, oldest first.
    public func ledger(_ name: String) throws(SyncNodeError) -> [LedgerRow] {
        try read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT entry_id, ts, fields FROM ledger_entry WHERE ledger = ? ORDER BY ts, entry_id", arguments: [name])
            var entries = rows.map { row in
                LedgerRow(
                    ledger: name, entryID: row["entry_id"], ts: Timestamp(bytes: row["ts"] as Data)!, fields: LedgerJSON.decode(row["fields"]),
                    reversedBy: [])
            }
            let index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.entryID, $0) })
            for entry in entries {
                if case .text(let target)? = entry.fields[Names.reversesField], let i = index[target] {
                    entries[i].reversedBy.append(entry.entryID)
                }
            }
            return entries
        }
    }

    /// Names of all ledgers.
    public func ledgers() throws(SyncNodeError) -> [String] {
        try read { db in try String.fetchAll(db, sql: "SELECT DISTINCT ledger FROM ledger_entry ORDER BY ledger") }
    }

    /// Entries that reused an id already taken in their ledger (kept for review, never counted).
    public func ledgerDuplicates() throws(SyncNodeError) -> [LedgerRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT ledger, entry_id, ts, fields FROM ledger_duplicate ORDER BY ledger, entry_id, ts").map { row in
                LedgerRow(
                    ledger: row["ledger"], entryID: row["entry_id"], ts: Timestamp(bytes: row["ts"] as Data)!,
                    fields: LedgerJSON.decode(row["fields"]), reversedBy: [])
            }
        }
    }

    /// Counts describing the replica.
    public func summary() throws(SyncNodeError) -> StoreSummary {
        let vector = try vector()
        return try read { db in
            StoreSummary(
                vector: vector,
                transactions: try Int.fetchOne(db, sql: "SELECT count(*) FROM log") ?? 0,
                records: try Int.fetchOne(db, sql: "SELECT count(*) FROM (SELECT DISTINCT collection, record_id FROM field_state)") ?? 0,
                conflicts: try Int.fetchOne(
                    db,
                    sql:
                        "SELECT count(*) FROM field_version v JOIN field_state s USING (collection, record_id, field) WHERE v.is_head = 1 AND v.ts <> s.ts AND v.value IS NOT s.value"
                ) ?? 0,
                ledgerEntries: try Int.fetchOne(db, sql: "SELECT count(*) FROM ledger_entry") ?? 0,
                ledgerDuplicates: try Int.fetchOne(db, sql: "SELECT count(*) FROM ledger_duplicate") ?? 0,
                clock: try loadClock(db).current)
        }
    }

    /// A canonical text of the whole replicated state (every field version, every winner, every
    /// ledger entry and duplicate, the vector). Two replicas that converged give identical text.
    public func stateDigest() throws(SyncNodeError) -> String {
        try read { db in
            var lines: [String] = []
            for row in try Row.fetchAll(
                db, sql: "SELECT collection, record_id, field, ts, value, is_head FROM field_version ORDER BY collection, record_id, field, ts")
            {
                lines.append(
                    "v \(row["collection"] as String)/\(row["record_id"] as String).\(row["field"] as String) \(Timestamp(bytes: row["ts"] as Data)!) \(Value(row["value"])) head=\(row["is_head"] as Bool)"
                )
            }
            for row in try Row.fetchAll(
                db, sql: "SELECT collection, record_id, field, ts, value FROM field_state ORDER BY collection, record_id, field")
            {
                lines.append(
                    "s \(row["collection"] as String)/\(row["record_id"] as String).\(row["field"] as String) \(Timestamp(bytes: row["ts"] as Data)!) \(Value(row["value"]))"
                )
            }
            for row in try Row.fetchAll(db, sql: "SELECT ledger, entry_id, ts, fields FROM ledger_entry ORDER BY ledger, entry_id") {
                lines.append(
                    "l \(row["ledger"] as String)/\(row["entry_id"] as String) \(Timestamp(bytes: row["ts"] as Data)!) \(row["fields"] as String)")
            }
            for row in try Row.fetchAll(db, sql: "SELECT ledger, entry_id, ts, fields FROM ledger_duplicate ORDER BY ledger, entry_id, ts") {
                lines.append(
                    "d \(row["ledger"] as String)/\(row["entry_id"] as String) \(Timestamp(bytes: row["ts"] as Data)!) \(row["fields"] as String)")
            }
            for row in try Row.fetchAll(db, sql: "SELECT origin, seq FROM vector ORDER BY origin") {
                lines.append("n \(NodeID(bytes: row["origin"] as Data)!.hex) \(row["seq"] as Int64)")
            }
            return lines.joined(separator: "\n")
        }
    }

    /// Up to the given limits, the transactions this node holds that `vector` lacks, ordered by
    /// (origin, seq), never splitting a transaction. At least one transaction is returned when
    /// any is missing, whatever its size.
    public func transactions(missingFrom vector: VersionVector, maxTransactions: Int = .max, maxBytes: Int = .max) throws(SyncNodeError)
        -> (transactions: [ReceivedTransaction], more: Bool)
    {
        let (frames, more) = try frames(missingFrom: vector, maxTransactions: maxTransactions, maxBytes: maxBytes)
        var out: [ReceivedTransaction] = []
        out.reserveCapacity(frames.count)
        for frame in frames { out.append(try ReceivedTransaction(frame: frame)) }
        return (out, more)
    }

    /// The same as `transactions(missingFrom:)`, as the frames that carry them (see
    /// `ReceivedTransaction.frame`), straight from the log without decoding: what serving a pull,
    /// pushing and exporting a bundle need.
    public func frames(missingFrom vector: VersionVector, maxTransactions: Int = .max, maxBytes: Int = .max) throws(SyncNodeError)
        -> (frames: [[UInt8]], more: Bool)
    {
        let mine = try self.vector()
        return try read { db in
            var out: [[UInt8]] = []
            var bytes = 0
            for gap in mine.surplus(over: vector) {
                let rows = try Row.fetchCursor(
                    db.cachedStatement(sql: "SELECT seq, hlc, body, sig, refused FROM log WHERE origin = ? AND seq > ? AND seq <= ? ORDER BY seq"),
                    arguments: [Data(gap.origin.bytes), Int64(gap.after), Int64(gap.upTo)])
                while let row = try rows.next() {
                    let body = row["body"] as Data
                    if !out.isEmpty && (out.count >= maxTransactions || bytes + body.count > maxBytes) { return (out, true) }
                    if let reason = row["refused"] as String? {
                        // Refused work is not relayed: a refusal travels in its place.
                        let seq = UInt64(row["seq"] as Int64)
                        let hlc = Timestamp(bytes: row["hlc"] as Data) ?? Timestamp(millis: 0, counter: 0, node: gap.origin)
                        let by =
                            try String.fetchOne(
                                db.cachedStatement(sql: "SELECT refused_by FROM rejection WHERE origin = ? AND seq = ?"),
                                arguments: [Data(gap.origin.bytes), Int64(seq)]) ?? info.label
                        let skip = ReceivedTransaction(
                            transaction: Transaction(origin: gap.origin, seq: seq, hlc: hlc, changes: []), body: [],
                            refusal: Refusal(origin: gap.origin, seq: seq, reason: reason, refusedBy: by))
                        out.append(skip.frame)
                        continue
                    }
                    var frame = [UInt8]()
                    frame.reserveCapacity(65 + body.count)
                    frame.append(UInt8(ascii: "T"))
                    let signature = (row["sig"] as Data?) ?? Data()
                    frame += signature.count == 64 ? [UInt8](signature) : [UInt8](repeating: 0, count: 64)
                    frame += body
                    out.append(frame)
                    bytes += body.count
                }
            }
            return (out, false)
        }
    }

    /// Remembers a node's site and label, learned from a bundle or a peer.
    public func noteNode(_ id: NodeID, site: String, label: String) throws(SyncNodeError) {
        guard id != info.nodeID else { return }
        try StorageErrors.map {
            try pool.write { db in
                try db.execute(
                    sql:
                        "INSERT INTO known_node (node_id, site, label) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET site = excluded.site, label = excluded.label",
                    arguments: [Data(id.bytes), site, label])
            }
        }
    }

    /// Labels of the nodes this node knows, itself included.
    public func nodeLabels() throws(SyncNodeError) -> [NodeID: String] {
        var out = try read { db in
            var labels: [NodeID: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT node_id, label FROM known_node") {
                if let id = NodeID(bytes: row["node_id"] as Data) { labels[id] = row["label"] }
            }
            return labels
        }
        out[info.nodeID] = info.label
        return out
    }
}
