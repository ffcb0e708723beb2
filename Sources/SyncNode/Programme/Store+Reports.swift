import Foundation
import GRDB
import SyncProtocol

/// One report of HQ's merged view as data: typed columns and rows. The command line renders it as
/// a table, CSV, JSON or a sheet; the numbers are the same in each.
public struct ReportTable: Sendable, Equatable {
    public enum ColumnType: String, Sendable { case text, int, money, percent, date, time }

    public struct Column: Sendable, Equatable {
        public var id: String
        public var label: String
        public var type: ColumnType
    }

    public enum Cell: Sendable, Equatable {
        case text(String)
        case int(Int64)
        case none
    }

    public var name: String
    public var title: String
    public var columns: [Column]
    public var rows: [[Cell]]
}

/// Which rows a report keeps.
public struct ReportFilter: Sendable {
    public var county: String?
    public var year: Int?
    public var workArea: String?

    public init(county: String? = nil, year: Int? = nil, workArea: String? = nil) {
        self.county = county
        self.year = year
        self.workArea = workArea
    }
}

extension Store {
    public static let reportNames = ["funds", "projects", "activities", "tasks", "review", "sync"]

    public func report(_ name: String, filter: ReportFilter = ReportFilter(), today: String) throws(SyncNodeError) -> ReportTable {
        switch name {
        case "funds": return try fundsReport(filter)
        case "projects": return try projectsReport(filter, today: today)
        case "activities": return try activitiesReport(filter)
        case "tasks": return try tasksReport(filter, today: today)
        case "review": return try reviewReport()
        case "sync": return try syncReport()
        default:
            let hint = ProgrammeCheck.nearest(name, in: Self.reportNames).map { "did you mean \($0)? " } ?? ""
            throw .invalid("no report '\(name)'; \(hint)reports: \(Self.reportNames.joined(separator: ", "))")
        }
    }

    /// The year an entry counts in: its `year` field (targets), else the year of its date.
    static func year(of fields: [String: Value]) -> Int? {
        if case .int(let y)? = fields["year"] { return Int(y) }
        if case .text(let y)? = fields["year"], let year = Int(y) { return year }
        if case .text(let d)? = fields["date"], d.count >= 4 { return Int(d.prefix(4)) }
        return nil
    }

    /// Funds per county and year, then per county over the whole programme: target, allocated,
    /// disbursed, spent, donated, % of target disbursed, and when the county's data last arrived.
    func fundsReport(_ filter: ReportFilter) throws(SyncNodeError) -> ReportTable {
        let plan = try programme()
        let columnsOf = ["target", "allocated", "disbursed", "spent", "donated"]
        struct Key: Hashable {
            var county: String
            var year: Int
        }
        var sums: [Key: [String: Int64]] = [:]
        for kind in plan.moneyKinds {
            guard let ledger = kind.ledger, let column = kind.money, columnsOf.contains(column) else { continue }
            for (key, total) in try ledgerTotals(ledger: ledger, by: .countyYear) {
                let parts = key.split(separator: "|")
                guard parts.count == 2, let year = Int(parts[1]) else { continue }
                sums[Key(county: String(parts[0]), year: year), default: [:]][column, default: 0] += total
            }
        }
        let lastHeard = try lastReceivedBySite()
        var rows: [[ReportTable.Cell]] = []
        for c in plan.counties where filter.county == nil || filter.county == c.id {
            var total: [String: Int64] = [:]
            for year in plan.yearRange {
                let s = sums[Key(county: c.id, year: year)] ?? [:]
                for k in columnsOf { total[k, default: 0] += s[k] ?? 0 }
                if filter.year == nil || filter.year == year {
                    rows.append(Self.fundsRow(c.name, String(year), s, columnsOf, lastHeard[c.id]))
                }
            }
            if filter.year == nil {
                rows.append(Self.fundsRow(c.name, "\(plan.yearRange.lowerBound)–\(plan.yearRange.upperBound)", total, columnsOf, lastHeard[c.id]))
            }
        }
        return ReportTable(
            name: "funds", title: "资金 Funds",
            columns: [
                .init(id: "county", label: "县", type: .text), .init(id: "year", label: "年度", type: .text),
                .init(id: "target", label: "目标(万元)", type: .money), .init(id: "allocated", label: "安排(万元)", type: .money),
                .init(id: "disbursed", label: "拨付(万元)", type: .money), .init(id: "spent", label: "支出(万元)", type: .money),
                .init(id: "donated", label: "捐赠(万元)", type: .money), .init(id: "disbursedPct", label: "拨付占目标%", type: .percent),
                .init(id: "lastReceived", label: "最后收到数据", type: .time),
            ], rows: rows)
    }

