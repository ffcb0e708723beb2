import Crypto
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
    /// Whether it is in conflict with the current value (`MergeRule.conflicts`: a head with
    /// another value; a concurrent write of the same value is not).
    public var isConflict = false
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
    /// The entries that reverse this one (at most one, see `LedgerRule.reversals`).
    public var reversedBy: [String]
    /// For a reversal that cancels nothing: why. Such an entry counts for nothing in totals.
    public var invalidReversal: String?

    public init(ledger: String, entryID: String, ts: Timestamp, fields: [String: Value], reversedBy: [String] = [], invalidReversal: String? = nil) {
        self.ledger = ledger
        self.entryID = entryID
        self.ts = ts
        self.fields = fields
        self.reversedBy = reversedBy
        self.invalidReversal = invalidReversal
    }

    /// The node that appended it.
    public var origin: NodeID { ts.node }
    /// Whether it counts in totals (every entry but a reversal that cancels nothing).
    public var counts: Bool { invalidReversal == nil }
    /// Whether it stands as what it records: not a reversal (`MoneyModel.isReversal`) and not
    /// cancelled by one. What activity, event and stage figures count.
    public var stands: Bool { reversedBy.isEmpty && !MoneyModel.isReversal(fields) }
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
    /// A read of the replica (a snapshot of it), with SQLite's errors in the library's terms.
    package func read<T>(_ body: (Database) throws -> T) throws(SyncNodeError) -> T {
        try StorageErrors.map { try pool.read(body) }
    }

    /// A write to tables that only this node keeps (never the log, records or ledgers, which
    /// change only through the receive path and local writes), in one SQLite transaction.
    package func writeLocal<T>(_ body: (Database) throws -> T) throws(SyncNodeError) -> T {
        try StorageErrors.map { try pool.write(body) }
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
        try readNamed { db, interner in
            guard let fields = try Self.namedRecord(db, collection: collection, recordID: recordID, &interner) else { return nil }
            return Self.view(collection, recordID, fields)
        }
    }

    /// Which of `ids` name a record of `collection` that is not deleted: one lookup per id, so
    /// the cost follows the ids asked about, not the collection's size.
    public func liveRecordIDs(_ collection: String, among ids: some Sequence<String>) throws(SyncNodeError) -> Set<String> {
        try readNamed { db, interner in
            guard let ix = try interner.nameIx(collection, db, create: false) else { return [] }
            var out = Set<String>()
            let statement = try db.cachedStatement(sql: "SELECT state FROM record WHERE collection = ? AND record_id = ?")
            for id in Set(ids) {
                guard let row = try Row.fetchOne(statement, arguments: [ix, id]) else { continue }
                let fields = try Self.named(try RecordCodec.decode(row["state"], &interner, db), db, &interner)
                if let v = Self.view(collection, id, fields), !v.deleted { out.insert(id) }
            }
            return out
        }
    }

    /// Records of a collection ordered by id; deleted ones only when asked.
    public func records(_ collection: String, includeDeleted: Bool = false) throws(SyncNodeError) -> [RecordView] {
        try readNamed { db, interner in
            guard let ix = try interner.nameIx(collection, db, create: false) else { return [] }
            var out: [RecordView] = []
            let rows = try Row.fetchCursor(
                db.cachedStatement(sql: "SELECT record_id, state FROM record WHERE collection = ? ORDER BY record_id"), arguments: [ix])
            while let row = try rows.next() {
                let fields = try Self.named(try RecordCodec.decode(row["state"], &interner, db), db, &interner)
                if let v = Self.view(collection, row["record_id"], fields), includeDeleted || !v.deleted { out.append(v) }
            }
            return out
        }
    }

    /// Records of a collection whose ids start with `prefix`, ordered by id (deleted ones too): one
    /// range of the table's index, so the cost follows what matches, not the collection's size.
    public func records(_ collection: String, idPrefix prefix: String) throws(SyncNodeError) -> [RecordView] {
        try readNamed { db, interner in
            guard let ix = try interner.nameIx(collection, db, create: false) else { return [] }
            var out: [RecordView] = []
            let rows = try Row.fetchCursor(
                db.cachedStatement(
                    sql: "SELECT record_id, state FROM record WHERE collection = ? AND record_id >= ? AND record_id < ? ORDER BY record_id"),
                arguments: [ix, prefix, prefix + "\u{10FFFF}"])
            while let row = try rows.next() {
                let fields = try Self.named(try RecordCodec.decode(row["state"], &interner, db), db, &interner)
                if let v = Self.view(collection, row["record_id"], fields) { out.append(v) }
            }
            return out
        }
    }

    /// The current values of `fields` of every live record of a collection, ordered by id: a
    /// report's lean read (no view of every field is built).
    public func currentValues(_ collection: String, fields: [String]) throws(SyncNodeError) -> [(recordID: String, values: [String: Value])] {
        try readNamed { db, interner in
            guard let ix = try interner.nameIx(collection, db, create: false) else { return [] }
            let wanted: [(Int64, String)] = try fields.compactMap { name in try interner.nameIx(name, db, create: false).map { ($0, name) } }
            let deletedIx = try interner.nameIx(Names.deletedField, db, create: false)
            var out: [(String, [String: Value])] = []
            let rows = try Row.fetchCursor(
                db.cachedStatement(sql: "SELECT record_id, state FROM record WHERE collection = ? ORDER BY record_id"), arguments: [ix])
            while let row = try rows.next() {
                let record = try RecordCodec.decode(row["state"], &interner, db)
                if let deletedIx, let deletion = record.fields[deletedIx].flatMap(MergeRule.winner),
                    RecordRule.isDeleted(
                        deletion: FieldVersion(ts: deletion.ts, base: nil, value: deletion.value),
                        otherWinners: record.fields.lazy.filter { $0.key != deletedIx }.compactMap { MergeRule.winner($0.value)?.ts })
                {
                    continue
                }
                var values: [String: Value] = [:]
                for (fieldIx, name) in wanted {
                    if let live = record.fields[fieldIx], let w = MergeRule.winner(live) { values[name] = w.value }
                }
                out.append((row["record_id"], values))
            }
            return out
        }
    }

    /// A read transaction with an interner whose findings are published afterwards (a reader sees
    /// only committed data).
    func readNamed<T>(_ body: (Database, inout Interner) throws -> T) throws(SyncNodeError) -> T {
        var interner = Interner(interns)
        let result = try StorageErrors.map { try pool.read { db in try body(db, &interner) } }
        interner.publish()
        return result
    }

    /// A record's live versions by field name, or nil if it never existed.
    static func namedRecord(_ db: Database, collection: String, recordID: String, _ interner: inout Interner) throws -> [String: [LiveVersion]]? {
        guard let ix = try interner.nameIx(collection, db, create: false) else { return nil }
        let state: Data?
        if let hot = interner.hot {
            state = try hot.state(collection: ix, recordID: recordID)
        } else {
            state = try Data.fetchOne(
                db.cachedStatement(sql: "SELECT state FROM record WHERE collection = ? AND record_id = ?"), arguments: [ix, recordID])
        }
        if interner.memo != nil { interner.memo![Interner.RecordKey(collection: ix, recordID: ExactText(recordID))] = .some(state) }
        guard let state else { return nil }
        return try named(try RecordCodec.decode(state, &interner, db), db, &interner)
    }

    static func named(_ record: StoredRecord, _ db: Database, _ interner: inout Interner) throws -> [String: [LiveVersion]] {
        var out: [String: [LiveVersion]] = [:]
        for (ix, live) in record.fields { out[try interner.name(ix, db)] = live }
        return out
    }

    static func winners(_ fields: [String: [LiveVersion]]) -> [String: FieldVersion] {
        fields.compactMapValues { live in MergeRule.winner(live).map { FieldVersion(ts: $0.ts, base: nil, value: $0.value) } }
    }

    static func view(_ collection: String, _ recordID: String, _ fields: [String: [LiveVersion]]) -> RecordView? {
        let winners = winners(fields)
        guard let updated = winners.values.map(\.ts).max() else { return nil }
        var values = winners.mapValues(\.value)
        values[Names.deletedField] = nil
        return RecordView(
            collection: collection, recordID: recordID, fields: values, deleted: RecordRule.isDeleted(winners: winners), updated: updated,
            conflictedFields: fields.filter { MergeRule.isConflicted($0.value) }.keys.sorted())
    }

    func winningVersions(_ db: Database, collection: String, recordID: String, _ interner: inout Interner) throws -> [String: FieldVersion] {
        Self.winners(try Self.namedRecord(db, collection: collection, recordID: recordID, &interner) ?? [:])
    }

    func liveVersions(_ db: Database, collection: String, recordID: String, field: String, _ interner: inout Interner) throws -> [LiveVersion] {
        try Self.namedRecord(db, collection: collection, recordID: recordID, &interner)?[field] ?? []
    }

    /// Versions of a record's fields that later versions replaced, by field name.
    private static func replacedVersions(_ db: Database, collection: Int64, recordID: String, _ interner: inout Interner) throws -> [(
        String, LiveVersion
    )] {
        var out: [(String, LiveVersion)] = []
        let rows = try Row.fetchCursor(
            db.cachedStatement(sql: "SELECT field, clock, node, seq, value FROM field_history WHERE collection = ? AND record_id = ?"),
            arguments: [collection, recordID])
        while let row = try rows.next() {
            let ts = Timestamp(clock: UInt64(bitPattern: row["clock"] as Int64), node: try interner.node(row["node"], db))
            out.append(
                (
                    try interner.name(row["field"], db),
                    LiveVersion(ts: ts, seq: UInt64(row["seq"] as Int64), value: Value(row["value"]), isHead: false)
                ))
        }
        return out
    }

    /// Every version of every field of a record, oldest first.
    public func history(_ collection: String, _ recordID: String) throws(SyncNodeError) -> [HistoryEntry] {
        try readNamed { db, interner in
            guard let ix = try interner.nameIx(collection, db, create: false),
                let state = try Data.fetchOne(
                    db.cachedStatement(sql: "SELECT state FROM record WHERE collection = ? AND record_id = ?"), arguments: [ix, recordID])
            else { return [] }
            // Fields are kept apart by number (two names may differ only in Unicode normalisation).
            var all: [HistoryEntry] = []
            for (field, live) in try RecordCodec.decode(state, &interner, db).fields {
                let name = try interner.name(field, db)
                let winner = MergeRule.winner(live)?.ts
                let conflicting = Set(MergeRule.conflicts(live).map(\.ts))
                all += live.map {
                    HistoryEntry(
                        field: name, value: $0.value, ts: $0.ts, seq: $0.seq, isCurrent: $0.ts == winner, isHead: $0.isHead,
                        isConflict: conflicting.contains($0.ts))
                }
            }
            all += try Self.replacedVersions(db, collection: ix, recordID: recordID, &interner).map { field, v in
                HistoryEntry(field: field, value: v.value, ts: v.ts, seq: v.seq, isCurrent: false, isHead: false)
            }
            return all.sorted { $0.ts == $1.ts ? $0.field.bytesPrecede($1.field) : $0.ts < $1.ts }
        }
    }

    /// Every unresolved conflict, ordered by collection, record, field and the losing timestamp.
    public func conflicts() throws(SyncNodeError) -> [ConflictItem] {
        try readNamed { db, interner in
            var out: [ConflictItem] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT collection, record_id, state FROM record WHERE conflicts > 0")
            while let row = try rows.next() {
                let collection = try interner.name(row["collection"], db)
                let recordID: String = row["record_id"]
                for (field, live) in try Self.named(try RecordCodec.decode(row["state"], &interner, db), db, &interner) {
                    guard let w = MergeRule.winner(live) else { continue }
                    for h in MergeRule.conflicts(live) {
                        out.append(
                            ConflictItem(
                                collection: collection, recordID: recordID, field: field, winnerValue: w.value, winnerTs: w.ts, otherValue: h.value,
                                otherTs: h.ts))
                    }
                }
            }
            return out.sorted { ($0.collection, $0.recordID, $0.field, $0.otherTs) < ($1.collection, $1.recordID, $1.field, $1.otherTs) }
        }
    }

    /// The entries of a ledger, oldest first, each reversal marked with the entry it cancels (or
    /// why it cancels none, see `LedgerRule.reversals`).
    public func ledger(_ name: String) throws(SyncNodeError) -> [LedgerRow] {
        try read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT entry_id, ts, fields FROM ledger_entry WHERE ledger = ? ORDER BY ts, entry_id, origin", arguments: [name])
            var entries = rows.map { row in
                LedgerRow(ledger: name, entryID: row["entry_id"], ts: Timestamp(bytes: row["ts"] as Data)!, fields: LedgerJSON.decode(row["fields"]))
            }
            let verdicts = LedgerRule.reversals(entries.map { LedgerRule.Entry(entryID: $0.entryID, ts: $0.ts, fields: $0.fields) })
            for (r, verdict) in verdicts.sorted(by: { $0.key < $1.key }) {
                switch verdict {
                case .cancels(let t): entries[t].reversedBy.append(entries[r].entryID)
                case .invalid(let why): entries[r].invalidReversal = why
                }
            }
            return entries
        }
    }

    /// Entries that reused an id already taken in their ledger (kept for review, never counted).
    public func ledgerDuplicates() throws(SyncNodeError) -> [LedgerRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT ledger, entry_id, ts, fields FROM ledger_duplicate ORDER BY ledger, entry_id, ts").map { row in
                LedgerRow(
                    ledger: row["ledger"], entryID: row["entry_id"], ts: Timestamp(bytes: row["ts"] as Data)!,
                    fields: LedgerJSON.decode(row["fields"]))
            }
        }
    }

    /// Counts describing the replica.
    public func summary() throws(SyncNodeError) -> StoreSummary {
        let vector = try vector()
        let conflicts = try conflicts().count
        return try read { db in
            StoreSummary(
                vector: vector,
                transactions: try Int.fetchOne(db, sql: "SELECT count(*) FROM log") ?? 0,
                records: try Int.fetchOne(db, sql: "SELECT count(*) FROM record") ?? 0,
                conflicts: conflicts,
                ledgerEntries: try Int.fetchOne(db, sql: "SELECT count(*) FROM ledger_entry") ?? 0,
                ledgerDuplicates: try Int.fetchOne(db, sql: "SELECT count(*) FROM ledger_duplicate") ?? 0,
                clock: try loadClock(db).current)
        }
    }

    /// A canonical text of the whole replicated state (every field version, every winner, every
    /// ledger entry and duplicate, the vector). Two replicas that converged give identical text.
    public func stateDigest() throws(SyncNodeError) -> String {
        try readNamed { db, interner in
            var lines: [String] = []
            // Names are ordered by their bytes and fields kept apart by number, so two names that
            // differ only in Unicode normalisation stay two lines in a fixed order.
            let collections = try Int64.fetchAll(db, sql: "SELECT DISTINCT collection FROM record")
                .map { ($0, try interner.name($0, db)) }.sorted { $0.1.bytesPrecede($1.1) }
            for (ix, collection) in collections {
                let rows = try Row.fetchAll(db, sql: "SELECT record_id, state FROM record WHERE collection = ? ORDER BY record_id", arguments: [ix])
                for row in rows {
                    let recordID: String = row["record_id"]
                    let record = try RecordCodec.decode(row["state"], &interner, db)
                    var versions: [(String, LiveVersion)] = []
                    var winners: [(String, LiveVersion)] = []
                    for (field, live) in record.fields {
                        let name = try interner.name(field, db)
                        versions += live.map { (name, $0) }
                        if let w = MergeRule.winner(live) { winners.append((name, w)) }
                    }
                    versions += try Self.replacedVersions(db, collection: ix, recordID: recordID, &interner)
                    func order(_ a: (String, LiveVersion), _ b: (String, LiveVersion)) -> Bool {
                        a.0.sameBytes(as: b.0) ? a.1.ts < b.1.ts : a.0.bytesPrecede(b.0)
                    }
                    for (field, v) in versions.sorted(by: order) {
                        lines.append("v \(collection)/\(recordID).\(field) \(v.ts) \(v.value) head=\(v.isHead)")
                    }
                    for (field, w) in winners.sorted(by: order) {
                        lines.append("s \(collection)/\(recordID).\(field) \(w.ts) \(w.value)")
                    }
                }
            }
            for row in try Row.fetchAll(db, sql: "SELECT ledger, entry_id, ts, fields FROM ledger_entry ORDER BY ledger, entry_id, origin") {
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
            // The log: per origin, the history chain of its last transaction, which covers every
            // signature and verdict before it (`HistoryChain`); when it arrived is not compared.
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT node.id AS id, log.seq AS seq, log.chain AS chain FROM log JOIN node ON node.ix = log.origin
                    WHERE log.seq = (SELECT max(seq) FROM log AS l WHERE l.origin = log.origin) ORDER BY node.id
                    """)
            {
                lines.append("c \(NodeID(bytes: row["id"] as Data)!.hex) \(row["seq"] as Int64) \(Hex.string((row["chain"] as Data?) ?? Data()))")
            }
            return lines.joined(separator: "\n")
        }
    }

    /// A SHA-256 of every row of every table of this node's database (held transactions,
    /// refusals, the replay cache, sessions and users included), table by table in a fixed order.
    /// Unlike `stateDigest`, which two converged replicas share, this tells whether anything at
    /// all was written: the check behind every "refused, and nothing was written".
    public func storedDigest() throws(SyncNodeError) -> String {
        try read { db in
            var hash = SHA256()
            let tables = try String.fetchAll(
                db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            for table in tables {
                hash.update(data: Array("table \(table)\n".utf8))
                let quoted = "\"" + table.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                let rows = try Row.fetchCursor(db, sql: "SELECT * FROM \(quoted)")
                var lines: [[UInt8]] = []
                while let row = try rows.next() {
                    var line: [UInt8] = []
                    for value in row.databaseValues {
                        switch value.storage {
                        case .null: line += [0]
                        case .int64(let n): line += [1] + Array("\(n)".utf8)
                        case .double(let d): line += [2] + Array("\(d.bitPattern)".utf8)
                        case .string(let s): line += [3] + Array("\(s.utf8.count):".utf8) + Array(s.utf8)
                        case .blob(let b): line += [4] + Array("\(b.count):".utf8) + Array(b)
                        }
                    }
                    lines.append(line)
                }
                // Row order is not part of what was stored.
                for line in lines.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                    hash.update(data: line)
                    hash.update(data: [0x0A])
                }
            }
            return Hex.string(hash.finalize())
        }
    }

    /// Up to the given limits, the transactions this node holds that `vector` lacks, ordered by
    /// (origin, seq), never splitting a transaction. At least one transaction is returned when
    /// any is missing, whatever its size.
    public func transactions(missingFrom vector: VersionVector, maxTransactions: Int = .max, maxBytes: Int = .max) throws(SyncNodeError)
        -> (transactions: [ReceivedTransaction], more: Bool)
    {
        let (frames, more, _) = try frames(missingFrom: vector, maxTransactions: maxTransactions, maxBytes: maxBytes)
        var out: [ReceivedTransaction] = []
        out.reserveCapacity(frames.count)
        do {
            for frame in frames { out.append(try ReceivedTransaction(frame: frame)) }
        } catch {
            throw SyncNodeError(error)
        }
        return (out, more)
    }

    /// The same as `transactions(missingFrom:)`, as the frames that carry them (see
    /// `ReceivedTransaction.frame`), straight from the log without decoding: what serving a pull,
    /// pushing and exporting a bundle need.
    ///
    /// A transaction this node refused travels as its signed original, for each receiver to judge
    /// (it is never materialised anywhere); `refused` lists those frames by index, with this
    /// node's reasons (HQ vouches for them, see `BatchHeader.refusedFrames`). The trust anchor's
    /// transactions come first, so that a receiver knows every node the registry approves before
    /// their work arrives.
    public func frames(missingFrom vector: VersionVector, maxTransactions: Int = .max, maxBytes: Int = .max) throws(SyncNodeError)
        -> (frames: [[UInt8]], more: Bool, refused: [BatchHeader.RefusedFrame])
    {
        let mine = try self.vector()
        let anchor = try anchorNode()
        let gaps = mine.surplus(over: vector).sorted { a, b in (a.origin == anchor ? 0 : 1, a.origin) < (b.origin == anchor ? 0 : 1, b.origin) }
        return try readNamed { db, interner in
            var out: [[UInt8]] = []
            var refused: [BatchHeader.RefusedFrame] = []
            var bytes = 0
            let inflater = Inflate()
            for gap in gaps {
                guard let origin = try interner.nodeIx(gap.origin, db, create: false) else { continue }
                let rows = try Row.fetchCursor(
                    db.cachedStatement(sql: "SELECT seq, body, size, sig, refused FROM log WHERE origin = ? AND seq > ? AND seq <= ? ORDER BY seq"),
                    arguments: [origin, Int64(gap.after), Int64(gap.upTo)])
                while let row = try rows.next() {
                    let stored = row["body"] as Data
                    let size = (row["size"] as Int64?).map(Int.init) ?? stored.count
                    // A refusal statement believed by an older version left no original here:
                    // this origin's later transactions must come from a node that holds it.
                    if size == 0 { break }
                    if !out.isEmpty && (out.count >= maxTransactions || bytes + size > maxBytes) { return (out, true, refused) }
                    if let reason = row["refused"] as String? { refused.append(.init(index: out.count, reason: reason)) }
                    let signature = (row["sig"] as Data?) ?? Data()
                    if row["size"] as Int64? != nil {
                        out.append(ReceivedTransaction.frame(signature: signature, body: try inflater.unpack(stored, size: size)))
                    } else {
                        out.append(ReceivedTransaction.frame(signature: signature, body: stored))
                    }
                    bytes += size
                }
            }
            return (out, false, refused)
        }
    }

    /// The node id of the trust anchor (HQ): this node if it is HQ, else the registry's node
    /// whose key is the anchor. Nil in open mode or before the registry has arrived.
    func anchorNode() throws(SyncNodeError) -> NodeID? {
        guard let anchor = info.trustAnchor else { return nil }
        if anchor == info.publicKey { return info.nodeID }
        return try registry().first { $0.key == anchor && $0.role == .hq }?.node
    }

    /// Labels of the nodes this node knows, itself included: the registry's, which only HQ writes.
    /// What a peer or a bundle says of itself is never shown (anyone can say anything there); labels
    /// older versions learned that way remain only for nodes the registry does not name.
    public func nodeLabels() throws(SyncNodeError) -> [NodeID: String] {
        var out = try read { db in
            var labels: [NodeID: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT node_id, label FROM known_node") {
                if let id = NodeID(bytes: row["node_id"] as Data) { labels[id] = row["label"] }
            }
            return labels
        }
        for entry in try registry() { out[entry.node] = entry.label }
        out[info.nodeID] = info.label
        return out
    }
}
