import Foundation
import GRDB
import SyncNode
import SyncProtocol
import SyncWeb

/// P8 and P9: HQ's merged view. P8: `report funds` over `entries` money entries across the plan's
/// three counties and five years (spread over the target, allocation, disbursement, expenditure and
/// donation ledgers, with one reversal in a thousand), against a plain SQLite `GROUP BY` over the
/// same rows in an ordinary table, same run. P9: `report projects` over `projects` projects.
enum ReportSpeed {
    static func run(entries: Int, repeats: Int) throws -> [Figure] {
        let scratch = try Scratch("p8")
        defer { scratch.remove() }
        let store = try Store.create(in: scratch.path("hq"), site: "hq", label: nil, role: .hq, trust: .hq)
        defer { try? store.close() }
        try store.installPlan(Programme.embeddedText)
        let plan = Programme.embedded
        let ledgers = plan.moneyKinds.compactMap(\.ledger)
        let counties = plan.counties.map(\.id)
        let years = Array(plan.yearRange)

        // The same rows for the node (ledger entries) and the plain table.
        struct Row {
            var ledger: String
            var county: String
            var year: Int
            var amount: Int64
        }
        func row(_ i: Int) -> Row {
            Row(
                ledger: ledgers[i % ledgers.count], county: counties[(i / ledgers.count) % counties.count],
                year: years[(i / (ledgers.count * counties.count)) % years.count], amount: Int64(1_000 + i % 977) * 100)
        }
        let plain = try DatabaseQueue(path: scratch.path("plain.sqlite").path)
        try plain.write { db in
            try db.execute(sql: "CREATE TABLE money (ledger TEXT NOT NULL, county TEXT NOT NULL, year INTEGER NOT NULL, amount_fen INTEGER NOT NULL)")
            let insert = try db.makeStatement(sql: "INSERT INTO money VALUES (?, ?, ?, ?)")
            for i in 0..<entries {
                let r = row(i)
                try insert.execute(arguments: [r.ledger, r.county, r.year, r.amount])
            }
        }
        var i = 0
        var reversals = 0
        while i < entries {
            let n = min(1000, entries - i)
            let intents: [Intent] = (i..<(i + n)).map { j in
                let r = row(j)
                return .append(
                    ledger: r.ledger, entryID: "e\(j)",
                    fields: [
                        .init("county", .text(r.county)), .init("date", .text("\(r.year)-06-01")), .init("year", .text(String(r.year))),
                        .init("amount_fen", .int(r.amount)), .init("kind", .text("bench")),
                    ])
            }
            // One reversal per thousand entries (the plain table leaves both out: they cancel).
            let target = row(i)
            let reversal: [Intent] = [
                .append(
                    ledger: target.ledger, entryID: nil,
                    fields: [
                        .init("county", .text(target.county)), .init("date", .text("\(target.year)-06-01")),
                        .init("year", .text(String(target.year))),
                        .init("amount_fen", .int(-target.amount)), .init("kind", .text("bench")), .init(Names.reversesField, .text("e\(i)")),
                    ])
            ]
            try plain.write { db in
                try db.execute(sql: "DELETE FROM money WHERE rowid = ?", arguments: [i + 1])
            }
            reversals += 1
            try store.commit(intents)
            try store.commit(reversal)
            i += n
        }

        var report: ReportTable?
        let node = try Clock.seconds(repeats: repeats) { report = try store.report("funds", today: "2018-01-01") }
        var plainTotal: Int64 = 0
        let baseline = try Clock.seconds(repeats: repeats) {
            plainTotal = try plain.read { db in
                var total: Int64 = 0
                for r in try GRDB.Row.fetchAll(db, sql: "SELECT ledger, county, year, sum(amount_fen) AS s FROM money GROUP BY ledger, county, year")
                {
                    total += r["s"] as Int64
                }
                return total
            }
        }
        // The figures must agree: the node's grand totals (the per-county rows over all years) equal
        // the plain sums, but for the target, which is a county-year's latest setting (the model's
        // decision over the whole ledger), not a sum of settings.
        let targetLedger = plan.moneyKinds.first { $0.money == "target" }!.ledger!
        let columns = report!.columns
        let moneyColumns = columns.indices.filter { ["allocated", "disbursed", "spent", "donated"].contains(columns[$0].id) }
        let targetColumn = columns.firstIndex { $0.id == "target" }!
        let countyID = columns.firstIndex { $0.id == "countyId" }!
        var nodeTotal: Int64 = 0
        var nodeTargets: Int64 = 0
        var districtTotal: Int64 = 0
        for row in report!.rows where row[1] == .text("\(years.first!)–\(years.last!)") {
            // The district's 合计 row sums the counties' rows: counted apart, and compared.
            let isDistrict = row[countyID] == .text("district")
            for c in moneyColumns { if case .int(let n) = row[c] { if isDistrict { districtTotal += n } else { nodeTotal += n } } }
            if case .int(let n) = row[targetColumn], !isDistrict { nodeTargets += n }
        }
        guard districtTotal == nodeTotal else { throw BenchError("P8: the district's 合计 is \(districtTotal) fen, its counties' rows \(nodeTotal)") }
        let plainOthers = try plain.read { db in
            try Int64.fetchOne(db, sql: "SELECT sum(amount_fen) FROM money WHERE ledger <> ?", arguments: [targetLedger]) ?? 0
        }
        guard nodeTotal == plainOthers else { throw BenchError("P8: the funds report sums \(nodeTotal) fen, the plain table \(plainOthers)") }
        let settings = try store.ledger(targetLedger).map { LedgerRule.Entry(entryID: $0.entryID, ts: $0.ts, fields: $0.fields) }
        let modelTargets = MoneyModel.targets(plan: plan, entries: settings).values.reduce(Int64(0)) { $0 + $1.fen }
        guard nodeTargets == modelTargets else {
            throw BenchError("P8: the funds report's targets sum \(nodeTargets) fen, the model's \(modelTargets)")
        }
        _ = plainTotal

        Notes.add("P8: \(entries) money entries (\(reversals) reversed) in \(ledgers.count) ledgers; totals checked equal to the plain table's.")
        return [
            Figure(
                id: "P8", name: "report funds at HQ over \(entries) money entries, 3 counties × 5 years", value: node, unit: "s", baseline: baseline,
                baselineName: "plain SQLite GROUP BY over the same rows", goal: "≤ 2x plain", met: node <= 2 * baseline)
        ]
    }

