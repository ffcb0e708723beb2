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
        /// A column of ids for machines (`--json`), beside the column of words people read.
        public var machine = false
    }

    public enum Cell: Sendable, Equatable {
        case text(String)
        case int(Int64)
        /// An amount in fen whatever its column's type (a view whose rows mix amounts and counts).
        case money(Int64)
        case none
    }

    public var name: String
    public var title: String
    public var columns: [Column]
    public var rows: [[Cell]]

    /// The table people read (text, CSV, XLSX, pages): without the machines' columns of ids.
    public var forPeople: ReportTable {
        guard columns.contains(where: \.machine) else { return self }
        let keep = columns.indices.filter { !columns[$0].machine }
        return ReportTable(name: name, title: title, columns: keep.map { columns[$0] }, rows: rows.map { row in keep.map { row[$0] } })
    }
}

/// A task's or supervision item's state, computed from its events; overdue is never stored.
public enum TaskState: String, Sendable, CaseIterable {
    case closed, done, overdue
    case sentBack = "sent back"
    case open

    /// What people read.
    public var word: String {
        switch self {
        case .closed: "已办结"
        case .done: "已完成"
        case .overdue: "逾期"
        case .sentBack: "已退回"
        case .open: "办理中"
        }
    }
}

/// A task or supervision item as its events leave it (`Store.taskStatuses`).
public struct TaskStatus: Sendable, Equatable {
    public var kind: String
    public var id: String
    public var title: String
    public var leadUnit: String
    /// Nil: every county's (the district's own).
    public var county: String?
    public var leader: String?
    public var person: String?
    /// The original due date (may be empty for a task without one).
    public var due: String
    public var extendedTo: String?
    /// The day it was first reported done (completion or closure), when it is done or closed.
    public var finishedOn: String?
    public var feedback: Int
    public var state: TaskState

    /// The due date that counts: the latest extension, else the original.
    public var effectiveDue: String { extendedTo ?? due }

    /// Days past the due date that counts: until `today` while it is not done, until the day it
    /// was done when it was done late; nil when it is not late (or has no due date).
    public func daysLate(today: String) -> Int? {
        guard !effectiveDue.isEmpty, let due = CivilDate(effectiveDue) else { return nil }
        let end = state == .done || state == .closed ? finishedOn.flatMap(CivilDate.init) : CivilDate(today)
        guard let end, end.day > due.day else { return nil }
        return end.day - due.day
    }
}

/// The projects report's `late` words: one definition, read by the report and the dashboard.
public enum Lateness {
    /// Past its planned end and not finished.
    public static let overdue = "逾期"
    /// Finished after its planned end.
    public static let finishedLate = "延期完工"
}

/// How an activity is split in the reports: by the values of its kind's fields that take one of
/// a list (direction, status, type, destination, channel, trainee group, level...), in the plan's
/// field order. One definition for the activities report and the assessment view.
public enum ActivityDetail {
    /// The entry's classifying values, in field order (absent fields left out).
    public static func values(of fields: [String: Value], kind: Programme.Kind?) -> [String] {
        guard let kind else { return [] }
        return kind.fields.filter { !($0.values ?? []).isEmpty }.compactMap { f in
            guard case .text(let v)? = fields[f.name], !v.isEmpty else { return nil }
            return "\(f.name)=\(v)"
        }
    }

    /// The same in the plan's words: `东丽派往受援县 · 教师 · 已到岗`.
    public static func words(_ values: [String], kind: Programme.Kind?, plan: Programme) -> String {
        values.map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { return pair }
            return plan.label(parts[0], parts[1], kind: kind?.id)
        }.joined(separator: " · ")
    }
}

/// Money of the funds report summed per budget year and over the programme (targets beside the
/// ledgers' columns): a county's rows, then the district's.
struct FundsSum {
    var perYear: [Int: (target: Total, sums: [String: Total])] = [:]
    var target = Total.zero
    var sums: [String: Total] = [:]

    init(years: ClosedRange<Int>) {
        for year in years { perYear[year] = (.zero, [:]) }
    }

    mutating func add(year: Int, target fen: Int64, _ s: [String: Total]) {
        perYear[year, default: (.zero, [:])].target.add(fen)
        Self.add(&perYear[year, default: (.zero, [:])].sums, s)
        target.add(fen)
        Self.add(&sums, s)
    }

    /// Money outside the plan's years counts in the programme's total only.
    mutating func add(outside s: [String: Total]) { Self.add(&sums, s) }

    mutating func add(_ other: FundsSum) {
        for (year, y) in other.perYear {
            perYear[year, default: (.zero, [:])].target.add(y.target)
            Self.add(&perYear[year, default: (.zero, [:])].sums, y.sums)
        }
        target.add(other.target)
        Self.add(&sums, other.sums)
    }

    func year(_ year: Int) -> (Total, [String: Total]) { perYear[year].map { ($0.target, $0.sums) } ?? (.zero, [:]) }

