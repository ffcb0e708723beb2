import Foundation
import GRDB
import SyncProtocol

/// A group of the money totals kept per ledger, county and budget year (`ledger_money_total`):
/// nil where the entries name no county or no year (their own rows in the funds report).
public struct MoneyKey: Hashable, Sendable {
    public var county: String?
    public var year: Int?
}

/// A group of the money totals kept per ledger and project (`ledger_project_total`), with the
/// county the entries were booked to and their payment stage.
public struct ProjectMoneyKey: Hashable, Sendable {
    public var project: String
    public var county: String?
    public var stage: String?
}

/// A project's money, as every figure shows it.
/// A project an entry names, as the writing path read it: its county and current stage.
struct KnownProject {
    var id: String
    var county: String?
    var stage: String?
}

public struct ProjectMoney: Sendable, Equatable {
    public var allocated = Total.zero
    public var disbursed = Total.zero
    public var spent = Total.zero

    public init() {}
}

extension Store {
    /// The kept totals of one grouping and the `ledger_money` columns that make its key.
    private enum Grouping {
        case countyYear, project

        var table: String { self == .countyYear ? "ledger_money_total" : "ledger_project_total" }
        var keys: [String] { self == .countyYear ? ["county", "year"] : ["project", "county", "stage"] }
        /// The key as `ledger_money` holds it ('' and 0 stand for none in the totals).
        var projected: [String] {
            self == .countyYear ? ["coalesce(county, '')", "coalesce(year, 0)"] : ["project", "coalesce(county, '')", "coalesce(stage, '')"]
        }
    }

    /// The totals of `ledger` per group over the entries that count (`MoneyModel.placement`):
    /// the totals kept as entries are written, less each entry a reversal cancels
    /// (`LedgerRule.reversals`; the cancelled amount leaves the group its entry counted in). A
    /// group whose kept sum went beyond 64 bits (SQLite then keeps a REAL) is summed again from
    /// its rows, exactly. `filter` keeps the groups whose first keys equal it (read through the
    /// index: what a clerk's write needs).
    private func groupedTotals(_ grouping: Grouping, ledger: String, filter: [DatabaseValue] = []) throws(SyncNodeError) -> [[DatabaseValue]: Total] {
        try read { db in
            var totals: [[DatabaseValue]: Total] = [:]
            let keys = grouping.keys
            let condition = zip(keys, filter).map { "AND \($0.0) = ?" }.joined(separator: " ")
            let rows = try Row.fetchCursor(
                db,
                sql: "SELECT \(keys.joined(separator: ", ")), total FROM \(grouping.table) WHERE ledger = ? \(condition)",
                arguments: StatementArguments([ledger.databaseValue] + filter))
            var inexact: [[DatabaseValue]] = []
            while let row = try rows.next() {
                let key = (0..<keys.count).map { row[$0] as DatabaseValue }
                if case .int64(let n) = (row["total"] as DatabaseValue).storage {
                    totals[key, default: .zero].add(n)
                } else {
                    inexact.append(key)
                }
            }
            for key in inexact {
                var exact = Total.zero
                let amounts = try Int64.fetchCursor(
                    db,
                    sql:
                        "SELECT amount_fen FROM ledger_money WHERE ledger = ? AND \(grouping.projected.map { "\($0) = ?" }.joined(separator: " AND "))",
                    arguments: StatementArguments([ledger.databaseValue] + key))
                while let amount = try amounts.next() { exact.add(amount) }
                totals[key, default: .zero].add(exact)
            }
            let judged = try Self.reversalVerdicts(db, ledger: ledger)
            for (_, verdict) in judged.verdicts {
                guard case .cancels(let t) = verdict,
                    let row = try Row.fetchOne(
                        db,
                        sql:
                            "SELECT \(grouping.projected.joined(separator: ", ")), amount_fen FROM ledger_money WHERE ledger = ? AND entry_id = ? AND origin = ?",
                        arguments: [ledger, judged.entries[t].entryID, Data(judged.entries[t].origin.bytes)])
                else { continue }
                let key = (0..<keys.count).map { row[$0] as DatabaseValue }
                guard Array(key.prefix(filter.count)) == filter else { continue }
                totals[key, default: .zero].subtract(row["amount_fen"])
            }
            return totals
        }
    }