    /// What the `ledger_money` projection (its triggers and indexes) costs a ledger append:
    /// `entries` money entries, 1000 per commit, into a node with it and into a node whose
    /// triggers were dropped, same run.
    static func appendCost(entries: Int) throws -> [Figure] {
        let scratch = try Scratch("p8a")
        defer { scratch.remove() }
        func fill(_ store: Store) throws -> Double {
            try Clock.seconds {
                try commitInThousands(store, entries) { j in
                    .append(
                        ledger: "disbursements", entryID: "e\(j)",
                        fields: [
                            .init("county", .text(["chengde", "lintan", "gangu"][j % 3])), .init("date", .text("2017-06-01")),
                            .init("amount_fen", .int(Int64(100_000 + j))), .init("kind", .text("disbursement")), .init("stage", .text("advance")),
                        ])
                }
            }
        }
        let with = try Store.create(in: scratch.path("with"), site: "hq", label: nil, role: .hq, trust: .hq)
        let withSeconds = try fill(with)
        try with.close()
        // The same with the 2017 plan installed: its review triggers judge each entry too.
        let planned = try Store.create(in: scratch.path("planned"), site: "hq", label: nil, role: .hq, trust: .hq)
        try planned.installPlan(Programme.embeddedText)
        let plannedSeconds = try fill(planned)
        try planned.close()
        Notes.add(
            "P8a: with the 2017 plan installed (its review triggers also judge each entry against the plan) the append took \(String(format: "%.3f", plannedSeconds)) s."
        )
        let bareDir = scratch.path("without")
        try Store.create(in: bareDir, site: "hq", label: nil, role: .hq, trust: .hq).close()
        let queue = try DatabaseQueue(path: bareDir.appendingPathComponent("node.sqlite").path)
        try queue.write { db in
            for t in ["ledger_money_insert", "ledger_money_update", "ledger_money_delete"] { try db.execute(sql: "DROP TRIGGER \(t)") }
        }
        try queue.close()
        let bare = try Store.open(bareDir)
        let bareSeconds = try fill(bare)
        try bare.close()
        return [
            Figure(
                id: "P8a", name: "ledger append of \(entries) money entries, 1000 per commit, with the ledger_money projection", value: withSeconds,
                unit: "s", baseline: bareSeconds, baselineName: "the same node without its triggers", goal: "—")
        ]
    }

    /// `count` intents made by `intent(j)`, j = 0..<count, 1000 per commit (as an office's import would).
    static func commitInThousands(_ store: Store, _ count: Int, _ intent: (Int) -> Intent) throws {
        var i = 0
        while i < count {
            let n = min(1000, count - i)
            try store.commit((i..<(i + n)).map(intent))
            i += n
        }
    }

