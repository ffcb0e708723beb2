/// Everything one local write produced: applied all-or-nothing at every receiver, never split.
///
/// `seq` increases by one per transaction of `origin`, with no gaps; `hlc` is the timestamp of
/// every change inside (its node is always `origin`).
public struct Transaction: Hashable, Sendable {
    public var origin: NodeID
    public var seq: UInt64
    public var hlc: Timestamp
    public var changes: [Change]

    public init(origin: NodeID, seq: UInt64, hlc: Timestamp, changes: [Change]) {
        self.origin = origin
        self.seq = seq
        self.hlc = hlc
        self.changes = changes
    }

    /// Most changes one transaction may carry.
    public static let maxChanges = 10_000

    /// Why this transaction is malformed, or nil when it is well formed. Checks only what can be
    /// checked from the transaction alone (not order, signatures or policy).
    public func problem(maxValueBytes: Int) -> String? {
        if seq == 0 { return "transaction seq must start at 1" }
        if hlc.node != origin { return "transaction timestamp belongs to another node" }
        if changes.isEmpty { return "transaction \(origin.short)/\(seq) has no changes" }
        if changes.count > Transaction.maxChanges { return "transaction has more than \(Transaction.maxChanges) changes" }
        // Names repeat across changes (one collection, a few field names, a record's fields side
        // by side), so each distinct one is checked once and duplicates are found per record.
        var checkedCollection: String?
        var checkedFields: [String] = []
        var groupRecord: (collection: String, recordID: String)?
        var groupFields: [String] = []
        var records = Set<[ExactText]>()
        var revisited = false
        var entries = Set<[ExactText]>()
        // Names are compared by their bytes, as storage and other replicas compare them.
        for change in changes {
            switch change {
            case .set(let w):
                if !(checkedCollection.map { $0.sameBytes(as: w.collection) } ?? false) {
                    if let p = Names.problem(with: w.collection, what: "collection name") { return p }
                    checkedCollection = w.collection
                }
                if !(groupRecord.map { $0.recordID.sameBytes(as: w.recordID) && $0.collection.sameBytes(as: w.collection) } ?? false) {
                    if let p = Names.problem(with: w.recordID, what: "record id", allowReserved: true) { return p }
                    groupRecord = (w.collection, w.recordID)
                    groupFields.removeAll(keepingCapacity: true)
                    // A record written again after other records: fall back to a full check.
                    if !records.insert([ExactText(w.collection), ExactText(w.recordID)]).inserted { revisited = true }
                }
                if !checkedFields.contains(where: { $0.sameBytes(as: w.field) }) {
                    if let p = Names.problem(with: w.field, what: "field name", allowReserved: w.field == Names.deletedField) { return p }
                    if checkedFields.count < 64 { checkedFields.append(w.field) }
                }
                if w.value.byteCount > maxValueBytes { return "value of \(w.collection)/\(w.recordID).\(w.field) exceeds \(maxValueBytes) bytes" }
                if !w.value.isFiniteOrNotReal { return "value of \(w.collection)/\(w.recordID).\(w.field) is not a finite number" }
                if let base = w.base, base >= hlc { return "a write's base is not older than the write" }
                if w.resolves.contains(where: { $0 >= hlc }) { return "a write resolves a version that is not older than the write" }
                if groupFields.contains(where: { $0.sameBytes(as: w.field) }) {
                    return "field \(w.collection)/\(w.recordID).\(w.field) is written twice in one transaction"
                }
                groupFields.append(w.field)
            case .append(let e):
                if !entries.insert([ExactText(e.ledger), ExactText(e.entryID)]).inserted {
                    return "entry \(e.ledger)/\(e.entryID) is appended twice in one transaction"
                }
                if let p = Names.problem(with: e.ledger, what: "ledger name") ?? Names.problem(with: e.entryID, what: "entry id") {
                    return p
                }
                for (name, value) in e.fields {
                    if let p = Names.problem(with: name, what: "field name", allowReserved: name == Names.reversesField) { return p }
                    if value.byteCount > maxValueBytes { return "value of \(e.ledger)/\(e.entryID).\(name) exceeds \(maxValueBytes) bytes" }
                    if !value.isFiniteOrNotReal { return "value of \(e.ledger)/\(e.entryID).\(name) is not a finite number" }
                }
            case .unknown:
                continue
            }
        }
        if revisited {
            var seen = Set<[ExactText]>()
            for case .set(let w) in changes where !seen.insert([ExactText(w.collection), ExactText(w.recordID), ExactText(w.field)]).inserted {
                return "field \(w.collection)/\(w.recordID).\(w.field) is written twice in one transaction"
            }
        }
        return nil
    }
}

/// Identifies one field of one record.
public struct FieldKey: Hashable, Sendable, Comparable {
    public var collection: String
    public var recordID: String
    public var field: String

    public init(collection: String, recordID: String, field: String) {
        self.collection = collection
        self.recordID = recordID
        self.field = field
    }

    public static func < (a: FieldKey, b: FieldKey) -> Bool {
        (a.collection, a.recordID, a.field) < (b.collection, b.recordID, b.field)
    }
}