    private static func fundsRow(_ county: String, _ year: String, _ s: [String: Int64], _ columns: [String], _ last: UInt64?) -> [ReportTable.Cell] {
        let target = s["target"] ?? 0
        // Percent in hundredths (4550 = 45.50%).
        let pct: ReportTable.Cell = target > 0 ? .int((s["disbursed"] ?? 0) * 10_000 / target) : .none
        return [.text(county), .text(year)] + columns.map { .int(s[$0] ?? 0) } + [pct, last.map { .int(Int64($0)) } ?? .none]
    }

    /// The latest time a transaction of any node of each site was received here (own site: now).
    public func lastReceivedBySite() throws(SyncNodeError) -> [String: UInt64] {
        let sites = try registrySites()
        var out: [String: UInt64] = [:]
        for (node, millis) in try lastReceivedByNode() {
            guard let site = sites[node] else { continue }
            out[site] = max(out[site] ?? 0, millis)
        }
        return out
    }

    /// Projects with their county, work area, stage, progress, planned end, funds and a late flag.
    func projectsReport(_ filter: ReportFilter, today: String) throws(SyncNodeError) -> ReportTable {
        let plan = try programme()
        let events = try ledger("project_events")
        let progress = Self.latestEventValues(events, field: "progress_pct")
        let stages = Self.latestEventValues(events, field: "stage")
        let allocated = try ledgerTotals(ledger: "allocations", by: .project)
        let disbursed = try ledgerTotals(ledger: "disbursements", by: .project)
        let done = Set(["completed", "accepted", "handed_over", "cancelled"])
        var rows: [[ReportTable.Cell]] = []
        for r in try currentValues("projects", fields: ["name", "county", "work_area", "planned_end"]) {
            let county = r.values["county"]?.description ?? ""
            let area = r.values["work_area"]?.description ?? ""
            if let c = filter.county, c != county { continue }
            if let w = filter.workArea, w != area { continue }
            let stage = stages[r.recordID]?.description ?? "planned"
            let end = r.values["planned_end"]?.description ?? ""
            let late = !end.isEmpty && end < today && !done.contains(stage)
            rows.append([
                .text(r.recordID), .text(r.values["name"]?.description ?? ""), .text(plan.county(county)?.name ?? county),
                .text(plan.workArea(area)?.name ?? area), .text(stage),
                progress[r.recordID].flatMap { if case .int(let n) = $0 { .int(n) } else { nil } } ?? .none,
                end.isEmpty ? .none : .text(end), .int(allocated[r.recordID] ?? 0), .int(disbursed[r.recordID] ?? 0), .text(late ? "late" : ""),
            ])
        }
        return ReportTable(
            name: "projects", title: "项目 Projects",
            columns: [
                .init(id: "id", label: "编号", type: .text), .init(id: "name", label: "项目", type: .text), .init(id: "county", label: "县", type: .text),
                .init(id: "workArea", label: "工作领域", type: .text), .init(id: "stage", label: "阶段", type: .text),
                .init(id: "progressPct", label: "进度%", type: .int), .init(id: "plannedEnd", label: "计划完工", type: .date),
                .init(id: "allocated", label: "安排(万元)", type: .money), .init(id: "disbursed", label: "拨付(万元)", type: .money),
                .init(id: "late", label: "逾期", type: .text),
            ], rows: rows)
    }