    static func add(_ into: inout [String: Total], _ s: [String: Total]) { for (k, v) in s { into[k, default: .zero].add(v) } }
}

/// Which rows a report keeps.
public struct ReportFilter: Sendable {
    public var county: String?
    public var year: Int?
    public var workArea: String?
    /// Only entries whose submission HQ approved (the activities report).
    public var approvedOnly: Bool

    public init(county: String? = nil, year: Int? = nil, workArea: String? = nil, approvedOnly: Bool = false) {
        self.county = county
        self.year = year
        self.workArea = workArea
        self.approvedOnly = approvedOnly
    }
}

extension Store {
    public static let reportNames = ["funds", "projects", "activities", "assessment", "tasks", "notice", "review", "sync"]

    public func report(_ name: String, filter: ReportFilter = ReportFilter(), today: String) throws(SyncNodeError) -> ReportTable {
        switch name {
        case "funds": return try fundsReport(filter)
        case "projects": return try projectsReport(filter, today: today)
        case "activities": return try activitiesReport(filter)
        case "tasks": return try tasksReport(filter, today: today)
        case "assessment": return try assessmentReport(filter)
        case "notice": return try noticeReport(filter, today: today)
        case "review": return try reviewReport()
        case "sync": return try syncReport()
        default:
            let hint = ProgrammeCheck.nearest(name, in: Self.reportNames).map { "did you mean \($0)? " } ?? ""
            throw .invalid("no report '\(name)'; \(hint)reports: \(Self.reportNames.joined(separator: ", "))")
        }
    }

    /// Funds per county and budget year, then per county over the whole programme: target (the
    /// plan's yearly aid unless HQ set another, and which it is), allocated, disbursed, spent,
    /// donated, % of target disbursed, what remains to disburse, and when the county's data last
    /// arrived; then the district's 合计 rows (the counties' rows summed). Money of a county
    /// outside the plan's years, and money of no county of the plan, has rows of its own: no
    /// counted amount is absent from every row (`MoneyModel`).
    func fundsReport(_ filter: ReportFilter) throws(SyncNodeError) -> ReportTable {
        let plan = try programme()
        var sums: [MoneyKey: [String: Total]] = [:]
        for column in Self.fundsColumns {
            guard let ledger = moneyLedger(plan, column) else { continue }
            for (key, total) in try moneyTotals(ledger: ledger) { sums[key, default: [:]][column, default: .zero].add(total) }
        }
        let targets = try targets()
        let lastHeard = try lastReceivedBySite()
        let span = "\(plan.yearRange.lowerBound)–\(plan.yearRange.upperBound)"
        var rows: [[ReportTable.Cell]] = []
        var district = FundsSum(years: plan.yearRange)
        for c in plan.counties where filter.county == nil || filter.county == c.id {
            var county = FundsSum(years: plan.yearRange)
            for year in plan.yearRange {
                let s = sums[MoneyKey(county: c.id, year: year)] ?? [:]
                let target = targets[MoneyModel.CountyYear(c.id, year)]
                county.add(year: year, target: target?.fen ?? 0, s)
                if filter.year == nil || filter.year == year {
                    rows.append(
                        Self.fundsRow(
                            c.name, c.id, String(year), target: Total(target?.fen ?? 0), basis: Self.targetBasis(target), s, last: lastHeard[c.id]))
                }
            }
            // Money of the county whose budget year is outside the plan's, or not known.
            var outside: [String: Total] = [:]
            for (key, s) in sums where key.county == c.id && !(key.year.map(plan.yearRange.contains) ?? false) { FundsSum.add(&outside, s) }
            if !outside.isEmpty, filter.year == nil {
                rows.append(Self.fundsRow(c.name, c.id, Self.outsideYears, target: nil, basis: "", outside, last: lastHeard[c.id]))
            }
            county.add(outside: outside)
            if filter.year == nil {
                rows.append(Self.fundsRow(c.name, c.id, span, target: county.target, basis: "", county.sums, last: lastHeard[c.id]))
            }
            district.add(county)
        }
        if filter.county == nil {
            for year in plan.yearRange where filter.year == nil || filter.year == year {
                let (target, s) = district.year(year)
                rows.append(Self.fundsRow(Self.districtTotal, "district", String(year), target: target, basis: "", s, last: nil))
            }
            if filter.year == nil {
                rows.append(Self.fundsRow(Self.districtTotal, "district", span, target: district.target, basis: "", district.sums, last: nil))
            }
        }
        // Money of no county of the plan: counted, shown, and listed in the review.
        var unplaced: [String: Total] = [:]
        let planCounties = Set(plan.counties.map(\.id))
        for (key, s) in sums where !(key.county.map(planCounties.contains) ?? false) { FundsSum.add(&unplaced, s) }
        if !unplaced.isEmpty, filter.county == nil, filter.year == nil {
            rows.append(Self.fundsRow(Self.noCounty, nil, Self.outsideYears, target: nil, basis: "", unplaced, last: nil))
        }
        return ReportTable(
            name: "funds", title: "资金 Funds",
            columns: [
                .init(id: "county", label: "县", type: .text), .init(id: "year", label: "年度", type: .text),
                .init(id: "target", label: "目标(万元)", type: .money), .init(id: "targetBasis", label: "目标依据", type: .text),
                .init(id: "allocated", label: "安排(万元)", type: .money), .init(id: "disbursed", label: "拨付(万元)", type: .money),
                .init(id: "spent", label: "支出(万元)", type: .money), .init(id: "donated", label: "捐赠(万元)", type: .money),
                .init(id: "disbursedPct", label: "拨付占目标%", type: .percent), .init(id: "remaining", label: "待拨付(万元)", type: .money),
                .init(id: "lastReceived", label: "最后收到数据", type: .time), .init(id: "countyId", label: "县", type: .text, machine: true),
            ], rows: rows)
    }

