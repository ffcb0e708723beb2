import SyncProtocol

/// Reference answers for one field, computed directly from the definitions in `FieldRegister`'s
/// documentation (not from its code): winner = greatest timestamp, head = not replaced by any
/// version, conflicts = heads other than the winner that hold another value.
struct FieldReference {
    let versions: [FieldVersion]

    var winner: FieldVersion? {
        var best: FieldVersion?
        for v in versions where best == nil || best!.ts < v.ts { best = v }
        return best
    }

    var heads: [FieldVersion] {
        var replaced = Set<Timestamp>()
        for v in versions {
            if let b = v.base { replaced.insert(b) }
            replaced.formUnion(v.resolves)
        }
        return versions.filter { !replaced.contains($0.ts) }.sorted { $0.ts < $1.ts }
    }

    var conflicts: [FieldVersion] {
        guard let w = winner else { return [] }
        return heads.filter { $0.ts != w.ts && $0.value != w.value }
    }
}

/// A pure model of a ledger replica: union on `(ledger, entryID)`, the entry kept under an id chosen
/// by `LedgerRule`, every other entry under that id kept as a duplicate.
struct LedgerModel: Equatable {
    /// An entry is identified by its ledger, id and origin: ids used by two origins are two entries.
    struct Key: Hashable, Comparable {
        var ledger: String
        var entryID: String
        var origin: NodeID
        static func < (a: Key, b: Key) -> Bool { (a.ledger, a.entryID, a.origin) < (b.ledger, b.entryID, b.origin) }
    }

    struct Stamped: Hashable {
        var ts: Timestamp
        var fields: [String: Value]
    }

    private(set) var kept: [Key: Stamped] = [:]
    private(set) var duplicates: [Key: Set<Stamped>] = [:]

    /// Adds an entry written at `ts`; adding the same write again changes nothing.
    mutating func add(_ entry: LedgerEntry, ts: Timestamp) {
        let key = Key(ledger: entry.ledger, entryID: entry.entryID, origin: ts.node)
        let incoming = Stamped(ts: ts, fields: entry.fields)
        guard let existing = kept[key] else {
            kept[key] = incoming
            return
        }
        if existing == incoming || duplicates[key]?.contains(incoming) == true { return }
        if LedgerRule.keeps(existing: existing.ts, over: incoming.ts) {
            duplicates[key, default: []].insert(incoming)
        } else {
            duplicates[key, default: []].insert(existing)
            kept[key] = incoming
        }
    }

    /// Merge of two replicas: everything either holds.
    func merged(with other: LedgerModel) -> LedgerModel {
        var out = self
        for (key, e) in other.kept.sorted(by: { $0.key < $1.key }) {
            out.add(LedgerEntry(ledger: key.ledger, entryID: key.entryID, fields: e.fields), ts: e.ts)
        }
        for (key, set) in other.duplicates {
            for e in set { out.add(LedgerEntry(ledger: key.ledger, entryID: key.entryID, fields: e.fields), ts: e.ts) }
        }
        return out
    }
}
