import Foundation
import GRDB
import SyncProtocol

/// What the review queue keeps between views (schema v9), so that a view reads what changed
/// rather than every entry and record of the programme:
/// - `ledger_unfit`: the ledger entries the plan's SQL conditions (`PlanFit`) do not clear, kept
///   by triggers made from the plan in the transaction that writes each entry;
/// - `record_dirty`: the records of the plan's collections written since the review last
///   checked them, kept by triggers; the review checks those in Swift and keeps what it finds
///   in `record_problem`.
///
/// The triggers are made from the plan, so they are remade, and both lists computed again from
/// every entry and record, whenever the plan they were made from is not the node's plan any more
/// (`Meta.Key.reviewIndex` holds a digest of the plan and the triggers' text): after HQ installs
/// a plan, when `serve` starts, and before every review (a plan that arrived by sync).
enum ReviewIndex {
    /// The wording of the problems the lists keep (`ProgrammeCheck.storedProblems`): part of the
    /// lists' digest, so that a node upgraded to new words makes its lists again instead of
    /// showing the old ones.
    static let wording = "storedProblems zh 1"

    static let triggerNames = [
        "review_ledger_insert", "review_ledger_update", "review_record_insert", "review_record_update", "review_record_delete",
    ]

    /// The condition under which the entry `row` goes on the list: not a reversal (the ledger
    /// rule judges those), in a ledger of the plan, and not cleared by the plan's conditions.
    static func unfit(_ plan: Programme, row: String) -> String {
        let ledgers = Set(plan.kinds.compactMap(\.ledger)).sorted()
        guard !ledgers.isEmpty else { return "0" }
        let cases = ledgers.map { ledger in
            "WHEN \(PlanFit.literal(ledger)) THEN \(PlanFit.ledger(plan, plan.kinds(inLedger: ledger), fields: "\(row).fields"))"
        }
        return "json_extract(\(row).fields, '$._reverses') IS NULL AND NOT coalesce(CASE \(row).ledger \(cases.joined(separator: " ")) ELSE 1 END, 0)"
    }

    /// The triggers for `plan`, whose collections are interned as `collections`.
    static func triggers(_ plan: Programme, collections: [Int64]) -> [String] {
        let add = "INSERT OR IGNORE INTO ledger_unfit SELECT NEW.ledger, NEW.entry_id, NEW.origin WHERE \(unfit(plan, row: "NEW"));"
        var out = [
            "CREATE TRIGGER review_ledger_insert AFTER INSERT ON ledger_entry BEGIN \(add) END",
            """
            CREATE TRIGGER review_ledger_update AFTER UPDATE ON ledger_entry BEGIN
            DELETE FROM ledger_unfit WHERE ledger = OLD.ledger AND entry_id = OLD.entry_id AND origin = OLD.origin; \(add) END
            """,
        ]
        guard !collections.isEmpty else { return out }
        let within = collections.map(String.init).joined(separator: ", ")
        for (name, event, row) in [("insert", "INSERT", "NEW"), ("update", "UPDATE OF state", "NEW"), ("delete", "DELETE", "OLD")] {
            out.append(
                """
                CREATE TRIGGER review_record_\(name) AFTER \(event) ON record WHEN \(row).collection IN (\(within)) BEGIN
                INSERT OR IGNORE INTO record_dirty VALUES (\(row).collection, \(row).record_id); END
                """)
        }
        return out
    }
}