    /// `projects` projects of the plan's counties and work areas, 1000 per commit.
    static func fillProjects(_ store: Store, _ projects: Int) throws {
        let plan = Programme.embedded
        let counties = plan.counties.map(\.id)
        try commitInThousands(store, projects) { j in
            .put(
                collection: "projects", recordID: "\(plan.counties[j % 3].prefixes[0])p\(j)",
                fields: [
                    .init("name", .text("项目\(j)")), .init("county", .text(counties[j % 3])), .init("work_area", .text(plan.workAreas[j % 8].id)),
                    .init("planned_end", .text("2018-0\(1 + j % 9)-01")),
                ])
        }
    }

    /// P10: HQ's dashboard page (every report it shows, rendered through its templates) over
    /// `projects` projects and `entries` money entries, server time without HTTP.
    static func runDashboard(projects: Int, entries: Int, repeats: Int) throws -> [Figure] {
        let scratch = try Scratch("p10")
        defer { scratch.remove() }
        let store = try Store.create(in: scratch.path("hq"), site: "hq", label: nil, role: .hq, trust: .hq)
        defer { try? store.close() }
        try store.installPlan(Programme.embeddedText)
        let plan = Programme.embedded
        // Entries that fit the plan (every money kind with its fields), as the offices record them.
        let kinds = plan.moneyKinds
        try commitInThousands(store, entries) { j in
            let kind = kinds[j % kinds.count]
            let county = plan.counties[(j / kinds.count) % 3]
            var fields: [FieldAssignment] = [
                .init("county", .text(county.id)), .init("date", .text("\(2016 + j % 5)-06-01")), .init("kind", .text(kind.id)),
            ]
            for f in kind.fields {
                switch f.type {
                case .year: fields.append(.init(f.storedName, .int(Int64(2016 + j % 5))))
                case .money: fields.append(.init(f.storedName, .int(Int64(1_000 + j % 977) * 100)))
                case .project: fields.append(.init(f.storedName, .text("\(county.prefixes[0])p\(j % max(1, projects))")))
                default: fields.append(.init(f.storedName, .text(f.values?.first ?? "bench")))
                }
            }
            return .append(ledger: kind.ledger!, entryID: "e\(j)", fields: fields)
        }
        try fillProjects(store, projects)
        let web = WebInterface(store: store)
        var bytes = 0
        // The first view checks the records written since the review last looked (all 100,000
        // projects here); the views after it read what is kept.
        let first = try Clock.seconds { bytes = try web.dashboardHTML().utf8.count }
        Notes.add(
            "P10: the first view after loading (the review checks the \(projects) projects written since it last looked) took \(String(format: "%.3f", first)) s."
        )
        let seconds = try Clock.seconds(repeats: repeats) { bytes = try web.dashboardHTML().utf8.count }
        guard bytes > 10_000 else { throw BenchError("P10: the dashboard rendered only \(bytes) bytes") }
        // Where the time goes: each report the page shows, once.
        var parts: [String] = []
        for name in Store.reportNames {
            var rows = 0
            let t = try Clock.seconds { rows = try store.report(name, today: "2018-06-01").rows.count }
            parts.append("\(name) \(String(format: "%.3f", t)) s (\(rows) rows)")
        }
        Notes.add("P10 per report: " + parts.joined(separator: ", ") + ".")
        let records = try Clock.seconds { _ = try store.records("projects") }
        Notes.add("P10: of the review, reading every project whole (`Store.records`, its plan check) takes \(String(format: "%.3f", records)) s.")
        Notes.add("P10: the dashboard page is \(bytes) bytes over \(projects) projects and \(entries) money entries.")
        return [
            Figure(
                id: "P10", name: "HQ's dashboard page over \(projects) projects and \(entries) money entries (server time)", value: seconds,
                unit: "s", baseline: nil, baselineName: nil, goal: "≤ 1 s", met: seconds <= 1)
        ]
    }

    /// P9: `report projects` over `projects` projects of the plan's counties and work areas.
    static func runProjects(projects: Int, repeats: Int) throws -> [Figure] {
        let scratch = try Scratch("p9")
        defer { scratch.remove() }
        let store = try Store.create(in: scratch.path("hq"), site: "hq", label: nil, role: .hq, trust: .hq)
        defer { try? store.close() }
        try store.installPlan(Programme.embeddedText)
        try fillProjects(store, projects)
        var listed = 0
        let projectsTime = try Clock.seconds(repeats: repeats) { listed = try store.report("projects", today: "2018-06-01").rows.count }
        guard listed == projects else { throw BenchError("P9: the report listed \(listed) projects of \(projects)") }
        return [
            Figure(
                id: "P9", name: "report projects over \(projects) projects", value: projectsTime, unit: "s", baseline: nil, baselineName: nil,
                goal: "≤ 0.5 s", met: projectsTime <= 0.5)
        ]
    }
}