    /// `ledger`'s totals per county and budget year (`county`, with `year`: that group only).
    public func moneyTotals(ledger: String, county: String? = nil, year: Int? = nil) throws(SyncNodeError) -> [MoneyKey: Total] {
        let filter: [DatabaseValue] = county.map { c in [c.databaseValue] + (year.map { [$0.databaseValue] } ?? []) } ?? []
        var out: [MoneyKey: Total] = [:]
        for (key, total) in try groupedTotals(.countyYear, ledger: ledger, filter: filter) {
            let county = String.fromDatabaseValue(key[0]).flatMap { $0.isEmpty ? nil : $0 }
            let year = Int.fromDatabaseValue(key[1]).flatMap { $0 == 0 ? nil : $0 }
            out[MoneyKey(county: county, year: year), default: .zero].add(total)
        }
        return out
    }

    /// `ledger`'s totals per project, county and payment stage (`project`: that project only).
    public func projectMoneyTotals(ledger: String, project: String? = nil) throws(SyncNodeError) -> [ProjectMoneyKey: Total] {
        var out: [ProjectMoneyKey: Total] = [:]
        for (key, total) in try groupedTotals(.project, ledger: ledger, filter: project.map { [$0.databaseValue] } ?? []) {
            guard let project = String.fromDatabaseValue(key[0]) else { continue }
            let county = String.fromDatabaseValue(key[1]).flatMap { $0.isEmpty ? nil : $0 }
            let stage = String.fromDatabaseValue(key[2]).flatMap { $0.isEmpty ? nil : $0 }
            out[ProjectMoneyKey(project: project, county: county, stage: stage), default: .zero].add(total)
        }
        return out
    }

    /// The ledger of the plan's money kind that counts in `column` (target, allocated, ...).
    func moneyLedger(_ plan: Programme, _ column: String) -> String? { plan.moneyKinds.first { $0.money == column }?.ledger }

    /// Every project's money (`project`: that one only), as the projects report, `project show`
    /// and the review count it: whatever county or stage the entries were booked under.
    public func projectMoney(project: String? = nil) throws(SyncNodeError) -> [String: ProjectMoney] {
        if project == nil { return try cachedMoney(\.projectMoney) { () throws(SyncNodeError) in try computeProjectMoney(project: nil) } }
        return try computeProjectMoney(project: project)
    }

    /// A money figure over every project, computed once per vector (what a dashboard view reads
    /// again and again while nothing arrives).
    func cachedMoney<T>(_ path: WritableKeyPath<MoneyCache, T?>, _ compute: () throws(SyncNodeError) -> T) throws(SyncNodeError) -> T {
        let vector = try vector()
        if let cache = moneyCache.withLock({ $0 }), cache.vector == vector, let kept = cache[keyPath: path] { return kept }
        let value = try compute()
        moneyCache.withLock { cache in
            var current = cache?.vector == vector ? cache! : MoneyCache(vector: vector)
            current[keyPath: path] = value
            cache = current
        }
        return value
    }

    private func computeProjectMoney(project: String?) throws(SyncNodeError) -> [String: ProjectMoney] {
        let plan = try programme()
        var out: [String: ProjectMoney] = [:]
        for (column, path) in [("allocated", \ProjectMoney.allocated), ("disbursed", \.disbursed), ("spent", \.spent)] {
            guard let ledger = moneyLedger(plan, column) else { continue }
            for (key, total) in try projectMoneyTotals(ledger: ledger, project: project) {
                out[key.project, default: ProjectMoney()][keyPath: path].add(total)
            }
        }
        return out
    }