extension Store {
    /// Brings the review's kept lists up to date: remakes the triggers and both lists when the
    /// plan changed since they were made, then checks the records written since the last call
    /// (in one write transaction). False when this node cannot be written (a read-only copy):
    /// the review then checks everything itself.
    ///
    /// Most views find nothing to do: a read says so first, without waiting for the write lock
    /// behind a sync's apply (and a read-only copy whose lists are current uses them).
    @discardableResult
    public func refreshReviewIndex() throws(SyncNodeError) -> Bool {
        let plan = try planState().plan
        let planText = (try? JSONEncoder.sorted.encode(plan)) ?? Data()
        let kinds = plan.kinds.enumerated().compactMap { i, kind in kind.collection.map { (index: i, kind: kind, collection: $0) } }
        let collections = Set(kinds.map(\.collection))
        /// The triggers for the plan, and the digest that says which plan and triggers the lists follow.
        func made(_ ixs: [String: Int64]) -> (triggers: [String], version: String) {
            let triggers = ReviewIndex.triggers(plan, collections: ixs.values.sorted())
            return (triggers, Secret.sha256Hex(planText + Data((triggers + [ReviewIndex.wording]).joined(separator: ";").utf8)))
        }
        let current = try readNamed { db, interner -> Bool in
            var ixs: [String: Int64] = [:]
            for name in collections {
                guard let ix = try interner.nameIx(name, db, create: false) else { return false }
                ixs[name] = ix
            }
            return try Meta.string(db, .reviewIndex) == made(ixs).version
                && !(Bool.fetchOne(db, sql: "SELECT 1 FROM record_dirty LIMIT 1") ?? false)
        }
        if current { return true }
        do {
            try writeInterned { db, interner in
                var ixs: [String: Int64] = [:]
                for name in collections { ixs[name] = try interner.nameIx(name, db) }
                let (triggers, version) = made(ixs)
                if try Meta.string(db, .reviewIndex) != version {
                    for name in ReviewIndex.triggerNames { try db.execute(sql: "DROP TRIGGER IF EXISTS \(name)") }
                    for sql in triggers { try db.execute(sql: sql) }
                    try db.execute(sql: "DELETE FROM ledger_unfit; DELETE FROM record_problem; DELETE FROM record_dirty")
                    try db.execute(
                        sql:
                            "INSERT INTO ledger_unfit SELECT ledger, entry_id, origin FROM ledger_entry AS NEW WHERE \(ReviewIndex.unfit(plan, row: "NEW"))"
                    )
                    if !ixs.isEmpty {
                        try db.execute(
                            sql:
                                "INSERT INTO record_dirty SELECT collection, record_id FROM record WHERE collection IN (\(ixs.values.map(String.init).joined(separator: ", ")))"
                        )
                    }
                    try Meta.set(db, .reviewIndex, version)
                }
                // The records written since: each checked against every kind kept in its collection.
                let check = ProgrammeCheck(plan)
                let names = Dictionary(ixs.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
                let dirty = try Row.fetchCursor(
                    db, sql: "SELECT d.collection, d.record_id, r.state FROM record_dirty d LEFT JOIN record r USING (collection, record_id)")
                while let row = try dirty.next() {
                    let collection: Int64 = row[0]
                    let recordID: String = row[1]
                    try db.cachedStatement(sql: "DELETE FROM record_problem WHERE collection = ? AND record_id = ?").execute(arguments: [
                        collection, recordID,
                    ])
                    guard let name = names[collection], let state = row[2] as Data?,
                        let view = Self.view(name, recordID, try Self.named(try RecordCodec.decode(state, &interner, db), db, &interner)),
                        !view.deleted
                    else { continue }
                    for k in kinds where k.collection == name {
                        let problems = check.storedProblems(kind: k.kind, fields: view.fields)
                        guard !problems.isEmpty else { continue }
                        try db.cachedStatement(sql: "INSERT INTO record_problem (kind, collection, record_id, problems) VALUES (?, ?, ?, ?)")
                            .execute(arguments: [k.index, collection, recordID, problems.joined(separator: "; ")])
                    }
                }
                try db.execute(sql: "DELETE FROM record_dirty")
            }
            return true
        } catch  where error.code == .readOnly {
            return false
        }
    }
}

extension JSONEncoder {
    /// Keys sorted: the same value always encodes to the same bytes.
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }
}