    /// The funds report's money columns after the target.
    static let fundsColumns = ["allocated", "disbursed", "spent", "donated"]

    /// One row of the funds report: `remaining` is the target less what was disbursed (negative
    /// when more was disbursed than the target).
    static func fundsRow(
        _ county: String, _ countyID: String?, _ year: String, target: Total?, basis: String, _ s: [String: Total], last: UInt64?
    ) -> [ReportTable.Cell] {
        let disbursed = s["disbursed"] ?? .zero
        let pct = target.flatMap { MoneyModel.percent(disbursed, of: $0) }
        let remaining = target.map { t in
            var r = t
            r.subtract(disbursed)
            return r
        }
        return [.text(county), .text(year), target.map(ReportTable.Cell.total) ?? .none, basis.isEmpty ? .none : .text(basis)]
            + fundsColumns.map { .total(s[$0] ?? .zero) }
            + [
                pct.map { .int($0) } ?? .none, remaining.map(ReportTable.Cell.total) ?? .none, last.map { .int(Int64($0)) } ?? .none,
                countyID.map { .text($0) } ?? .none,
            ]
    }

    /// The funds report's county for the district's 合计 rows.
    public static let districtTotal = "全区合计"

    /// The funds report's year for money outside the plan's years, and its county for money of no county of the plan.
    public static let outsideYears = "规划年度外"
    public static let noCounty = "未指明县"

    /// Where a county-year's target comes from, in words: the plan, or HQ (and the plan's figure when it differs).
    static func targetBasis(_ target: MoneyModel.Target?) -> String {
        guard let target else { return "" }
        guard target.setBy != nil else { return "规划" }
        guard target.differsFromPlan else { return "另定（同规划）" }
        return "另定（规划\(target.plan.map { Money.wan($0) + "万元" } ?? "未列")）"
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
        let money = try projectMoney()
        let finished = Set(["completed", "accepted", "handed_over"])
        // The day each project first reached a finished stage, by the events' dates.
        var finishedOn: [String: String] = [:]
        for e in events where e.stands {
            guard case .text(let project)? = e.fields["project"], case .text(let stage)? = e.fields["stage"], finished.contains(stage),
                let date = e.fields["date"]?.description
            else { continue }
            if finishedOn[project].map({ date < $0 }) ?? true { finishedOn[project] = date }
        }
        var rows: [[ReportTable.Cell]] = []
        for r in try currentValues("projects", fields: ["name", "county", "work_area", "planned_end", "beneficiaries"]) {
            let county = r.values["county"]?.description ?? ""
            let area = r.values["work_area"]?.description ?? ""
            if let c = filter.county, c != county { continue }
            if let w = filter.workArea, w != area { continue }
            let stage = stages[r.recordID]?.description ?? "planned"
            let end = r.values["planned_end"]?.description ?? ""
            // 逾期: past its planned end and not finished; 延期完工: finished after its planned end.
            let late: String
            if end.isEmpty || stage == "cancelled" {
                late = ""
            } else if let on = finishedOn[r.recordID], finished.contains(stage) {
                late = on > end ? Lateness.finishedLate : ""
            } else {
                late = end < today && !finished.contains(stage) ? Lateness.overdue : ""
            }
            rows.append([
                .text(r.recordID), .text(r.values["name"]?.description ?? ""), .text(plan.county(county)?.name ?? county),
                .text(plan.workArea(area)?.name ?? area), .text(plan.label("stage", stage)),
                progress[r.recordID].flatMap { if case .int(let n) = $0 { .int(n) } else { nil } } ?? .none,
                end.isEmpty ? .none : .text(end), r.values["beneficiaries"].flatMap { if case .int(let n) = $0 { .int(n) } else { nil } } ?? .none,
                .total(money[r.recordID]?.allocated ?? .zero), .total(money[r.recordID]?.disbursed ?? .zero),
                .total(money[r.recordID]?.spent ?? .zero), .text(late), .text(county), .text(area), .text(stage),
            ])
        }
        return ReportTable(
            name: "projects", title: "项目 Projects",
            columns: [
                .init(id: "id", label: "编号", type: .text), .init(id: "name", label: "项目", type: .text), .init(id: "county", label: "县", type: .text),
                .init(id: "workArea", label: "工作领域", type: .text), .init(id: "stage", label: "阶段", type: .text),
                .init(id: "progressPct", label: "进度%", type: .int), .init(id: "plannedEnd", label: "计划完工", type: .date),
                .init(id: "beneficiaries", label: "受益人数", type: .int), .init(id: "allocated", label: "安排(万元)", type: .money),
                .init(id: "disbursed", label: "拨付(万元)", type: .money),
                .init(id: "spent", label: "支出(万元)", type: .money), .init(id: "late", label: "逾期", type: .text),
                .init(id: "countyId", label: "县", type: .text, machine: true), .init(id: "workAreaId", label: "工作领域", type: .text, machine: true),
                .init(id: "stageId", label: "阶段", type: .text, machine: true),
            ], rows: rows)
    }

