import Foundation
import GRDB
import SyncProtocol

/// One ledger entry as a mirror of the node's merged view carries it: the entry as stored, and
/// what the node decided of it (whether it is a reversal, where its money counts).
public struct MirrorEntry: Sendable, Equatable {
    public var ledger: String
    public var entryID: String
    public var origin: NodeID
    public var ts: Timestamp
    /// Who made it at its origin (the transaction's author), when it says.
    public var author: String?
    /// The plan's kind of work: the entry's `kind`, else the one kind writing to its ledger.
    public var kind: String?
    /// Whether the ledger is the ledger of one of the plan's money kinds.
    public var isMoney: Bool
    public var fields: [String: Value]
    public var isReversal: Bool
    /// Where its amount counts (`MoneyModel.placement`), before any reversal cancels it.
    public var placement: MoneyModel.Placement?

    /// Whether it counts in the money totals, given whether a reversal cancels it.
    public func counts(cancelled: Bool) -> Bool { placement != nil && !cancelled }
}

/// An entry's key in its ledger: its id and the node that made it. Ids are compared byte for
/// byte, as the node keeps them (two ids that look alike are two entries).
public struct EntryKey: Sendable, Hashable {
    public var entryID: String
    public var origin: NodeID

    public init(entryID: String, origin: NodeID) {
        self.entryID = entryID
        self.origin = origin
    }

    public static func == (a: EntryKey, b: EntryKey) -> Bool { a.origin == b.origin && ExactText(a.entryID) == ExactText(b.entryID) }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ExactText(entryID))
        hasher.combine(origin)
    }
}

/// What a mirror takes from one stretch of the log: the current state of every record and
/// ledger entry the stretch touched (read now, so a record written again later is carried as it
/// is now: a mirror that repeats a stretch writes the same rows), and for each ledger it touched,
/// every entry a reversal cancels there (the node's verdict over the whole ledger).
public struct MirrorBatch: Sendable {
    /// The vector the mirror holds once this batch is in.
    public var through: VersionVector
    /// The transactions of the stretch (refused ones included: they touch nothing).
    public var transactions: Int
    /// Whether the node holds more beyond `through`.
    public var more: Bool
    /// The records touched, as they are now (deleted ones with `deleted` set).
    public var records: [RecordView]
    public var entries: [MirrorEntry]
    /// Per ledger touched: the entries a reversal cancels, all of them.
    public var cancelled: [String: Set<EntryKey>]
}

/// Where the node's PostgreSQL mirror stands, as the mirror last wrote it here (`meta`, local to
/// this node): what `status` and `/metrics` report.
public struct MirrorStatus: Codable, Sendable, Equatable {
    /// The server and database, without credentials.
    public var target: String
    /// The transactions the mirror holds (the sum of its vector).
    public var mirrored: UInt64
    /// When a pass last left the mirror current (ms since 1970).
    public var currentAt: UInt64?
    /// When a pass last failed, and why (cleared by the next success).
    public var failedAt: UInt64?
    public var error: String?

    public init(target: String, mirrored: UInt64, currentAt: UInt64?, failedAt: UInt64? = nil, error: String? = nil) {
        self.target = target
        self.mirrored = mirrored
        self.currentAt = currentAt
        self.failedAt = failedAt
        self.error = error
    }
}

/// An entry's key with its ledger, compared byte for byte.
struct EntryKeyInLedger: Hashable {
    var ledger: ExactText
    var key: EntryKey
}