    /// Every county-year's target (`MoneyModel.targets`): the plan's yearly aid unless HQ set
    /// another. The model looks at each county-year's latest setting that is not reversed; those
    /// are found by one seek per county-year on `ledger_money`'s clock index (stepping past the
    /// cancelled ones), not by reading the ledger (`MoneyModelTests` holds this to the model over
    /// the whole ledger).
    public func targets() throws(SyncNodeError) -> [MoneyModel.CountyYear: MoneyModel.Target] {
        let plan = try programme()
        guard let ledger = moneyLedger(plan, "target") else { return MoneyModel.targets(plan: plan, entries: []) }
        let cancelled = try cancelledEntries(ledger: ledger)
        let latest = try read { db in
            var out: [LedgerRule.Entry] = []
            let statement = try db.cachedStatement(
                sql: """
                    SELECT e.entry_id, e.ts, e.fields FROM ledger_money m INDEXED BY ledger_money_latest
                    JOIN ledger_entry e ON e.ledger = m.ledger AND e.entry_id = m.entry_id AND e.origin = m.origin
                    WHERE m.ledger = ? AND m.county = ? AND m.year = ? ORDER BY m.ts DESC
                    """)
            for county in plan.counties {
                for year in plan.yearRange {
                    let rows = try Row.fetchCursor(statement, arguments: [ledger, county.id, year])
                    while let row = try rows.next() {
                        let ts = Timestamp(bytes: row["ts"] as Data)!
                        guard !cancelled.contains([row["entry_id"], ts.node.hex]) else { continue }
                        out.append(LedgerRule.Entry(entryID: row["entry_id"], ts: ts, fields: LedgerJSON.decode(row["fields"])))
                        break
                    }
                }
            }
            return out
        }
        return MoneyModel.targets(plan: plan, entries: latest)
    }

    /// What the cross-checks of an entry of `kind` with `fields` need to know (only the project,
    /// county-year and item it names are read).
    /// `known`: the project the caller read already (its county and stage), not read again.
    func moneyFacts(kind: Programme.Kind, fields: [String: Value], plan: Programme, known: KnownProject? = nil) throws(SyncNodeError)
        -> ProgrammeCheck.MoneyFacts
    {
        var facts = ProgrammeCheck.MoneyFacts()
        if case .text(let project)? = fields["project"] {
            if let known, known.id == project {
                facts.projectCounty = known.county
                facts.projectStage = known.stage
            } else {
                if case .text(let county)? = try record("projects", project).flatMap({ $0.deleted ? nil : $0 })?.fields["county"] {
                    facts.projectCounty = county
                }
                facts.projectStage = try projectStage(of: project)
            }
            let money = try projectMoney(project: project)[project] ?? ProjectMoney()
            facts.projectAllocated = money.allocated
            facts.projectDisbursed = money.disbursed
        }
        if kind.money == "disbursed", case .text(let county)? = fields["county"], let year = MoneyModel.budgetYear(fields),
            let ledger = kind.ledger
        {
            facts.countyYearDisbursed = try moneyTotals(ledger: ledger, county: county, year: year)[MoneyKey(county: county, year: year)] ?? .zero
            facts.countyYearTarget = try targets()[MoneyModel.CountyYear(county, year)]?.fen
        }
        if kind.fields.contains(where: { $0.name == "item" }), case .text(let item)? = fields["item"] {
            facts.itemExists = false
            for collection in ["supervision", "tasks"] where try record(collection, item).map({ !$0.deleted }) ?? false {
                facts.itemExists = true
            }
        }
        return facts
    }
}

extension ReportTable.Cell {
    /// A money or count total: the number, or words when it is beyond what a cell holds (the
    /// review lists it).
    static func total(_ total: Total) -> ReportTable.Cell { total.int64.map { .int($0) } ?? .text(Self.beyondRange) }

    /// A money total in a row of its own unit (`money`), or the same words beyond 64 bits.
    static func moneyTotal(_ total: Total) -> ReportTable.Cell { total.int64.map { .money($0) } ?? .text(Self.beyondRange) }

    /// What a cell shows for a total beyond 64 bits.
    public static let beyondRange = "超出范围"
}