    /// Activities per county, work area, year, kind and detail: entries, people (of them poor),
    /// attendees, patients, amount. The detail is the entry's classifying values in the plan's
    /// words (`ActivityDetail`): planned and arrived personnel, the two directions, each labour
    /// destination, trainee group and sale channel are rows of their own, never one sum.
    func activitiesReport(_ filter: ReportFilter) throws(SyncNodeError) -> ReportTable {
        let plan = try programme()
        struct Key: Hashable, Comparable {
            var county: String
            var area: String
            var year: Int
            var kind: String
            var detail: [String]
            static func < (a: Key, b: Key) -> Bool {
                (a.county, a.area, a.year, a.kind, a.detail.joined(separator: "/")) < (
                    b.county, b.area, b.year, b.kind, b.detail.joined(separator: "/")
                )
            }
        }
        struct Sums {
            var entries: Int64 = 0, people = Total.zero, poor = Total.zero, attendees = Total.zero, patients = Total.zero, amount = Total.zero
        }
        var sums: [Key: Sums] = [:]
        let approved = filter.approvedOnly ? Set(try submissionReviews().values.filter { $0.state == .approved }.map(\.clock)) : nil
        for e in try ledger("activities") where e.stands && (approved?.contains(e.ts) ?? true) {
            guard case .text(let county)? = e.fields["county"], let year = MoneyModel.budgetYear(e.fields) else { continue }
            let area = e.fields["work_area"]?.description ?? ""
            if let c = filter.county, c != county { continue }
            if let y = filter.year, y != year { continue }
            if let w = filter.workArea, w != area { continue }
            let kind = e.fields["kind"]?.description ?? ""
            let key = Key(county: county, area: area, year: year, kind: kind, detail: ActivityDetail.values(of: e.fields, kind: plan.kind(kind)))
            var s = sums[key] ?? Sums()
            s.entries += 1
            for (field, path) in [
                ("people", \Sums.people), ("poor", \.poor), ("attendees", \.attendees), ("patients", \.patients), ("amount_fen", \.amount),
            ] {
                if case .int(let n)? = e.fields[field] { s[keyPath: path].add(n) }
            }
            sums[key] = s
        }
        let rows: [[ReportTable.Cell]] = sums.keys.sorted().map { k in
            let s = sums[k]!
            let detail = ActivityDetail.words(k.detail, kind: plan.kind(k.kind), plan: plan)
            return [
                .text(plan.county(k.county)?.name ?? k.county), .text(plan.workArea(k.area)?.name ?? k.area), .text(String(k.year)),
                .text(plan.kind(k.kind)?.name ?? k.kind), detail.isEmpty ? .none : .text(detail), .int(s.entries), .total(s.people),
                .total(s.poor), .total(s.attendees), .total(s.patients), .total(s.amount), .text(k.county), .text(k.kind),
                k.detail.isEmpty ? .none : .text(k.detail.joined(separator: "/")),
            ]
        }
        return ReportTable(
            name: "activities", title: "交流与活动 Activities",
            columns: [
                .init(id: "county", label: "县", type: .text), .init(id: "workArea", label: "工作领域", type: .text),
                .init(id: "year", label: "年度", type: .text), .init(id: "kind", label: "类型", type: .text),
                .init(id: "detail", label: "分项", type: .text), .init(id: "entries", label: "次数", type: .int),
                .init(id: "people", label: "人数", type: .int), .init(id: "poor", label: "其中贫困人口", type: .int),
                .init(id: "attendees", label: "参训人数", type: .int), .init(id: "patients", label: "患者人次", type: .int),
                .init(id: "amount", label: "金额(万元)", type: .money), .init(id: "countyId", label: "县", type: .text, machine: true),
                .init(id: "kindId", label: "类型", type: .text, machine: true), .init(id: "detailId", label: "分项", type: .text, machine: true),
            ], rows: rows)
    }