    /// Activities per county, work area and year: entries, people, attendees, sales.
    func activitiesReport(_ filter: ReportFilter) throws(SyncNodeError) -> ReportTable {
        let plan = try programme()
        struct Key: Hashable, Comparable {
            var county: String
            var area: String
            var year: Int
            var kind: String
            static func < (a: Key, b: Key) -> Bool { (a.county, a.area, a.year, a.kind) < (b.county, b.area, b.year, b.kind) }
        }
        var sums: [Key: (entries: Int64, people: Int64, attendees: Int64, amount: Int64)] = [:]
        for e in try ledger("activities") where e.counts {
            guard case .text(let county)? = e.fields["county"], let year = Self.year(of: e.fields) else { continue }
            let area = e.fields["work_area"]?.description ?? ""
            if let c = filter.county, c != county { continue }
            if let y = filter.year, y != year { continue }
            if let w = filter.workArea, w != area { continue }
            let key = Key(county: county, area: area, year: year, kind: e.fields["kind"]?.description ?? "")
            var s = sums[key] ?? (0, 0, 0, 0)
            s.entries += 1
            if case .int(let n)? = e.fields["people"] { s.people += n }
            if case .int(let n)? = e.fields["attendees"] { s.attendees += n }
            if case .int(let n)? = e.fields["amount_fen"] { s.amount += n }
            sums[key] = s
        }
        let rows: [[ReportTable.Cell]] = sums.keys.sorted().map { k in
            let s = sums[k]!
            return [
                .text(plan.county(k.county)?.name ?? k.county), .text(plan.workArea(k.area)?.name ?? k.area), .text(String(k.year)),
                .text(plan.kind(k.kind)?.name ?? k.kind), .int(s.entries), .int(s.people), .int(s.attendees), .int(s.amount),
            ]
        }
        return ReportTable(
            name: "activities", title: "交流与活动 Activities",
            columns: [
                .init(id: "county", label: "县", type: .text), .init(id: "workArea", label: "工作领域", type: .text),
                .init(id: "year", label: "年度", type: .text), .init(id: "kind", label: "类型", type: .text),
                .init(id: "entries", label: "次数", type: .int), .init(id: "people", label: "人数", type: .int),
                .init(id: "attendees", label: "参训人数", type: .int), .init(id: "amount", label: "金额(万元)", type: .money),
            ], rows: rows)
    }

    /// Tasks of the decomposition table and supervision items, by lead unit: the original due
    /// date, the latest extension, and a state computed from the events (closed, done, sent back,
    /// overdue or open); overdue is computed here, never stored.
    func tasksReport(_ filter: ReportFilter, today: String) throws(SyncNodeError) -> ReportTable {
        var events: [String: [(date: String, ts: Timestamp, event: String, newDue: String?)]] = [:]
        for e in try ledger("supervision_events") where e.counts {
            guard case .text(let item)? = e.fields["item"], case .text(let event)? = e.fields["event"] else { continue }
            events[item, default: []].append((e.fields["date"]?.description ?? "", e.ts, event, e.fields["new_due"]?.description))
        }
        var rows: [[ReportTable.Cell]] = []
        for (collection, kind) in [("tasks", "task"), ("supervision", "supervision")] {
            for r in try currentValues(collection, fields: ["title", "lead_unit", "due", "work_area", "county"]) {
                if let w = filter.workArea, r.values["work_area"]?.description != w { continue }
                if let c = filter.county, let county = r.values["county"]?.description, county != c { continue }
                let history = (events[r.recordID] ?? []).sorted { ($0.date, $0.ts) < ($1.date, $1.ts) }
                let due = r.values["due"]?.description ?? ""
                let extended = history.last { $0.event == "extension" && $0.newDue != nil }?.newDue
                let effective = extended ?? due
                let state: String
                switch history.last(where: { ["completion", "closure", "send_back"].contains($0.event) })?.event {
                case "closure": state = "closed"
                case "completion": state = "done"
                default:
                    let sentBack = history.last?.event == "send_back"
                    state = !effective.isEmpty && effective < today ? "overdue" : (sentBack ? "sent back" : "open")
                }
                rows.append([
                    .text(r.values["lead_unit"]?.description ?? ""), .text(kind), .text(r.recordID), .text(r.values["title"]?.description ?? ""),
                    due.isEmpty ? .none : .text(due), extended.map { .text($0) } ?? .none,
                    .int(Int64(history.filter { $0.event == "feedback" }.count)), .text(state),
                ])
            }
        }
        func text(_ c: ReportTable.Cell) -> String { if case .text(let t) = c { t } else { "" } }
        rows.sort { (text($0[0]), text($0[2])) < (text($1[0]), text($1[2])) }
        return ReportTable(
            name: "tasks", title: "任务与督办 Tasks and supervision",
            columns: [
                .init(id: "leadUnit", label: "牵头单位", type: .text), .init(id: "kind", label: "类别", type: .text),
                .init(id: "id", label: "编号", type: .text),
                .init(id: "title", label: "事项", type: .text), .init(id: "due", label: "原定时限", type: .date),
                .init(id: "extendedTo", label: "延期至", type: .date), .init(id: "feedback", label: "反馈次数", type: .int),
                .init(id: "state", label: "状态", type: .text),
            ], rows: rows)
    }

