import Foundation
import SyncProtocol

/// The two views the leading group reads beside the reports: the assessment (东西部扶贫协作考核,
/// by the plan's headings and indicators, a column per county and the district's 合计) and the
/// supervision notice (督查通报: what is overdue or was finished late, by lead unit and county,
/// with the responsible leader and person, planned against actual dates, and 合计 rows).
extension Store {
    /// The assessment view: a row per indicator of the plan (`Programme.assessment`), a column per
    /// county and 合计. Money figures are the funds report's (the same totals, by budget year);
    /// the rest count or sum standing activity entries whose fields take the indicator's values.
    func assessmentReport(_ filter: ReportFilter) throws(SyncNodeError) -> ReportTable {
        let plan = try programme()
        let counties = plan.counties.filter { filter.county == nil || filter.county == $0.id }
        // One budget year, or every entry of the county whatever its year (as the funds report's
        // whole-programme row counts money outside the plan's years): nothing counted nowhere.
        let years: Set<Int>? = filter.year.map { [$0] }
        let headings = plan.assessment ?? []
        let indicators = headings.flatMap { h in h.indicators.map { (heading: h, indicator: $0) } }
        // sums[indicator index][county id]
        var sums = Array(repeating: [String: Total](), count: indicators.count)
        let money = try moneyByColumn(plan, years: years)
        for (n, item) in indicators.enumerated() {
            guard let column = item.indicator.money else { continue }
            sums[n] = money[column] ?? [:]
        }
        for e in try ledger("activities") where e.stands {
            guard case .text(let county)? = e.fields["county"] else { continue }
            if let years, !(MoneyModel.budgetYear(e.fields).map(years.contains) ?? false) { continue }
            let kind = e.fields["kind"]?.description ?? ""
            for (n, item) in indicators.enumerated() where item.indicator.counts(kind: kind, e.fields) {
                sums[n][county, default: .zero].add(item.indicator.amount(e.fields, in: plan.kind(kind)))
            }
        }
        let rows: [[ReportTable.Cell]] = indicators.enumerated().map { n, item in
            let isMoney = item.indicator.isMoney(in: plan)
            func cell(_ total: Total) -> ReportTable.Cell { isMoney ? .moneyTotal(total) : .total(total) }
            var district = Total.zero
            var cells: [ReportTable.Cell] = [
                .text(item.heading.name), .text(item.indicator.name), .text(isMoney ? "万元" : item.indicator.unit ?? ""),
            ]
            for c in counties {
                let total = sums[n][c.id] ?? .zero
                district.add(total)
                cells.append(cell(total))
            }
            return cells + [cell(district), .text(item.heading.id), .text(item.indicator.id)]
        }
        let span = filter.year.map(String.init) ?? "\(plan.yearRange.lowerBound)–\(plan.yearRange.upperBound)"
        // A county's column names its carrier unit: 东丽开发区—承德县.
        let countyColumns: [ReportTable.Column] = counties.map { c in
            let carrier = c.carrierUnit.isEmpty ? "" : c.carrierUnit + "—"
            return ReportTable.Column(id: c.id, label: carrier + c.name, type: .int)
        }
        let leading: [ReportTable.Column] = [
            .init(id: "heading", label: "考核项目", type: .text), .init(id: "indicator", label: "指标", type: .text),
            .init(id: "unit", label: "单位", type: .text),
        ]
        let trailing: [ReportTable.Column] = [
            .init(id: "total", label: "合计", type: .int), .init(id: "headingId", label: "考核项目", type: .text, machine: true),
            .init(id: "indicatorId", label: "指标", type: .text, machine: true),
        ]
        return ReportTable(name: "assessment", title: "考核 Assessment（\(span)）", columns: leading + countyColumns + trailing, rows: rows)
    }