    /// Tasks of the decomposition table and supervision items, by lead unit: the original due
    /// date, the latest extension, and a state computed from the events (closed, done, sent back,
    /// overdue or open); overdue is computed here, never stored.
    func tasksReport(_ filter: ReportFilter, today: String) throws(SyncNodeError) -> ReportTable {
        let plan = try programme()
        let rows: [[ReportTable.Cell]] = try taskStatuses(filter, today: today).map { t in
            [
                .text(t.leadUnit), .text(plan.kind(t.kind)?.name ?? t.kind), .text(t.id), .text(t.title),
                .text(t.county.map { plan.county($0)?.name ?? $0 } ?? Self.allCounties), t.leader.map { .text($0) } ?? .none,
                t.person.map { .text($0) } ?? .none, t.due.isEmpty ? .none : .text(t.due), t.extendedTo.map { .text($0) } ?? .none,
                .int(Int64(t.feedback)), .text(t.state.word), .text(t.kind), .text(t.state.rawValue), t.county.map { .text($0) } ?? .none,
            ]
        }
        return ReportTable(
            name: "tasks", title: "任务与督办 Tasks and supervision",
            columns: [
                .init(id: "leadUnit", label: "牵头单位", type: .text), .init(id: "kind", label: "类别", type: .text),
                .init(id: "id", label: "编号", type: .text),
                .init(id: "title", label: "事项", type: .text), .init(id: "county", label: "县", type: .text),
                .init(id: "leader", label: "责任领导", type: .text), .init(id: "person", label: "责任人", type: .text),
                .init(id: "due", label: "原定时限", type: .date),
                .init(id: "extendedTo", label: "延期至", type: .date), .init(id: "feedback", label: "反馈次数", type: .int),
                .init(id: "state", label: "状态", type: .text), .init(id: "kindId", label: "类别", type: .text, machine: true),
                .init(id: "stateId", label: "状态", type: .text, machine: true), .init(id: "countyId", label: "县", type: .text, machine: true),
            ], rows: rows)
    }

    /// Every task and supervision item with the state its events give it, by lead unit then id:
    /// what the tasks report and the supervision notice both read.
    func taskStatuses(_ filter: ReportFilter, today: String) throws(SyncNodeError) -> [TaskStatus] {
        var events: [String: [(date: String, ts: Timestamp, event: String, newDue: String?)]] = [:]
        for e in try ledger("supervision_events") where e.stands {
            guard case .text(let item)? = e.fields["item"], case .text(let event)? = e.fields["event"] else { continue }
            events[item, default: []].append((e.fields["date"]?.description ?? "", e.ts, event, e.fields["new_due"]?.description))
        }
        var out: [TaskStatus] = []
        for (collection, kind) in [("tasks", "task"), ("supervision", "supervision")] {
            for r in try currentValues(collection, fields: ["title", "lead_unit", "due", "work_area", "county", "leader", "person"]) {
                if let w = filter.workArea, r.values["work_area"]?.description != w { continue }
                if let c = filter.county, let county = r.values["county"]?.description, county != c { continue }
                let history = (events[r.recordID] ?? []).sorted { ($0.date, $0.ts) < ($1.date, $1.ts) }
                let due = r.values["due"]?.description ?? ""
                let extended = history.last { $0.event == "extension" && $0.newDue != nil }?.newDue
                let effective = extended ?? due
                let finishing = history.last(where: { ["completion", "closure", "send_back"].contains($0.event) })
                let state: TaskState
                switch finishing?.event {
                case "closure": state = .closed
                case "completion": state = .done
                default:
                    let sentBack = history.last?.event == "send_back"
                    state = !effective.isEmpty && effective < today ? .overdue : (sentBack ? .sentBack : .open)
                }
                out.append(
                    TaskStatus(
                        kind: kind, id: r.recordID, title: r.values["title"]?.description ?? "", leadUnit: r.values["lead_unit"]?.description ?? "",
                        county: r.values["county"]?.description, leader: r.values["leader"]?.description,
                        person: r.values["person"]?.description, due: due, extendedTo: extended,
                        finishedOn: state == .done || state == .closed ? Self.finishedOn(history.map { ($0.date, $0.event) }) : nil,
                        feedback: history.filter { $0.event == "feedback" }.count, state: state))
            }
        }
        out.sort { ($0.leadUnit, $0.id) < ($1.leadUnit, $1.id) }
        return out
    }

    /// The day a task was first reported done since it was last sent back: its actual finish.
    static func finishedOn(_ history: [(date: String, event: String)]) -> String? {
        let since = (history.lastIndex { $0.event == "send_back" }).map { $0 + 1 } ?? 0
        return history[since...].first { $0.event == "completion" || $0.event == "closure" }?.date
    }

