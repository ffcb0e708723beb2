import Foundation
import GRDB
import SyncProtocol
import Testing

@testable import SyncNode

/// The review queue reads the lists it keeps (`ReviewIndex`): the entries SQL does not clear as
/// fitting the plan (`PlanFit`), the records written since it last checked them, and the
/// reversals with the entries they name. It must list exactly what checking every entry and
/// record in Swift lists: the reference below reads each whole ledger (`Store.ledger`) and every
/// record and runs `ProgrammeCheck.storedProblems` on each, over entries and records with every
/// kind of fault; after records are changed and deleted, and after a new plan.
@Suite(.serialized) struct ReviewTests {
    /// Seconds of SQLite work per seed: run on a thread of its own, not on one of the few
    /// cooperative threads the servers of other tests answer on.
    @Test(arguments: [2017, 7, 1_000_003] as [UInt64]) func theReviewListsWhatCheckingEveryEntryLists(seed: UInt64) async throws {
        try await BlockingWork.run { try Self.compare(seed: seed) }
    }

    static func compare(seed: UInt64) throws {
        let node = try TestNode(site: "hq", role: .hq)
        defer { node.remove() }
        try node.store.installPlan(Programme.embeddedText)
        let plan = Programme.embedded
        var rng = SplitMix64(seed: seed)

        // Faulty values for a field, by its type (and a sound one first).
        func values(_ f: Programme.Field) -> [Value?] {
            var sound: [Value?]
            switch f.type {
            case .county: sound = [.text(Bool.random(using: &rng) ? "lintan" : "chengde")]
            case .workArea: sound = [.text("education")]
            case .date: sound = [.text("2017-06-01"), .text("2016-02-29")]
            case .year: sound = [.int(2017), .text("2018")]
            case .int, .money: sound = [.int(max(f.min ?? 0, 40))]
            case .real: sound = [.int(3)]
            case .text: sound = [.text(f.values?.first ?? "x")]
            case .project, .stage: sound = [.text("lt-1")]
            }
            let faulty: [Value?] = [
                nil, .null, .text("lintna"), .text("2017-02-30"), .text("2017-6-1"), .text("abcd"), .text("2031"), .int(2031), .int(-5),
                .int(0), .text("40"), .real(2.5), .text("advnce"),
                // Implausible to the money model: beyond any county's aid, near the type's limit,
                // a day outside the plan's years.
                .int(5_000_000_000_000_000_000), .int(.max), .text("2027-03-01"), .text("2015-12-31"),
            ]
            return sound + faulty
        }
        var written = 0
        func entries(_ count: Int) throws {
            for _ in 0..<(count / 25) {
                var intents: [Intent] = []
                for _ in 0..<25 {
                    let kind = plan.kinds.filter(\.isLedger).randomElement(using: &rng)!
                    var fields: [String: Value] = [:]
                    for f in plan.fields(of: kind) where f.name != "kind" {
                        // Mostly sound, sometimes one fault per field.
                        let choices = values(f)
                        if let v = (Int.random(in: 0..<6, using: &rng) == 0 ? choices.randomElement(using: &rng)! : choices[0]) {
                            fields[f.storedName] = v
                        }
                    }
                    switch Int.random(in: 0..<11, using: &rng) {
                    case 0: fields["kind"] = .text("trainnig")
                    case 1: fields["kind"] = nil  // the ledger's only kind, or none
                    case 2: fields["extra_field"] = .text("?")
                    default: fields["kind"] = .text(kind.id)
                    }
                    intents.append(
                        .append(ledger: kind.ledger!, entryID: "e\(written)", fields: fields.map { FieldAssignment($0.key, $0.value) }))
                    written += 1
                }
                try node.store.commit(intents)
            }
        }
        // Records of the plan's collections, written whole or in part, mostly sound.
        let recordKinds = plan.kinds.filter { $0.collection != nil }
        func records(_ ids: Range<Int>) throws {
            try node.store.commit(
                ids.map { i in
                    let kind = recordKinds[i % recordKinds.count]
                    var fields: [FieldAssignment] = []
                    for f in plan.fields(of: kind) where Int.random(in: 0..<12, using: &rng) > 0 {
                        let choices = values(f)
                        if let v = (Int.random(in: 0..<8, using: &rng) == 0 ? choices.randomElement(using: &rng)! : choices[0]) {
                            fields.append(FieldAssignment(f.storedName, v))
                        }
                    }
                    if Int.random(in: 0..<15, using: &rng) == 0 { fields.append(FieldAssignment("extra_field", .text("?"))) }
                    if fields.isEmpty { fields.append(FieldAssignment("note", .text("x"))) }
                    return .put(collection: kind.collection!, recordID: "r\(i)", fields: fields)
                })
        }
        try entries(1_000)
        try records(0..<300)
        // Two reversals of one entry, made at two nodes before either saw the other's: the later
        // cancels nothing (the ledger rule's verdict, listed by the review).
        let other = try TestNode(site: "hq", label: "other", role: .hq)
        defer { other.remove() }
        let entry: [FieldAssignment] = [
            .init("county", .text("lintan")), .init("date", .text("2017-07-01")), .init("kind", .text("disbursement")),
            .init("stage", .text("advance")), .init("amount_fen", .int(500)),
        ]
        try other.store.commit([.append(ledger: "disbursements", entryID: "twice", fields: entry)])
        func carry(_ from: Store, to: Store) throws {
            _ = try to.apply(try from.transactions(missingFrom: try to.vector()).transactions)
        }
        try carry(other.store, to: node.store)
        let reversal: [FieldAssignment] = [
            .init(Names.reversesField, .text("twice")), .init("county", .text("lintan")), .init("date", .text("2017-07-02")),
            .init("amount_fen", .int(-500)), .init("kind", .text("disbursement")), .init("stage", .text("advance")),
        ]
        try other.store.commit([.append(ledger: "disbursements", entryID: nil, fields: reversal)])
        try node.store.commit([.append(ledger: "disbursements", entryID: nil, fields: reversal)])
        try carry(other.store, to: node.store)

        try Self.expectTheReviewListsEveryProblem(node.store, written: written, "first view")
        // Changed records (some mended, some broken), deleted ones, more entries: what the
        // triggers put on the lists since the last view.
        try records(200..<400)
        try node.store.commit((0..<20).map { i in .delete(collection: recordKinds[(i * 7) % recordKinds.count].collection!, recordID: "r\(i * 7)") })
        try entries(250)
        let before = try Self.expectTheReviewListsEveryProblem(node.store, written: written, "after changes")
        // A new plan (Lintan no longer among its counties): both lists are made again from everything.
        var json = try JSONSerialization.jsonObject(with: Programme.embeddedText) as! [String: Any]
        json["counties"] = (json["counties"] as! [[String: Any]]).filter { $0["id"] as? String != "lintan" }
        json["version"] = (json["version"] as! Int) + 1
        json["sites"] = (json["sites"] as! [[String: Any]]).filter { $0["id"] as? String != "lintan" }
        json["first_batch_projects"] = (json["first_batch_projects"] as! [[String: Any]]).filter { $0["county"] as? String != "lintan" }
        // Lintan's data stays behind on purpose here: what no longer fits is listed.
        try node.store.installPlan(try JSONSerialization.data(withJSONObject: json), droppingCountiesWithData: true)
        #expect(try node.store.programme().counties.count == plan.counties.count - 1)
        let after = try Self.expectTheReviewListsEveryProblem(node.store, written: written, "after a new plan")
        #expect(after > before + 100, "Lintan's entries and records no longer fit: \(before) problems before, \(after) after")
    }

