import Foundation
import GRDB
import SyncProtocol
import Testing

@testable import SyncNode

/// The money model is one definition: the SQL projection the reports read (`ledger_money` and
/// the totals kept from it) must agree with `MoneyModel` and `LedgerRule` over any entries,
/// however malformed, at the type's limits, reversed, duplicated across nodes and arriving in
/// any order; and nothing traps.
@Suite(.serialized) struct MoneyModelTests {
    /// Values each field the projection reads may hold: absent (nil), null, sound, of another
    /// type, malformed, at the limits.
    static let choices: [String: [Value?]] = [
        "county": [nil, .null, .text("lintan"), .text("gangu"), .text(""), .int(5), .real(2.5), .text("x'y")],
        "budget_year": [nil, nil, nil, .null, .int(2017), .text("2018"), .text("17"), .text("２０１７"), .real(2017), .text("abcd"), .int(-1)],
        "year": [nil, nil, nil, .null, .int(2019), .text("2016"), .text("20171")],
        "date": [
            nil, .text("2017-05-01"), .text("2020-12-31"), .text("2027-01-01"), .text("2017"), .text("17-05-01"), .int(20_170_501),
            .text("é017-01-01"),
        ],
        "project": [nil, .text("p1"), .text("p2"), .int(3), .null],
        "stage": [nil, .text("advance"), .text("acceptance"), .int(1)],
        "amount_fen": [
            .int(5), .int(1_000_000), .int(-300), .int(.max), .int(.min), .int(.max - 1), .int(4_611_686_018_427_387_904), nil, .text("5"),
            .real(2.5),
            .null,
        ],
        Names.reversesField: [nil, nil, nil, nil, nil, nil, .null, .int(7), .real(1.5)],
    ]

    static func randomFields(_ rng: inout SplitMix64) -> [String: Value] {
        var fields: [String: Value] = ["kind": .text("disbursement")]
        for (name, values) in choices.sorted(by: { $0.key < $1.key }) {
            if let v = values.randomElement(using: &rng)! { fields[name] = v }
        }
        return fields
    }

    /// Every entry's row in `ledger_money` is `MoneyModel.placement` of its fields, and an entry
    /// that does not count has none.
    @Test func theSQLProjectionIsTheSwiftPlacement() throws {
        let node = try TestNode(site: "hq", role: .hq)
        defer { node.remove() }
        var rng = SplitMix64(seed: 2017)
        var written: [String: [String: Value]] = [:]
        for batch in 0..<40 {
            var intents: [Intent] = []
            for i in 0..<25 {
                let id = "e\(batch)-\(i)"
                let fields = Self.randomFields(&rng)
                written[id] = fields
                intents.append(.append(ledger: "disbursements", entryID: id, fields: fields.map { FieldAssignment($0.key, $0.value) }))
            }
            try node.store.commit(intents)
        }
        let rows = try node.store.read { db in
            try Row.fetchAll(db, sql: "SELECT entry_id, county, year, project, stage, amount_fen FROM ledger_money WHERE ledger = 'disbursements'")
        }
        var projected: [String: MoneyModel.Placement] = [:]
        for row in rows {
            projected[row["entry_id"]] = MoneyModel.Placement(
                county: row["county"], year: row["year"], project: row["project"], stage: row["stage"], amount: row["amount_fen"])
        }
        var counted = 0
        for (id, fields) in written {
            let expected = MoneyModel.placement(fields)
            #expect(projected[id] == expected, "\(id) \(fields)")
            if expected != nil { counted += 1 }
        }
        // Both kinds occur, or the comparison proves little.
        #expect(counted > 100 && counted < written.count - 100, "\(counted) of \(written.count) count")
        #expect(projected.count == counted)
    }

    /// Random money entries at three nodes (reversals, the same id at several nodes, concurrent
    /// reversals of one entry, amounts at the limits), carried between them in a random order:
    /// every node's totals, the funds report's figures and the projects' money equal the pure
    /// model's, computed from the entries as written; nothing traps.
    @Test(arguments: [1, 7, 2017, 99_991] as [UInt64]) func everyTotalIsThePureModelsTotal(seed: UInt64) async throws {
        try await BlockingWork.run { try Self.compare(seed: seed) }
    }