    /// The tasks report's county for a task or item of no one county.
    public static let allCounties = "各县"

    /// What HQ must look at: conflicts, refused transactions, entries that do not fit the plan,
    /// reversals that cancel nothing.
    ///
    /// `readingEverything` checks every entry and record instead of reading the kept lists: what a
    /// node that cannot be written does (and what the tests compare the lists with).
    func reviewReport(readingEverything: Bool = false) throws(SyncNodeError) -> ReportTable {
        let state = try planState()
        let plan = state.plan
        var review = ReviewRows(labels: try nodeLabels())
        if let why = state.unreadable {
            review.add([
                .text("plan"), .text("\(Self.programmeCollection)/plan"),
                .text("本版本读不了总部的规划（\(why)）；升级之前，本节点按2017年规划核对和显示"),
                .text(""),
            ])
        }
        try addReplicationRows(&review)
        let check = ProgrammeCheck(plan)
        // The kept lists (`ReviewIndex`) name the entries and records to look at; a node that
        // cannot be written (a read-only copy) looks at every one with the same conditions.
        let kept = readingEverything ? false : try refreshReviewIndex()
        let ledgers = Set(plan.kinds.compactMap(\.ledger))
        for ledger in ledgers.sorted() {
            for f in try ledgerReviewRows(plan, ledger: ledger, kept: kept, check: check, who: review.who).sorted(by: { $0.ts < $1.ts }) {
                review.add(f.row, f.ts)
            }
        }
        try addRecordRows(&review, plan: plan, kept: kept, check: check)
        // Ledgers the plan does not name (an older or newer plan's, or the generic command's).
        for (ledger, count) in try ledgerCounts(except: ledgers) {
            review.add([
                .text("plan"), .text(ledger), .text("\(count)条记录所在的账目不在规划中，任何报表都不计入"), .text(""),
            ])
        }
        for (cells, ts) in try moneyReviewRows(plan, labels: review.labels) { review.add(cells, ts) }
        let authors = try authors(of: review.stamps.compactMap { $0 })
        for (i, ts) in review.stamps.enumerated() {
            if let ts, let author = authors[ts] { review.rows[i][3] = .text("\(review.who(ts))（\(author)）") }
        }
        return ReportTable(
            name: "review", title: "待审 Review",
            columns: [
                .init(id: "type", label: "类别", type: .text), .init(id: "item", label: "对象", type: .text),
                .init(id: "detail", label: "说明", type: .text), .init(id: "recordedBy", label: "记录者", type: .text),
                .init(id: "typeId", label: "类别", type: .text, machine: true),
            ],
            rows: review.rows)
    }

    /// The review's types (ids, as `--json` carries them) and the words people read.
    public static let reviewTypes = [
        "plan": "不符合规划", "fork": "节点双重历史", "conflict": "并发修改", "refused": "被拒绝", "ledger": "撤销无对象", "money": "资金核对",
    ]

    /// The review's rows as they are gathered, each with the clock of the transaction that made
    /// its entry where it has one (who made it).
    struct ReviewRows {
        let labels: [NodeID: String]
        var rows: [[ReportTable.Cell]] = []
        var stamps: [Timestamp?] = []

        func who(_ ts: Timestamp) -> String { labels[ts.node] ?? ts.node.short }

        /// The type's word and id for the last type added: rows of one type come together, so a
        /// review of 100,000 rows looks a word up a few times, not 100,000.
        var last = (id: "", word: "")

        /// Adds a row given as (type id, item, detail, recorded by): people read the type's word
        /// first; machines get its id at the end (`typeId`).
        mutating func add(_ cells: [ReportTable.Cell], _ ts: Timestamp? = nil) {
            let id: String
            if case .text(let t)? = cells.first { id = t } else { id = "" }
            if id != last.id { last = (id, Store.reviewTypes[id] ?? id) }
            var row: [ReportTable.Cell] = []
            row.reserveCapacity(cells.count + 1)
            row.append(.text(last.word))
            row.append(contentsOf: cells.dropFirst())
            row.append(.text(id))
            rows.append(row)
            stamps.append(ts)
        }
    }