    /// What HQ must look at: conflicts, refused transactions, entries that do not fit the plan,
    /// reversals that cancel nothing.
    ///
    /// `readingEverything` checks every entry and record instead of reading the kept lists: what a
    /// node that cannot be written does (and what the tests compare the lists with).
    func reviewReport(readingEverything: Bool = false) throws(SyncNodeError) -> ReportTable {
        let state = try planState()
        let plan = state.plan
        let labels = try nodeLabels()
        var rows: [[ReportTable.Cell]] = []
        if let why = state.unreadable {
            rows.append([
                .text("plan"), .text("\(Self.programmeCollection)/plan"),
                .text("HQ's plan cannot be read by this version (\(why)); this node checks and labels by the 2017 plan until it is upgraded"),
            ])
        }
        for c in try conflicts() {
            rows.append([
                .text("conflict"), .text("\(c.collection)/\(c.recordID).\(c.field)"),
                .text(
                    "kept \(c.winnerValue) (\(labels[c.winnerTs.node] ?? c.winnerTs.node.short)); other \(c.otherValue) (\(labels[c.otherTs.node] ?? c.otherTs.node.short))"
                ),
            ])
        }
        for r in try rejections() {
            rows.append([.text("refused"), .text("\(labels[r.origin] ?? r.origin.short)/\(r.seq)"), .text("\(r.reason) (by \(r.refusedBy))")])
        }
        let check = ProgrammeCheck(plan)
        // The kept lists (`ReviewIndex`) name the entries and records to look at; a node that
        // cannot be written (a read-only copy) looks at every one with the same conditions.
        let kept = readingEverything ? false : try refreshReviewIndex()
        // Per ledger, in the order the entries were made: reversals the ledger rule finds cancel
        // nothing, and entries that do not fit the kind they name (or the ledger's only kind). Only
        // the reversals with the entries they name, and the entries SQL does not clear as fitting
        // the plan (`PlanFit`), are read and decoded: the rest of a ledger of millions is not.
        let ledgers = Set(plan.kinds.compactMap(\.ledger))
        for ledger in ledgers.sorted() {
            let kinds = plan.kinds(inLedger: ledger)
            var found: [(ts: Timestamp, row: [ReportTable.Cell])] = []
            try read { db in
                let judged = try Self.reversalVerdicts(db, ledger: ledger)
                for (r, verdict) in judged.verdicts {
                    guard case .invalid(let why) = verdict else { continue }
                    found.append((judged.entries[r].ts, [.text("ledger"), .text("\(ledger)/\(judged.entries[r].entryID)"), .text(why)]))
                }
                let suspects = try Row.fetchCursor(
                    db,
                    sql: kept
                        ? """
                        SELECT e.entry_id, e.ts, e.fields FROM ledger_unfit u JOIN ledger_entry e
                        ON e.ledger = u.ledger AND e.entry_id = u.entry_id AND e.origin = u.origin WHERE u.ledger = ?
                        """
                        : "SELECT entry_id, ts, fields FROM ledger_entry AS e WHERE ledger = ? AND \(ReviewIndex.unfit(plan, row: "e"))",
                    arguments: [ledger])
                while let row = try suspects.next() {
                    let ts = Timestamp(bytes: row["ts"] as Data)!
                    let fields = LedgerJSON.decode(row["fields"])
                    let item = ReportTable.Cell.text("\(ledger)/\(row["entry_id"] as String)")
                    let named = fields["kind"]?.description
                    guard let kind = kinds.first(where: { $0.id == named }) ?? (named == nil && kinds.count == 1 ? kinds[0] : nil) else {
                        found.append(
                            (
                                ts,
                                [
                                    .text("plan"), item,
                                    .text("kind \(named ?? "(none)") is not one of this ledger's kinds: \(kinds.map(\.id).joined(separator: ", "))"),
                                ]
                            ))
                        continue
                    }
                    let problems = check.storedProblems(kind: kind, fields: fields)
                    if !problems.isEmpty { found.append((ts, [.text("plan"), item, .text(problems.joined(separator: "; "))])) }
                }
            }
            rows += found.sorted { $0.ts < $1.ts }.map(\.row)
        }
        // Records, per kind of the plan in its order, by id.
        if kept {
            rows += try read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT n.text AS collection, p.record_id, p.problems FROM record_problem p JOIN name n ON n.ix = p.collection
                        ORDER BY p.kind, p.record_id
                        """
                ).map { [.text("plan"), .text("\($0["collection"] as String)/\($0["record_id"] as String)"), .text($0["problems"])] }
            }
        } else {
            for kind in plan.kinds {
                guard let collection = kind.collection else { continue }
                for r in try records(collection) {
                    let problems = check.storedProblems(kind: kind, fields: r.fields)
                    if !problems.isEmpty {
                        rows.append([.text("plan"), .text("\(collection)/\(r.recordID)"), .text(problems.joined(separator: "; "))])
                    }
                }
            }
        }
        // Ledgers the plan does not name (an older or newer plan's, or the generic command's).
        for (ledger, count) in try ledgerCounts(except: ledgers) {
            rows.append([.text("plan"), .text(ledger), .text("\(count) entries in a ledger the plan does not name; they count in no report")])
        }
        return ReportTable(
            name: "review", title: "待审 Review",
            columns: [
                .init(id: "type", label: "类别", type: .text), .init(id: "item", label: "对象", type: .text),
                .init(id: "detail", label: "说明", type: .text),
            ],
            rows: rows)
    }

    /// Per registered node: site, role, when its data last arrived here, its transactions held
    /// here, and what its last request to this node told: when it was heard from, its clock's
    /// offset, its protocol, and how many of its own transactions this node did not hold yet.
    func syncReport() throws(SyncNodeError) -> ReportTable {
        var rows: [[ReportTable.Cell]] = []
        for health in try nodeHealth() {
            let entry = health.entry
            let contact = health.contact
            rows.append([
                .text(entry.label), .text(entry.site), .text(entry.role.rawValue), .text(entry.node.hex), .int(Int64(health.held)),
                health.lastReceived.map { .int(Int64($0)) } ?? .none,
                contact.map { .int(Int64($0.heard)) } ?? .none,
                health.notYetHere.map { .int(Int64($0)) } ?? .none,
                contact.map { .int(($0.skewMillis + ($0.skewMillis >= 0 ? 500 : -500)) / 1000) } ?? .none,
                contact.map { .int(Int64($0.protocolVersion)) } ?? .none,
                .text(entry.revokedAt != nil ? "revoked" : ""),
            ])
        }
        return ReportTable(
            name: "sync", title: "同步 Sync health",
            columns: [
                .init(id: "label", label: "节点", type: .text), .init(id: "site", label: "站点", type: .text),
                .init(id: "role", label: "角色", type: .text),
                .init(id: "node", label: "ID", type: .text), .init(id: "transactions", label: "已收事务", type: .int),
                .init(id: "lastReceived", label: "最后收到", type: .time), .init(id: "lastHeard", label: "最后联系", type: .time),
                .init(id: "notYetHere", label: "未到事务", type: .int), .init(id: "clockSkewSeconds", label: "时钟偏差秒", type: .int),
                .init(id: "protocol", label: "协议", type: .int), .init(id: "state", label: "状态", type: .text),
            ], rows: rows)
    }
}

/// SQL conditions on a stored entry's `fields` (its JSON), written with `IS` so that a missing
/// field makes them false rather than NULL, that hold only if
/// `ProgrammeCheck.storedProblems` finds nothing wrong with it. They may fail for a sound entry
/// (the Swift check then decides), never hold for a faulty one (a date is checked through
/// `julianday`: `date()` alone keeps 2017-02-30 as it is): the review reads and checks in
/// Swift only the entries they do not clear. The Swift check stays the one rule; this narrows the
/// rows it runs over (`ReviewTests` compares the two on entries with every kind of fault).
enum PlanFit {
    /// The entry fits the kind it names, or the ledger's only kind when it names none (the kind is
    /// read once per entry).
    static func ledger(_ plan: Programme, _ kinds: [Programme.Kind], fields: String) -> String {
        guard !kinds.isEmpty else { return "0" }
        let named = kinds.map { "WHEN \(literal($0.id)) THEN \(fits(plan, $0, fields: fields))" }.joined(separator: " ")
        let unnamed =
            kinds.count == 1 ? "CASE WHEN json_type(\(fields), '$.kind') IS NULL THEN \(fits(plan, kinds[0], fields: fields)) ELSE 0 END" : "0"
        return "CASE json_extract(\(fields), '$.kind') \(named) ELSE \(unnamed) END"
    }

    /// Every field is one of the kind's (or reserved, `_...`), and each holds what the plan allows.
    /// (Measured: one `json_each` pass per entry is slower than these per-field `json_extract`
    /// calls, 37.5 s against 19.4 s for the review at 1,000,000 entries; docs/PERFORMANCE.md.)
    static func fits(_ plan: Programme, _ kind: Programme.Kind, fields column: String) -> String {
        let fields = plan.fields(of: kind)
        var all = [
            "NOT EXISTS (SELECT 1 FROM json_each(\(column)) WHERE substr(key, 1, 1) <> '_' AND key NOT IN (\(fields.map { literal($0.storedName) }.joined(separator: ", "))))"
        ]
        for f in fields {
            let path = literal("$.\"\(f.storedName)\"")
            let type = "json_type(\(column), \(path))"
            let value = "json_extract(\(column), \(path))"
            func within(_ ids: [String]) -> String { "\(type) IS 'text' AND \(value) IN (\(ids.map(literal).joined(separator: ", ")))" }
            var ok: String
            switch f.type {
            case .text: ok = f.values.map { within($0) } ?? "\(type) IS 'text'"
            case .county: ok = within(plan.counties.map(\.id))
            case .workArea: ok = within(plan.workAreas.map(\.id))
            case .stage: ok = within(plan.allStages)
            case .project: ok = "\(type) IS 'text'"
            case .date:
                ok = "\(type) IS 'text' AND \(value) GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' AND date(julianday(\(value))) IS \(value)"
            case .year:
                let range = "BETWEEN \(plan.yearRange.lowerBound) AND \(plan.yearRange.upperBound)"
                ok =
                    "(\(type) IS 'integer' AND \(value) \(range)) OR (\(type) IS 'text' AND \(value) GLOB '[0-9][0-9][0-9][0-9]' AND CAST(\(value) AS INTEGER) \(range))"
            case .int, .money:
                ok = "\(type) IS 'integer'"
                if let min = f.min { ok += " AND \(value) >= \(min)" }
                if let max = f.max { ok += " AND \(value) <= \(max)" }
            case .real: ok = "\(type) IS 'integer'"  // a real is stored as an object: left to the Swift check
            }
            all.append(f.isRequired ? "(\(ok))" : "(\(type) IS NULL OR (\(ok)))")
        }
        return "(" + all.joined(separator: " AND ") + ")"
    }

    static func literal(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
}

/// What this node knows of a registered node's syncing.
public struct NodeHealth: Sendable {
    public var entry: RegistryEntry
    /// How many of its transactions this node holds.
    public var held: UInt64
    /// When its last transaction arrived here.
    public var lastReceived: UInt64?
    /// What its last request to this node told.
    public var contact: NodeContact?
    /// Its own transactions it held at its last pull from this node that this node still lacks.
    public var notYetHere: UInt64? { contact?.ownSeq.map { $0 > held ? $0 - held : 0 } }
}

extension Store {
    /// Every registered node's sync health (HQ's sync report, `node list`).
    public func nodeHealth() throws(SyncNodeError) -> [NodeHealth] {
        let received = try lastReceivedByNode()
        let vector = try vector()
        let contacts = try contacts()
        return try registry().map { NodeHealth(entry: $0, held: vector[$0.node], lastReceived: received[$0.node], contact: contacts[$0.node]) }
    }

    /// When the last transaction of each node (own included) was received here, in ms since 1970.
    ///
    /// An origin's transactions enter the log in seq order (the vector is gap-free; held work waits
    /// outside it), so its last arrival is its highest seq's: one seek per node on the log's key,
    /// not a scan of the whole log (whose large bodies sit before `received`).
    public func lastReceivedByNode() throws(SyncNodeError) -> [NodeID: UInt64] {
        try read { db in
            var out: [NodeID: UInt64] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT n.id AS id, (SELECT l.received FROM log l WHERE l.origin = n.ix ORDER BY l.seq DESC LIMIT 1) AS received
                    FROM node n
                    """)
            {
                if let node = NodeID(bytes: row["id"] as Data), let received = row["received"] as Int64? { out[node] = UInt64(received) }
            }
            return out
        }
    }

    /// The site of every registered node.
    public func registrySites() throws(SyncNodeError) -> [NodeID: String] {
        Dictionary(try registry().map { ($0.node, $0.site) }, uniquingKeysWith: { a, _ in a })
    }
}