    static func compare(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let nodes = try (0..<3).map { try TestNode(site: "hq", label: "n\($0)", millis: 1_700_000_000_000 + UInt64($0), role: .hq) }
        defer { for n in nodes { n.remove() } }
        var written: [LedgerRule.Entry] = []
        let sound: [Value] = [.int(1_000_000), .int(250_000_000), .int(.max / 2), .int(.max), .int(.max - 7), .int(-1), .int(.min + 1)]
        for round in 0..<12 {
            for (n, node) in nodes.enumerated() {
                var intents: [Intent] = []
                var ids = Set<String>()
                for _ in 0..<Int.random(in: 1...6, using: &rng) {
                    var fields: [String: Value] = [
                        "kind": .text("disbursement"), "stage": .text("advance"),
                        "county": .text(["chengde", "lintan", "gangu", "lintna"].randomElement(using: &rng)!),
                        "amount_fen": sound.randomElement(using: &rng)!,
                    ]
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0: fields["budget_year"] = .text(String(Int.random(in: 2015...2021, using: &rng)))
                    case 1: fields["date"] = .text("\(Int.random(in: 2015...2021, using: &rng))-06-01")
                    case 2: fields["budget_year"] = .int(Int64.random(in: 2016...2020, using: &rng))
                    default: break
                    }
                    if Bool.random(using: &rng) { fields["project"] = .text(["p1", "p2", "p3"].randomElement(using: &rng)!) }
                    // Ids shared across nodes (each node's is its own entry) and, now and then,
                    // a reversal of an entry this node holds (concurrent ones cancel nothing).
                    var id = "e\(Int.random(in: 0..<40, using: &rng))"
                    let held = try node.store.ledger("disbursements").filter { $0.stands }
                    if Int.random(in: 0..<4, using: &rng) == 0, let target = held.randomElement(using: &rng) {
                        fields = target.fields.mapValues { if case .int(let i) = $0 { return .int(-i) } else { return $0 } }
                        fields[Names.reversesField] = .text(target.entryID)
                        fields[Names.reversesOriginField] = .text(target.origin.hex)
                        id = "r\(round)-\(n)-\(written.count)"
                    }
                    guard ids.insert(id).inserted,
                        try !node.store.ledger("disbursements").contains(where: { $0.entryID == id && $0.origin == node.store.info.nodeID })
                    else { continue }
                    intents.append(.append(ledger: "disbursements", entryID: id, fields: fields.map { FieldAssignment($0.key, $0.value) }))
                }
                guard !intents.isEmpty else { continue }
                let t = try node.store.commit(intents)
                for case .append(let e) in t.changes { written.append(LedgerRule.Entry(entryID: e.entryID, ts: t.hlc, fields: e.fields)) }
            }
            // Carry work between random pairs, in a random order.
            for _ in 0..<2 {
                let from = nodes.randomElement(using: &rng)!
                let to = nodes.randomElement(using: &rng)!
                if from.store.info.nodeID != to.store.info.nodeID {
                    _ = try to.store.apply(try from.store.transactions(missingFrom: try to.store.vector()).transactions)
                }
            }
        }
        for a in nodes {
            for b in nodes where a.store.info.nodeID != b.store.info.nodeID {
                _ = try b.store.apply(try a.store.transactions(missingFrom: try b.store.vector()).transactions)
            }
        }
        // The pure model over the entries as written.
        let verdicts = LedgerRule.reversals(written)
        let cancelled = Set(verdicts.values.compactMap { if case .cancels(let i) = $0 { i } else { nil } })
        var expected: [MoneyKey: Total] = [:]
        var perProject: [String: Total] = [:]
        for (i, e) in written.enumerated() where !cancelled.contains(i) {
            guard let p = MoneyModel.placement(e.fields) else { continue }
            expected[MoneyKey(county: p.county, year: p.year), default: .zero].add(p.amount)
            if let project = p.project { perProject[project, default: .zero].add(p.amount) }
        }
        #expect(!cancelled.isEmpty && verdicts.values.contains { if case .invalid = $0 { true } else { false } }, "reversals of both kinds")
        #expect(expected.values.contains { $0.int64 == nil }, "a total beyond 64 bits is among them")
        let plan = Programme.embedded
        for node in nodes {
            let totals = try node.store.moneyTotals(ledger: "disbursements").filter { $0.value != .zero }
            #expect(totals == expected.filter { $0.value != .zero }, "\(node.store.info.label)")
            let projects = try node.store.projectMoney().mapValues(\.disbursed).filter { $0.value != .zero }
            #expect(projects == perProject.filter { $0.value != .zero })
            // The funds report shows each plan county-year's figure, or words where it is beyond a cell.
            let funds = try node.store.report("funds", today: "2018-01-01")
            let column = funds.columns.firstIndex { $0.id == "disbursed" }!
            for county in plan.counties {
                for year in plan.yearRange {
                    guard let row = funds.rows.first(where: { $0[0] == .text(county.name) && $0[1] == .text(String(year)) }) else {
                        Issue.record("no row for \(county.id) \(year)")
                        continue
                    }
                    #expect(row[column] == .total(expected[MoneyKey(county: county.id, year: year)] ?? .zero), "\(county.id) \(year)")
                }
                // The whole programme's row holds every year's money of the county, in the plan's years or not.
                var whole = Total.zero
                for (key, total) in expected where key.county == county.id { whole.add(total) }
                let span = funds.rows.first { $0[0] == .text(county.name) && $0[1] == .text("2016–2020") }
                #expect(span?[column] == .total(whole), "\(county.id) whole programme")
            }
            // Money of no county of the plan has its own row.
            let unplaced = expected.filter { !(plan.counties.map(\.id).contains($0.key.county ?? "")) }.values.reduce(Total.zero, +)
            if unplaced != .zero {
                #expect(funds.rows.contains { $0[0] == .text(Store.noCounty) && $0[column] == .total(unplaced) })
            }
            _ = try node.store.report("review", today: "2018-01-01")
            _ = try node.store.report("projects", today: "2018-01-01")
        }
    }

    /// The store finds each county-year's target by seeks on the projection's clock index; the
    /// model over the whole ledger (every setting and reversal, at two nodes) decides the same.
    @Test func theStoresTargetsAreTheModelsOverTheWholeLedger() throws {
        try Self.withTwoNodes { a, b in try Self.targetsOverTheWholeLedger(a, b) }
    }

    /// Two HQ-role nodes (their clocks apart) for `body`, removed after it.
    static func withTwoNodes(_ body: (TestNode, TestNode) throws -> Void) throws {
        let a = try TestNode(site: "hq", label: "a", role: .hq)
        let b = try TestNode(site: "hq", label: "b", millis: 1_700_000_000_005, role: .hq)
        defer {
            a.remove()
            b.remove()
        }
        try body(a, b)
    }

    static func targetsOverTheWholeLedger(_ a: TestNode, _ b: TestNode) throws {
        var rng = SplitMix64(seed: 42)
        for round in 0..<30 {
            for node in [a, b] {
                let county = ["chengde", "lintan", "gangu"].randomElement(using: &rng)!
                let year = Int.random(in: 2015...2021, using: &rng)
                var fields: [FieldAssignment] = [
                    .init("county", .text(county)), .init("year", .text(String(year))), .init("kind", .text("target")),
                    .init("amount_fen", .int(Int64.random(in: 1...3_000, using: &rng) * Money.fenPerWan)),
                ]
                let held = try node.store.ledger("fund_targets").filter(\.stands)
                if round % 4 == 3, let target = held.randomElement(using: &rng) {
                    fields = [
                        .init(Names.reversesField, .text(target.entryID)), .init(Names.reversesOriginField, .text(target.origin.hex)),
                        .init("county", target.fields["county"] ?? .null),
                    ]
                }
                try node.store.commit([.append(ledger: "fund_targets", entryID: "t\(round)-\(node.store.info.label)", fields: fields)])
            }
            if round % 5 == 4 {
                _ = try b.store.apply(try a.store.transactions(missingFrom: try b.store.vector()).transactions)
                _ = try a.store.apply(try b.store.transactions(missingFrom: try a.store.vector()).transactions)
            }
        }
        for node in [a, b] {
            let all = try node.store.ledger("fund_targets").map { LedgerRule.Entry(entryID: $0.entryID, ts: $0.ts, fields: $0.fields) }
            let model = MoneyModel.targets(plan: Programme.embedded, entries: all)
            let stored = try node.store.targets()
            #expect(stored.mapValues(\.fen) == model.mapValues(\.fen))
            #expect(stored.mapValues { $0.setBy?.entryID } == model.mapValues { $0.setBy?.entryID })
            #expect(model.values.contains { $0.differsFromPlan })
        }
    }

    /// The figures kept between views (projects' money, the review's money rows) follow every
    /// write: local, received, and a reversal.
    @Test func theKeptMoneyFiguresFollowEveryWrite() throws {
        try Self.withTwoNodes { hq, other in try Self.keptFiguresFollow(hq, other) }
    }

    static func keptFiguresFollow(_ hq: TestNode, _ other: TestNode) throws {
        func allocate(_ node: TestNode, _ id: String, _ fen: Int64) throws {
            try node.store.commit([
                .append(
                    ledger: "disbursements", entryID: id,
                    fields: [
                        .init("county", .text("lintan")), .init("project", .text("lt-a")), .init("kind", .text("disbursement")),
                        .init("stage", .text("advance")), .init("date", .text("2017-05-01")), .init("amount_fen", .int(fen)),
                    ])
            ])
        }
        func review() throws -> [String] { try hq.store.report("review", today: "2018-01-01").rows.map { "\($0[2])" } }
        #expect(try hq.store.projectMoney()["lt-a"] == nil)
        #expect(try !review().contains { $0.contains("lt-a") })
        try allocate(hq, "d1", 5_000_000)
        #expect(try hq.store.projectMoney()["lt-a"]?.disbursed == Total(5_000_000))
        #expect(try review().contains { $0.contains("项目lt-a拨付5.00万元，超过安排的0.00万元") })
        try allocate(other, "d2", 7_000_000)
        _ = try hq.store.apply(try other.store.transactions(missingFrom: try hq.store.vector()).transactions)
        #expect(try hq.store.projectMoney()["lt-a"]?.disbursed == Total(12_000_000))
        #expect(try review().contains { $0.contains("项目lt-a拨付12.00万元") })
        _ = try hq.store.correctEntry("d1", changes: [], today: "2018-01-01")
        #expect(try hq.store.projectMoney()["lt-a"]?.disbursed == Total(7_000_000))
        #expect(try review().contains { $0.contains("项目lt-a拨付7.00万元") })
    }

    @Test func totalsAndPercentagesNeverTrap() {
        var t = Total(.max)
        t.add(.max)
        #expect(t.int64 == nil && t.exact == Int128(Int64.max) * 2)
        t.subtract(.max)
        #expect(t.int64 == .max)
        var low = Total(.min)
        low.add(.min)
        low.add(Total(.min))
        #expect(low.int64 == nil && low.exact == Int128(Int64.min) * 3)
        #expect(MoneyModel.percent(Total(.max), of: Total(1)) == nil)
        #expect(MoneyModel.percent(Total(4550), of: Total(10_000)) == 4550)
        #expect(MoneyModel.percent(Total(5), of: Total(0)) == nil)
        #expect(MoneyModel.percent(Total(5), of: Total(-3)) == nil)
        #expect(MoneyModel.budgetYear(["budget_year": .text("2018"), "date": .text("2017-01-01")]) == 2018)
        #expect(MoneyModel.budgetYear(["budget_year": .text("18"), "date": .text("2017-01-01")]) == nil)
        #expect(MoneyModel.budgetYear(["date": .text("2017-01-01")]) == 2017)
        #expect(MoneyModel.isReversal([Names.reversesField: .int(3)]) && !MoneyModel.isReversal([Names.reversesField: .null]))
    }

    /// The plan's yearly aid is the target until HQ sets another; the latest setting wins, and a
    /// reversed one no longer counts.
    @Test func targetsComeFromThePlanAndTheLatestSettingReplacesIt() {
        let plan = Programme.embedded
        let a = NodeID(bytes: Data(repeating: 1, count: 16))!
        func entry(_ id: String, _ millis: UInt64, _ fields: [String: Value]) -> LedgerRule.Entry {
            LedgerRule.Entry(entryID: id, ts: Timestamp(millis: millis, counter: 0, node: a), fields: fields)
        }
        let fresh = MoneyModel.targets(plan: plan, entries: [])
        #expect(fresh[.init("chengde", 2017)]?.fen == 2000 * Money.fenPerWan && fresh[.init("lintan", 2019)]?.fen == 1000 * Money.fenPerWan)
        #expect(fresh.values.allSatisfy { !$0.differsFromPlan } && fresh.count == 15)
        let set1 = entry("t1", 10, ["county": .text("lintan"), "year": .text("2017"), "amount_fen": .int(1_200 * Money.fenPerWan)])
        let set2 = entry("t2", 20, ["county": .text("lintan"), "year": .text("2017"), "amount_fen": .int(1_100 * Money.fenPerWan)])
        let undo2 = entry(
            "u2", 30,
            [
                "county": .text("lintan"), "year": .text("2017"), "amount_fen": .int(-1_100 * Money.fenPerWan), Names.reversesField: .text("t2"),
            ])
        let outside = entry("t3", 40, ["county": .text("lintan"), "year": .text("2031"), "amount_fen": .int(5)])
        let twice = MoneyModel.targets(plan: plan, entries: [set2, set1, outside])
        #expect(twice[.init("lintan", 2017)]?.fen == 1_100 * Money.fenPerWan && twice[.init("lintan", 2017)]?.differsFromPlan == true)
        #expect(twice.count == 15)
        let undone = MoneyModel.targets(plan: plan, entries: [set1, set2, undo2])
        #expect(undone[.init("lintan", 2017)]?.fen == 1_200 * Money.fenPerWan)
    }
}