    /// What replication leaves for HQ: nodes that signed two histories, conflicts, refusals.
    private func addReplicationRows(_ review: inout ReviewRows) throws(SyncNodeError) {
        let labels = review.labels
        // A node that signed two histories: every replica keeps the one HQ accepted first; HQ's
        // leading group must know that a node's key made the other (`Store+Forks`).
        for fork in try forks() {
            let name = labels[fork.origin] ?? fork.origin.short
            review.add([
                .text("fork"), .text(name),
                .text(
                    "节点\(name)在同一编号（第\(fork.firstSeq)号起）下签署了两份不同的交易：各节点保留总部先收到的一份，另一份\(fork.seen + fork.withdrawn)条留作证据（syncnode forks \(name)）。可能是同一身份在两台机器上使用（或从备份恢复后另行记录），也可能是伪造；请核实后吊销并重新登记该节点"
                ), .text(""),
            ])
        }
        for c in try conflicts() {
            review.add([
                .text("conflict"), .text("\(c.collection)/\(c.recordID).\(c.field)"),
                .text(
                    "保留\(c.winnerValue)（\(labels[c.winnerTs.node] ?? c.winnerTs.node.short)）；另一值\(c.otherValue)（\(labels[c.otherTs.node] ?? c.otherTs.node.short)）"
                ), .text(""),
            ])
        }
        for r in try rejections() {
            review.add([
                .text("refused"), .text("\(labels[r.origin] ?? r.origin.short)/\(r.seq)"), .text("\(r.reason)（\(r.refusedBy)拒绝）"),
                .text(labels[r.origin] ?? r.origin.short),
            ])
        }
    }

