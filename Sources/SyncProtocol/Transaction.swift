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
        var writes = WriteCheck()
        var entries = Set<NamePair>()
        var authored = false
        for change in changes {
            switch change {
            case .set(let w):
                if let p = writes.problem(w) { return p }
                if w.value.byteCount > maxValueBytes { return "value of \(w.collection)/\(w.recordID).\(w.field) exceeds \(maxValueBytes) bytes" }
                if !w.value.isFiniteOrNotReal { return "value of \(w.collection)/\(w.recordID).\(w.field) is not a finite number" }
                if let base = w.base, base >= hlc { return "a write's base is not older than the write" }
                if w.resolves.contains(where: { $0 >= hlc }) { return "a write resolves a version that is not older than the write" }
            case .append(let e):
                if !entries.insert(NamePair(e.ledger, e.entryID)).inserted {
                    return "entry \(e.ledger)/\(e.entryID) is appended twice in one transaction"
                }
                if let p = Self.problem(of: e, maxValueBytes: maxValueBytes) { return p }
            case .author(let name):
                if let p = Names.authorProblem(name) { return p }
                if authored { return "transaction \(origin.short)/\(seq) names its author twice" }
                authored = true
            case .unknown:
                continue
            }
        }
        if writes.revisited {
            var seen = Set<[ExactText]>()
            for case .set(let w) in changes where !seen.insert([ExactText(w.collection), ExactText(w.recordID), ExactText(w.field)]).inserted {
                return "field \(w.collection)/\(w.recordID).\(w.field) is written twice in one transaction"
            }
        }
        return nil
    }

    private static func problem(of e: LedgerEntry, maxValueBytes: Int) -> String? {
        if let p = Names.problem(with: e.ledger, what: "ledger name") ?? Names.problem(with: e.entryID, what: "entry id") {
            return p
        }
        for (name, value) in e.fields {
            if let p = Names.problem(with: name, what: "field name", allowReserved: Names.isReservedEntryField(name)) { return p }
            if value.byteCount > maxValueBytes { return "value of \(e.ledger)/\(e.entryID).\(name) exceeds \(maxValueBytes) bytes" }
            if !value.isFiniteOrNotReal { return "value of \(e.ledger)/\(e.entryID).\(name) is not a finite number" }
        }
        return nil
    }
}

/// The names of a transaction's field writes, checked as they come: each collection, record id
/// and field name is well formed, and no field of a record is written twice.
///
/// Names repeat across changes (one collection, a few field names, a record's fields side by
/// side), so each distinct one is checked once, and the fields of one record are told apart by
/// the index of their name in the list of names checked. Names are compared by their bytes, as
/// storage and other replicas compare them.
private struct WriteCheck {
    var checkedCollection: String?
    var groupRecord: (collection: String, recordID: String)?
    var group = 0
    var position = 0
    var fieldNames: [String] = []
    var lastGroupOfName: [Int] = []
    var guesses: [Int] = []
    var uncachedInGroup: [String] = []
    var records = Set<NamePair>()
    /// A record was written again after other records: the caller checks every write again.
    var revisited = false

    mutating func problem(_ w: FieldWrite) -> String? {
        let sameRecord = groupRecord.map { $0.recordID.sameBytes(as: w.recordID) && $0.collection.sameBytes(as: w.collection) } ?? false
        if !sameRecord {
            if !(checkedCollection.map { $0.sameBytes(as: w.collection) } ?? false) {
                if let p = Names.problem(with: w.collection, what: "collection name") { return p }
                checkedCollection = w.collection
            }
            if let p = Names.problem(with: w.recordID, what: "record id", allowReserved: true) { return p }
            groupRecord = (w.collection, w.recordID)
            group += 1
            position = 0
            uncachedInGroup.removeAll(keepingCapacity: true)
            if !records.insert(NamePair(w.collection, w.recordID)).inserted { revisited = true }
        }
        // Records of one collection usually list their fields in one order: guess first.
        var index: Int?
        if position < guesses.count, fieldNames[guesses[position]].sameBytes(as: w.field) {
            index = guesses[position]
        } else if let found = fieldNames.firstIndex(where: { $0.sameBytes(as: w.field) }) {
            index = found
        } else {
            if let p = Names.problem(with: w.field, what: "field name", allowReserved: w.field == Names.deletedField) { return p }
            if fieldNames.count < 256 {
                fieldNames.append(w.field)
                lastGroupOfName.append(0)
                index = fieldNames.count - 1
            }
        }
        position += 1
        guard let index else {
            if uncachedInGroup.contains(where: { $0.sameBytes(as: w.field) }) {
                return "field \(w.collection)/\(w.recordID).\(w.field) is written twice in one transaction"
            }
            uncachedInGroup.append(w.field)
            return nil
        }
        if position - 1 < guesses.count {
            guesses[position - 1] = index
        } else if guesses.count < 64 {
            guesses.append(index)
        }
        if lastGroupOfName[index] == group { return "field \(w.collection)/\(w.recordID).\(w.field) is written twice in one transaction" }
        lastGroupOfName[index] = group
        return nil
    }
}

/// Two names compared by their bytes: a record (collection, id) or a ledger entry (ledger, id).
private struct NamePair: Hashable {
    let first: ExactText
    let second: ExactText

    init(_ first: String, _ second: String) {
        self.first = ExactText(first)
        self.second = ExactText(second)
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