    /// The funds report's money columns per county, over the given budget years (targets from
    /// the plan or HQ's, the rest from the money ledgers): one source for both views.
    func moneyByColumn(_ plan: Programme, years: Set<Int>?) throws(SyncNodeError) -> [String: [String: Total]] {
        var out: [String: [String: Total]] = [:]
        for column in Programme.moneyColumns where column != "target" {
            guard let ledger = moneyLedger(plan, column) else { continue }
            for (key, total) in try moneyTotals(ledger: ledger) {
                guard let county = key.county else { continue }
                if let years, !(key.year.map(years.contains) ?? false) { continue }
                out[column, default: [:]][county, default: .zero].add(total)
            }
        }
        for (key, target) in try targets() where years?.contains(key.year) ?? plan.yearRange.contains(key.year) {
            out["target", default: [:]][key.county, default: .zero].add(target.fen)
        }
        return out
    }

    /// The supervision notice (督查通报): tasks and supervision items overdue, sent back, or done
    /// after their due date, by lead unit and county, with the responsible leader and person, the
    /// planned date against the actual one and the days late; a 合计 row per lead unit and one
    /// for the district.
    func noticeReport(_ filter: ReportFilter, today: String) throws(SyncNodeError) -> ReportTable {
        let plan = try programme()
        let statuses = try taskStatuses(filter, today: today).filter { t in
            t.state == .overdue || t.state == .sentBack || ((t.state == .done || t.state == .closed) && t.daysLate(today: today) != nil)
        }
        func word(_ t: TaskStatus) -> String { t.state == .done || t.state == .closed ? Self.finishedLate : t.state.word }
        func summary(_ items: [TaskStatus]) -> String {
            let counts = Dictionary(grouping: items, by: word).mapValues(\.count)
            return [TaskState.overdue.word, TaskState.sentBack.word, Self.finishedLate].compactMap { w in counts[w].map { "\(w)\($0)项" } }
                .joined(separator: "，")
        }
        var rows: [[ReportTable.Cell]] = []
        let byUnit = Dictionary(grouping: statuses, by: \.leadUnit)
        for unit in byUnit.keys.sorted() {
            let items = byUnit[unit]!.sorted { ($0.county ?? "", $0.id) < ($1.county ?? "", $1.id) }
            for t in items {
                rows.append([
                    .text(unit), .text(t.county.map { plan.county($0)?.name ?? $0 } ?? Self.allCounties), .text(t.id), .text(t.title),
                    t.leader.map { .text($0) } ?? .none, t.person.map { .text($0) } ?? .none, t.due.isEmpty ? .none : .text(t.due),
                    t.extendedTo.map { .text($0) } ?? .none, t.finishedOn.map { .text($0) } ?? .none,
                    t.daysLate(today: today).map { .int(Int64($0)) } ?? .none, .text(word(t)), .text("item"), .text(t.state.rawValue),
                ])
            }
            rows.append([
                .text(unit), .text(Self.totalWord), .none, .text(summary(items)), .none, .none, .none, .none, .none, .none,
                .none, .text("unit total"), .none,
            ])
        }
        rows.append([
            .text(Self.districtWord), .text(Self.totalWord), .none, .text(statuses.isEmpty ? Self.nothingLate : summary(statuses)), .none, .none,
            .none, .none,
            .none, .none, .none, .text("total"), .none,
        ])
        return ReportTable(
            name: "notice", title: "督查通报 Supervision notice（截至\(today)）",
            columns: [
                .init(id: "leadUnit", label: "牵头单位", type: .text), .init(id: "county", label: "县", type: .text),
                .init(id: "id", label: "编号", type: .text), .init(id: "title", label: "事项", type: .text),
                .init(id: "leader", label: "责任领导", type: .text), .init(id: "person", label: "责任人", type: .text),
                .init(id: "due", label: "原定时限", type: .date), .init(id: "extendedTo", label: "延期至", type: .date),
                .init(id: "finishedOn", label: "实际完成", type: .date), .init(id: "daysLate", label: "逾期天数", type: .int),
                .init(id: "state", label: "状态", type: .text), .init(id: "rowType", label: "行", type: .text, machine: true),
                .init(id: "stateId", label: "状态", type: .text, machine: true),
            ], rows: rows)
    }

    /// The notice's words: a 合计 row's county, the district's row, a task done after its date.
    public static let totalWord = "合计"
    public static let districtWord = "全区"
    public static let finishedLate = "延期完成"
    public static let nothingLate = "无逾期事项"
}