extension Store {
    /// Up to `maxTransactions` transactions the node holds beyond `mirrored`, as the mirror takes
    /// them (see `MirrorBatch`).
    public func mirrorBatch(after mirrored: VersionVector, maxTransactions: Int) throws(SyncNodeError) -> MirrorBatch {
        let (transactions, more) = try transactions(missingFrom: mirrored, maxTransactions: maxTransactions)
        var through = mirrored
        var recordKeys: [String: Set<ExactText>] = [:]
        // Each entry once (an origin may append one id twice: the node keeps one copy, the
        // other waits in review).
        var seen = Set<EntryKeyInLedger>()
        var entryOrder: [EntryKeyInLedger] = []
        for item in transactions {
            let t = item.transaction
            through[t.origin] = max(through[t.origin], t.seq)
            for change in t.changes {
                switch change {
                case .set(let write): recordKeys[write.collection, default: []].insert(ExactText(write.recordID))
                case .append(let entry):
                    let key = EntryKeyInLedger(ledger: ExactText(entry.ledger), key: EntryKey(entryID: entry.entryID, origin: t.origin))
                    if seen.insert(key).inserted { entryOrder.append(key) }
                default: break
                }
            }
        }
        let plan = try programme()
        let records = try mirrorRecords(recordKeys)
        var entries = try mirrorEntries(entryOrder, plan: plan)
        // Who made the copy the node kept (by its clock), whichever transaction carried it.
        let authors = try authors(of: entries.map(\.ts))
        for i in entries.indices { entries[i].author = authors[entries[i].ts] }
        var cancelled: [String: Set<EntryKey>] = [:]
        for ledger in Set(entryOrder.map(\.ledger)) { cancelled[ledger.text] = try cancelledEntryKeys(ledger: ledger.text) }
        return MirrorBatch(
            through: through, transactions: transactions.count, more: more, records: records, entries: entries, cancelled: cancelled)
    }

    private func mirrorRecords(_ keys: [String: Set<ExactText>]) throws(SyncNodeError) -> [RecordView] {
        try readNamed { db, interner in
            var out: [RecordView] = []
            for (collection, ids) in keys.sorted(by: { $0.key < $1.key }) {
                for id in ids.map(\.text).sorted() {
                    guard let fields = try Self.namedRecord(db, collection: collection, recordID: id, &interner),
                        let view = Self.view(collection, id, fields)
                    else { continue }
                    out.append(view)
                }
            }
            return out
        }
    }

    private func mirrorEntries(_ keys: [EntryKeyInLedger], plan: Programme) throws(SyncNodeError) -> [MirrorEntry] {
        let moneyLedgers = Set(plan.moneyKinds.compactMap(\.ledger))
        let kindOfLedger = Dictionary(grouping: plan.kinds.filter { $0.ledger != nil }, by: { $0.ledger! }).compactMapValues {
            $0.count == 1 ? $0[0].id : nil
        }
        return try read { db in
            let statement = try db.cachedStatement(sql: "SELECT ts, fields FROM ledger_entry WHERE ledger = ? AND entry_id = ? AND origin = ?")
            return try keys.compactMap { keyed in
                let (ledger, key) = (keyed.ledger.text, keyed.key)
                guard let row = try Row.fetchOne(statement, arguments: [ledger, key.entryID, Data(key.origin.bytes)]),
                    let ts = Timestamp(bytes: row["ts"] as Data)
                else { return nil }
                let fields = LedgerJSON.decode(row["fields"])
                let kind: String? = if case .text(let k)? = fields["kind"] { k } else { kindOfLedger[ledger] }
                return MirrorEntry(
                    ledger: ledger, entryID: key.entryID, origin: key.origin, ts: ts, author: nil, kind: kind,
                    isMoney: moneyLedgers.contains(ledger),
                    fields: fields, isReversal: MoneyModel.isReversal(fields), placement: MoneyModel.placement(fields))
            }
        }
    }

    /// Where the PostgreSQL mirror stands, as it last said.
    public func mirrorStatus() throws(SyncNodeError) -> MirrorStatus? {
        try read { db in
            guard let text = try Meta.string(db, .mirror) else { return nil }
            return try? JSONDecoder().decode(MirrorStatus.self, from: Data(text.utf8))
        }
    }

    /// Keeps where the PostgreSQL mirror stands (local to this node, never replicated).
    public func noteMirrorStatus(_ status: MirrorStatus) throws(SyncNodeError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = String(decoding: (try? encoder.encode(status)) ?? Data("{}".utf8), as: UTF8.self)
        try StorageErrors.map { try pool.write { db in try Meta.set(db, .mirror, text) } }
    }
}