extension Store {
    /// How ledger totals are grouped.
    public enum TotalsKey: Sendable {
        /// By county and year (an entry's `year` field, else the year of its `date`).
        case countyYear
        /// By the project an entry names.
        case project

        /// The columns of `ledger_money` (migration v6) it groups by.
        var columns: String {
            switch self {
            case .countyYear: "county, year"
            case .project: "project"
            }
        }

        /// The table of totals per group the triggers of `ledger_money` keep (migration v9).
        var totals: String {
            switch self {
            case .countyYear: "ledger_money_total"
            case .project: "ledger_project_total"
            }
        }

        func key(_ row: Row) -> String? {
            switch self {
            case .countyYear:
                guard let county = row[0] as String?, let year = row[1] as Int64? else { return nil }
                return "\(county)|\(year)"
            case .project:
                return row[0] as String?
            }
        }
    }

    /// The sum of `amount_fen` (every money kind of a plan keeps its amount there) per group over
    /// the entries of `ledger` that count: every entry that is not a reversal (the totals kept per
    /// group as entries are written), less each entry a reversal cancels
    /// (`LedgerRule.reversals`, decided over the reversals and the entries they name, which is all
    /// the rule looks at; the cancelled amount leaves the cancelled entry's group).
    ///
    /// `county` and `year` (with `.countyYear`) keep one group: what a clerk's write needs, read
    /// through the projection's index instead of summing the whole ledger.
    public func ledgerTotals(ledger: String, by grouping: TotalsKey, county: String? = nil, year: Int? = nil) throws(SyncNodeError)
        -> [String: Int64]
    {
        let one = grouping == .countyYear ? county.flatMap { c in year.map { (c, $0) } } : nil
        return try read { db in
            var totals: [String: Int64] = [:]
            // Entries that are not reversals, from the totals the triggers keep per group.
            var arguments: StatementArguments = [ledger]
            if let (c, y) = one { arguments += [c, y] }
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT \(grouping.columns), total FROM \(grouping.totals)
                    WHERE ledger = ? \(one != nil ? "AND county = ? AND year = ?" : "")
                    """, arguments: arguments)
            while let row = try rows.next() {
                guard let key = grouping.key(row), let total = row["total"] as Int64? else { continue }
                totals[key, default: 0] += total
            }
            // A cancelled entry comes off the group the projection counted it in (its row there,
            // so the key is the one the sum above used, whatever its fields hold).
            let judged = try Self.reversalVerdicts(db, ledger: ledger)
            for (_, verdict) in judged.verdicts {
                guard case .cancels(let t) = verdict,
                    let row = try Row.fetchOne(
                        db,
                        sql: "SELECT \(grouping.columns), amount_fen FROM ledger_money WHERE ledger = ? AND entry_id = ? AND origin = ?",
                        arguments: [ledger, judged.entries[t].entryID, Data(judged.entries[t].origin.bytes)]),
                    let key = grouping.key(row), let amount = row["amount_fen"] as Int64?,
                    one.map({ "\($0.0)|\($0.1)" == key }) ?? true
                else { continue }
                totals[key, default: 0] -= amount
            }
            return totals
        }
    }
}

extension Store {
    /// The collections that hold records here, and the ledgers that hold entries (two scans:
    /// for messages and the review queue, not for every command).
    public func storedNames() throws(SyncNodeError) -> (collections: [String], ledgers: [String]) {
        try read { db in
            let collections = try String.fetchAll(db, sql: "SELECT DISTINCT n.text FROM record r JOIN name n ON n.ix = r.collection ORDER BY 1")
            return (collections, try Self.heldLedgers(db))
        }
    }

    /// The reversals of `ledger` and the entries they name, with the ledger rule's verdict on each
    /// reversal: everything `LedgerRule.reversals` looks at, without reading the rest of the ledger.
    static func reversalVerdicts(_ db: Database, ledger: String) throws -> (entries: [LedgerRule.Entry], verdicts: [Int: LedgerRule.Reversal]) {
        func entry(_ row: Row) -> LedgerRule.Entry {
            LedgerRule.Entry(entryID: row["entry_id"], ts: Timestamp(bytes: row["ts"] as Data)!, fields: LedgerJSON.decode(row["fields"]))
        }
        var entries = try Row.fetchAll(
            db,
            // The partial index of reversals (v9): without statistics SQLite would pick the
            // primary key and read the whole ledger's JSON.
            sql: """
                SELECT entry_id, ts, fields FROM ledger_entry INDEXED BY ledger_entry_reversal
                WHERE ledger = ? AND json_extract(fields, '$._reverses') IS NOT NULL
                """,
            arguments: [ledger]
        ).map(entry)
        guard !entries.isEmpty else { return ([], [:]) }
        for id in Set(entries.compactMap(\.reverses)) {
            entries += try Row.fetchAll(
                db,
                sql:
                    "SELECT entry_id, ts, fields FROM ledger_entry WHERE ledger = ? AND entry_id = ? AND json_extract(fields, '$._reverses') IS NULL",
                arguments: [ledger, id]
            ).map(entry)
        }
        return (entries, LedgerRule.reversals(entries))
    }

    /// The number of entries in each ledger held here but not in `except` (the ledgers are found
    /// by one seek of the primary key each, and only those counted: not a scan of every entry).
    func ledgerCounts(except: Set<String>) throws(SyncNodeError) -> [(String, Int)] {
        try read { db in
            try Self.heldLedgers(db).filter { !except.contains($0) }.map { ledger in
                (ledger, try Int.fetchOne(db, sql: "SELECT count(*) FROM ledger_entry WHERE ledger = ?", arguments: [ledger]) ?? 0)
            }
        }
    }

    /// The ledgers that hold entries, in order, one seek of the primary key each.
    static func heldLedgers(_ db: Database) throws -> [String] {
        guard let first = try String.fetchOne(db, sql: "SELECT min(ledger) FROM ledger_entry") else { return [] }
        var out = [first]
        let next = try db.cachedStatement(sql: "SELECT ledger FROM ledger_entry WHERE ledger > ? ORDER BY ledger LIMIT 1")
        while let ledger = try String.fetchOne(next, arguments: [out.last!]) { out.append(ledger) }
        return out
    }

    /// Nil when `name` is a collection (or, with `ledger`, a ledger) this node holds or its plan
    /// names; else a message naming the known ones.
    public func unknownName(_ name: String, ledger: Bool) throws(SyncNodeError) -> String? {
        let plan = try programme()
        if ledger ? plan.kinds.contains(where: { $0.ledger == name }) : plan.kinds.contains(where: { $0.collection == name }) { return nil }
        // One indexed probe for the name asked for; the list of known names only on the way to an error.
        let held = try read { db in
            ledger
                ? try Bool.fetchOne(db, sql: "SELECT 1 FROM ledger_entry WHERE ledger = ? LIMIT 1", arguments: [name]) ?? false
                : try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM record WHERE collection = (SELECT ix FROM name WHERE text = ?) LIMIT 1", arguments: [name]) ?? false
        }
        if held { return nil }
        let stored = try storedNames()
        var known = Set(ledger ? stored.ledgers : stored.collections)
        known.formUnion(plan.kinds.compactMap { ledger ? $0.ledger : $0.collection })
        if !ledger { known.formUnion([PolicyRules.registryCollection, PolicyRules.policyCollection, Self.programmeCollection]) }
        guard !known.contains(name) else { return nil }
        let hint = ProgrammeCheck.nearest(name, in: Array(known)).map { "did you mean \($0)? " } ?? ""
        return "no \(ledger ? "ledger" : "collection") '\(name)' here; \(hint)known: \(known.sorted().joined(separator: ", "))"
    }
}