    /// The review (from its kept lists) lists exactly the reference's problems, and the same rows
    /// in the same order as the review that reads everything. Returns how many it lists.
    @discardableResult
    static func expectTheReviewListsEveryProblem(_ store: Store, written: Int, _ moment: String) throws -> Int {
        let plan = try store.programme()
        let report = try store.report("review", today: "2018-01-01")
        // The review above read the kept lists (not the fallback that reads everything, which
        // would agree with the reference trivially), and they are current now.
        #expect(try store.refreshReviewIndex(), "\(moment): the kept lists are in use")
        #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM record_dirty") } == 0)
        #expect(report == (try store.reviewReport(readingEverything: true)), "\(moment): the kept lists and reading everything agree")
        func text(_ cell: ReportTable.Cell) -> String { if case .text(let t) = cell { t } else { "" } }
        // Entries of the plan's ledgers and records (not the row for a ledger the plan does not name).
        let rows: [[String]] = report.rows.map { $0.map(text) }
        // By the type's id (the machines' column), the item and the detail.
        let listed: [String] = rows.filter { row in (row[4] == "plan" || row[4] == "ledger") && row[1].contains("/") }
            .map { row in [row[4], row[1], row[2]].joined(separator: " ") }

        // The reference: every entry of every ledger the plan names, and every record of its
        // collections, decoded and checked.
        let check = ProgrammeCheck(plan)
        var expected: [String] = []
        for ledger in Set(plan.kinds.compactMap(\.ledger)).sorted() {
            let kinds = plan.kinds(inLedger: ledger)
            for e in try store.ledger(ledger) {
                let item = "\(ledger)/\(e.entryID)"
                if MoneyModel.isReversal(e.fields) {
                    if let why = e.invalidReversal { expected.append("ledger \(item) \(why)") }
                    continue
                }
                let named = e.fields["kind"]?.description
                guard let kind = kinds.first(where: { $0.id == named }) ?? (named == nil && kinds.count == 1 ? kinds[0] : nil) else {
                    expected.append(
                        "plan \(item) 类型\(named ?? "（未填）")不是本账目的类型：\(kinds.map(\.id).joined(separator: ", "))")
                    continue
                }
                let problems = check.storedProblems(kind: kind, fields: e.fields)
                if !problems.isEmpty { expected.append("plan \(item) \(problems.joined(separator: "; "))") }
            }
        }
        let faultyEntries = expected.count
        var faultyRecords = 0
        var soundRecords = 0
        for kind in plan.kinds {
            guard let collection = kind.collection else { continue }
            for r in try store.records(collection) {
                let problems = check.storedProblems(kind: kind, fields: r.fields)
                if !problems.isEmpty {
                    expected.append("plan \(collection)/\(r.recordID) \(problems.joined(separator: "; "))")
                    faultyRecords += 1
                } else {
                    soundRecords += 1
                }
            }
        }
        // The test data must hold faults and sound entries alike, or the comparison proves little.
        #expect(faultyEntries > 100 && faultyEntries < written - 10, "\(moment): \(faultyEntries) faulty entries of \(written)")
        #expect(faultyRecords > 10 && soundRecords > 10, "\(moment): \(faultyRecords) faulty records, \(soundRecords) sound")
        #expect(expected.contains { $0.hasPrefix("ledger disbursements/") }, "a reversal that cancels nothing is among them")
        let missed = Set(expected).subtracting(listed).sorted()
        let extra = Set(listed).subtracting(expected).sorted()
        #expect(missed.isEmpty, "\(moment): the review missed \(missed.count): \(missed.prefix(5))")
        #expect(extra.isEmpty, "\(moment): the review listed \(extra.count) more: \(extra.prefix(5))")
        #expect(listed.count == expected.count)
        return listed.count
    }

    @Test func aPlanThisVersionCannotReadIsSaidInTheReviewAndTheDefaultIsUsed() throws {
        let node = try TestNode(site: "hq", role: .hq)
        defer { node.remove() }
        try node.store.installPlan(Programme.embeddedText)
        #expect(try node.store.planState().unreadable == nil)
        // A plan of a newer format, as a newer HQ might send it.
        try node.store.commit([.put(collection: Store.programmeCollection, recordID: "plan", fields: [.init("json", .text(#"{"programme": 2}"#))])])
        let state = try node.store.planState()
        #expect(state.unreadable != nil && state.plan == Programme.embedded)
        let review = try node.store.report("review", today: "2018-01-01")
        #expect(review.rows.contains { $0[1] == .text("programme/plan") && "\($0[2])".contains("读不了总部的规划") }, "\(review.rows)")
    }
}