extension Store {
    /// The money model's review of everything held here, whoever recorded it: the cross-checks
    /// of `ProgrammeCheck.crossChecks` over the totals (money booked to another county than its
    /// project's, disbursed beyond a project's allocation or a county-year's target, spending
    /// on a project with nothing allocated or disbursed, a payment stage the project has not
    /// reached), supervision events for items that do not exist, targets set apart from the
    /// plan, and totals beyond what a report can show. Rows: type, item, detail, who recorded it.
    func moneyReviewRows(_ plan: Programme, labels: [NodeID: String]) throws(SyncNodeError) -> [MoneyReviewRow] {
        try cachedMoney(\.reviewRows) { () throws(SyncNodeError) in try computeMoneyReviewRows(plan, labels: labels) }
    }

    /// One row of the money review: its cells, and the clock of the entry it names (who made it).
    typealias MoneyReviewRow = (cells: [ReportTable.Cell], ts: Timestamp?)

    private func computeMoneyReviewRows(_ plan: Programme, labels: [NodeID: String]) throws(SyncNodeError) -> [MoneyReviewRow] {
        func who(_ ts: Timestamp) -> String { labels[ts.node] ?? ts.node.short }
        func county(_ id: String?) -> String { id.map { plan.county($0)?.name ?? $0 } ?? Self.noCounty }
        func row(_ item: String, _ detail: String, _ ts: Timestamp? = nil) -> MoneyReviewRow {
            ([.text("money"), .text(item), .text(detail), .text(ts.map(who) ?? "")], ts)
        }
        let targets = try targets()
        var rows: [MoneyReviewRow] = []
        for (key, target) in targets.sorted(by: { $0.key < $1.key }) where target.differsFromPlan {
            let entry = target.setBy!
            let planned = target.plan.map { Money.wan($0) + "万元" } ?? "未列"
            rows.append(
                row(
                    "\(moneyLedger(plan, "target") ?? "")/\(entry.entryID)",
                    "\(county(key.county))\(key.year)年度目标另定为\(Money.wan(target.fen))万元，规划为\(planned)", entry.ts))
        }
        // Totals a report cannot show, and county-years disbursed beyond their target.
        for column in Programme.moneyColumns {
            guard let ledger = moneyLedger(plan, column) else { continue }
            for (key, total) in try moneyTotals(ledger: ledger).sorted(by: {
                ($0.key.county ?? "", $0.key.year ?? 0) < ($1.key.county ?? "", $1.key.year ?? 0)
            }) {
                let group = "\(county(key.county))\(key.year.map { "\($0)年度" } ?? "年度不明")"
                if total.int64 == nil { rows.append(row(ledger, "\(group)合计超出可显示的范围（\(total)分）：请核对该组的各笔款项")) }
                if column == "disbursed", let c = key.county, let year = key.year, let target = targets[MoneyModel.CountyYear(c, year)],
                    total > Total(target.fen)
                {
                    rows.append(row(ledger, ProgrammeCheck.overTarget(county: county(c), year: year, disbursed: total, target: target.fen)))
                }
            }
        }
        rows += try projectMoneyRows(plan, row: row, county: county)
        rows += try missingItemRows(plan, row: row)
        return rows
    }

    /// Per project: more disbursed than allocated, spending with nothing funded, and entries
    /// booked to another county than the project's or paying a stage it has not reached.
    private func projectMoneyRows(
        _ plan: Programme, row: (String, String, Timestamp?) -> MoneyReviewRow, county: (String?) -> String
    ) throws(SyncNodeError) -> [MoneyReviewRow] {
        var rows: [MoneyReviewRow] = []
        for (project, money) in try projectMoney().sorted(by: { $0.key < $1.key }) {
            if money.disbursed > money.allocated {
                rows.append(
                    row(
                        "projects/\(project)",
                        ProgrammeCheck.overAllocation(project: project, disbursed: money.disbursed, allocated: money.allocated), nil))
            }
            if money.spent.isPositive, !money.allocated.isPositive, !money.disbursed.isPositive {
                rows.append(row("projects/\(project)", ProgrammeCheck.spentUnfunded(project: project), nil))
            }
        }
        let projects = Dictionary(
            try currentValues("projects", fields: ["county"]).map { ($0.recordID, $0.values["county"]?.description) }, uniquingKeysWith: { a, _ in a }
        )
        let stages = try projectStages()
        let check = ProgrammeCheck(plan)
        for column in ["allocated", "disbursed", "spent"] {
            guard let ledger = moneyLedger(plan, column) else { continue }
            let cancelled = try cancelledEntries(ledger: ledger)
            for (key, total) in try projectMoneyTotals(ledger: ledger).sorted(by: {
                ($0.key.project, $0.key.county ?? "") < ($1.key.project, $1.key.county ?? "")
            })
            where total.isPositive {
                var reasons: [String] = []
                if let owner = projects[key.project] ?? nil, owner != key.county {
                    reasons.append(ProgrammeCheck.wrongCounty(project: key.project, owner: county(owner), county: key.county ?? "", plan))
                }
                if column == "disbursed", let stage = key.stage,
                    let why = check.paymentBeforeStage(project: key.project, payment: stage, at: stages[key.project])
                {
                    reasons.append(why)
                }
                guard !reasons.isEmpty else { continue }
                for (entryID, ts) in try moneyEntries(ledger: ledger, key, cancelled: cancelled) {
                    rows.append(row("\(ledger)/\(entryID)", reasons.joined(separator: "；"), ts))
                }
            }
        }
        return rows
    }