    /// One ledger's rows, in the order the entries were made: reversals the ledger rule finds
    /// cancel nothing, and entries that do not fit the kind they name (or the ledger's only kind).
    /// Only the reversals with the entries they name, and the entries SQL does not clear as
    /// fitting the plan (`PlanFit`), are read and decoded: the rest of a ledger of millions is not.
    private func ledgerReviewRows(
        _ plan: Programme, ledger: String, kept: Bool, check: ProgrammeCheck, who: (Timestamp) -> String
    ) throws(SyncNodeError) -> [(ts: Timestamp, row: [ReportTable.Cell])] {
        let kinds = plan.kinds(inLedger: ledger)
        var found: [(ts: Timestamp, row: [ReportTable.Cell])] = []
        try read { db in
            let judged = try Self.reversalVerdicts(db, ledger: ledger)
            for (r, verdict) in judged.verdicts {
                guard case .invalid(let why) = verdict else { continue }
                let ts = judged.entries[r].ts
                found.append((ts, [.text("ledger"), .text("\(ledger)/\(judged.entries[r].entryID)"), .text(why), .text(who(ts))]))
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
                    let known = kinds.map(\.id).joined(separator: ", ")
                    found.append(
                        (ts, [.text("plan"), item, .text("类型\(named ?? "（未填）")不是本账目的类型：\(known)"), .text(who(ts))]))
                    continue
                }
                let problems = check.storedProblems(kind: kind, fields: fields)
                if !problems.isEmpty { found.append((ts, [.text("plan"), item, .text(problems.joined(separator: "; ")), .text(who(ts))])) }
            }
        }
        return found
    }

    /// Records that do not fit the plan, per kind of the plan in its order, by id.
    private func addRecordRows(_ review: inout ReviewRows, plan: Programme, kept: Bool, check: ProgrammeCheck) throws(SyncNodeError) {
        guard !kept else {
            let rows = try read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT n.text AS collection, p.record_id, p.problems FROM record_problem p JOIN name n ON n.ix = p.collection
                        ORDER BY p.kind, p.record_id
                        """)
            }
            for row in rows {
                review.add([.text("plan"), .text("\(row["collection"] as String)/\(row["record_id"] as String)"), .text(row["problems"]), .text("")])
            }
            return
        }
        for kind in plan.kinds {
            guard let collection = kind.collection else { continue }
            for r in try records(collection) {
                let problems = check.storedProblems(kind: kind, fields: r.fields)
                if !problems.isEmpty {
                    review.add([.text("plan"), .text("\(collection)/\(r.recordID)"), .text(problems.joined(separator: "; ")), .text("")])
                }
            }
        }
    }

    /// Per registered node: site, role, when its data last arrived here, its transactions held
    /// here, and what its last request to this node told: when it was heard from, its clock's
    /// offset, its protocol, and how many of its own transactions this node did not hold yet.
    func syncReport() throws(SyncNodeError) -> ReportTable {
        let plan = try planState().plan
        func site(_ id: String) -> String { plan.sites.first { $0.id == id }?.name ?? plan.county(id)?.name ?? id }
        var rows: [[ReportTable.Cell]] = []
        let health = try nodeHealth()
        for health in health {
            let entry = health.entry
            let contact = health.contact
            let state = entry.revokedAt != nil ? "revoked" : ""
            rows.append([
                .text(entry.label), .text(site(entry.site)), .text(Self.roleWords[entry.role] ?? entry.role.rawValue), .text(entry.node.hex),
                .int(Int64(health.held)), health.lastReceived.map { .int(Int64($0)) } ?? .none,
                contact.map { .int(Int64($0.heard)) } ?? .none, health.notYetHere.map { .int(Int64($0)) } ?? .none,
                contact.map { .int(($0.skewMillis + ($0.skewMillis >= 0 ? 500 : -500)) / 1000) } ?? .none,
                contact.map { .int(Int64($0.protocolVersion)) } ?? .none, .text(state.isEmpty ? "" : Self.syncStates[state] ?? state),
                .text(entry.site), .text(entry.role.rawValue), .text(state),
            ])
        }
        // A site of the plan that no node serves yet: flagged, not left out (HQ must see that
        // nothing can arrive from it).
        let served = Set(health.filter { $0.entry.revokedAt == nil }.map(\.entry.site))
        for s in plan.sites where !served.contains(s.id) {
            rows.append([
                .text(""), .text(s.name), .text(Self.roleWords[s.role] ?? s.role.rawValue), .text(""), .int(0), .none, .none, .none, .none, .none,
                .text(Self.syncStates["no node"] ?? ""), .text(s.id), .text(s.role.rawValue), .text("no node"),
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
                .init(id: "siteId", label: "站点", type: .text, machine: true), .init(id: "roleId", label: "角色", type: .text, machine: true),
                .init(id: "stateId", label: "状态", type: .text, machine: true),
            ], rows: rows)
    }

    /// The roles as people read them.
    public static let roleWords: [Role: String] = [.hq: "总部", .finance: "财政", .office: "区直部门", .county: "县"]

    /// The sync report's states (ids, as `--json` carries them) and their words.
    public static let syncStates = ["revoked": "已吊销", "no node": "尚无节点"]
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
                if kind.isLedger, f.name == "date" {
                    ok += " AND substr(\(value), 1, 4) BETWEEN '\(plan.yearRange.lowerBound)' AND '\(plan.yearRange.upperBound)'"
                }
            case .year:
                let range = "BETWEEN \(plan.yearRange.lowerBound) AND \(plan.yearRange.upperBound)"
                ok =
                    "(\(type) IS 'integer' AND \(value) \(range)) OR (\(type) IS 'text' AND \(value) GLOB '[0-9][0-9][0-9][0-9]' AND CAST(\(value) AS INTEGER) \(range))"
            case .int, .money:
                ok = "\(type) IS 'integer'"
                if let min = f.min { ok += " AND \(value) >= \(min)" }
                if let max = f.max { ok += " AND \(value) <= \(max)" }
                // `ProgrammeCheck.plausibility`: a positive amount within the county's aid, a
                // count within its plausible bound and the field it is part of.
                if kind.isLedger, f.type == .money {
                    let check = ProgrammeCheck(plan)
                    let bounds = plan.counties.map { "WHEN \(literal($0.id)) THEN \(check.moneyBound(county: $0))" }.joined(separator: " ")
                    let county = "CASE WHEN json_type(\(column), '$.county') = 'text' THEN json_extract(\(column), '$.county') END"
                    ok += " AND \(value) > 0 AND \(value) <= (CASE \(county) \(bounds) ELSE \(check.moneyBound(county: nil)) END)"
                }
                if kind.isLedger, let above = f.confirmAbove { ok += " AND \(value) <= \(above)" }
                if kind.isLedger, let other = f.atMost {
                    let path = literal("$.\"\(other)\"")
                    ok += " AND NOT (json_type(\(column), \(path)) IS 'integer' AND \(value) > json_extract(\(column), \(path)))"
                }
            case .real: ok = "\(type) IS 'integer'"  // a real is stored as an object: left to the Swift check
            }
            all.append(f.isRequired ? "(\(ok))" : "(\(type) IS NULL OR (\(ok)))")
        }
        if kind.isLedger, kind.money != nil {
            all.append("(\(Store.MoneySQL.year(column)) BETWEEN \(plan.yearRange.lowerBound) AND \(plan.yearRange.upperBound))")
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
    /// Where it signed two histories, if this node has seen it do so (`Store.forks`).
    public var fork: ForkSummary?
    /// Its own transactions it held at its last pull from this node that this node still lacks.
    public var notYetHere: UInt64? { contact?.ownSeq.map { $0 > held ? $0 - held : 0 } }
}

extension Store {
    /// Every registered node's sync health (HQ's sync report, `node list`).
    public func nodeHealth() throws(SyncNodeError) -> [NodeHealth] {
        let received = try lastReceivedByNode()
        let vector = try vector()
        let contacts = try contacts()
        let forks = Dictionary(try forks().map { ($0.origin, $0) }) { first, _ in first }
        return try registry().map {
            NodeHealth(entry: $0, held: vector[$0.node], lastReceived: received[$0.node], contact: contacts[$0.node], fork: forks[$0.node])
        }
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
        if !ledger {
            known.formUnion([PolicyRules.registryCollection, PolicyRules.policyCollection, Self.programmeCollection, PolicyRules.reviewCollection])
        }
        guard !known.contains(name) else { return nil }
        let hint = ProgrammeCheck.nearest(name, in: Array(known)).map { "did you mean \($0)? " } ?? ""
        return "no \(ledger ? "ledger" : "collection") '\(name)' here; \(hint)known: \(known.sorted().joined(separator: ", "))"
    }
}