    /// Events naming a supervision item or task that does not exist here.
    private func missingItemRows(_ plan: Programme, row: (String, String, Timestamp?) -> MoneyReviewRow) throws(SyncNodeError) -> [MoneyReviewRow] {
        var rows: [MoneyReviewRow] = []
        for kind in plan.kinds where kind.isLedger && kind.fields.contains(where: { $0.name == "item" }) {
            let items = Set(try currentValues("supervision", fields: []).map(\.recordID) + currentValues("tasks", fields: []).map(\.recordID))
            let named = try read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT entry_id, ts, json_extract(fields, '$.item') AS item FROM ledger_entry
                        WHERE ledger = ? AND json_type(fields, '$.item') = 'text' AND \(MoneySQL.notReversal("fields"))
                        """, arguments: [kind.ledger!])
            }
            for found in named where !items.contains(found["item"] as String) {
                let ts = Timestamp(bytes: found["ts"] as Data)!
                rows.append(row("\(kind.ledger!)/\(found["entry_id"] as String)", ProgrammeCheck.noItem(found["item"]), ts))
            }
        }
        return rows
    }

    /// The entries (id, clock) that count in one project group of `ledger`, less `cancelled`
    /// ([id, origin hex]); read through the projection's project index.
    private func moneyEntries(ledger: String, _ key: ProjectMoneyKey, cancelled: Set<[String]>) throws(SyncNodeError) -> [(String, Timestamp)] {
        try read { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: "SELECT entry_id, ts FROM ledger_money WHERE ledger = ? AND project = ? AND county IS ? AND stage IS ? ORDER BY ts"),
                arguments: [ledger, key.project, key.county, key.stage]
            ).compactMap { row in
                let id: String = row["entry_id"]
                let ts = Timestamp(bytes: row["ts"] as Data)!
                return cancelled.contains([id, ts.node.hex]) ? nil : (id, ts)
            }
        }
    }

    /// The entries of `ledger` a reversal cancels (`LedgerRule.reversals`).
    public func cancelledEntryKeys(ledger: String) throws(SyncNodeError) -> Set<EntryKey> {
        try read { db in
            let judged = try Self.reversalVerdicts(db, ledger: ledger)
            var out = Set<EntryKey>()
            for case .cancels(let t) in judged.verdicts.values {
                out.insert(EntryKey(entryID: judged.entries[t].entryID, origin: judged.entries[t].origin))
            }
            return out
        }
    }

    /// The entries of `ledger` a reversal cancels, as [id, origin hex].
    func cancelledEntries(ledger: String) throws(SyncNodeError) -> Set<[String]> {
        Set(try cancelledEntryKeys(ledger: ledger).map { [$0.entryID, $0.origin.hex] })
    }
}

/// What `Store.cachedMoney` keeps, for one vector.
struct MoneyCache: Sendable {
    var vector: VersionVector
    var projectMoney: [String: ProjectMoney]?
    var reviewRows: [(cells: [ReportTable.Cell], ts: Timestamp?)]?

    init(vector: VersionVector) { self.vector = vector }
}
