import Foundation
import SyncProtocol

/// The embedded default run: the 2017 plan on four local nodes (HQ and the three counties).
/// HQ records the plan's reference data and targets; each county records a day of work while
/// offline; the nodes exchange bundle files through HQ; every node ends with the same state.
public struct ProgrammeDemo {
    public let directory: URL
    let say: (String) -> Void

    public init(directory: URL, say: @escaping (String) -> Void) {
        self.directory = directory
        self.say = say
    }

    /// Runs the demo and returns whether all four nodes converged.
    public func run() throws(SyncNodeError) -> Bool {
        if FileManager.default.fileExists(atPath: directory.path) {
            throw SyncNodeError(.nodeExists, "\(directory.path) already exists; remove it or give the demo another --dir")
        }
        let hq = try Store.create(in: directory.appendingPathComponent("hq"), site: "hq", label: "dongli-hq")
        let counties = try DefaultPlan.counties.map { c throws(SyncNodeError) in
            try Store.create(in: directory.appendingPathComponent(c.id), site: c.id, label: "\(c.id)-office-1")
        }
        defer {
            try? hq.close()
            for c in counties { try? c.close() }
        }
        say("created 4 nodes in \(directory.path): dongli-hq, " + counties.map(\.info.label).joined(separator: ", "))

        try hq.commit(DefaultPlan.referenceIntents)
        try hq.commit(
            DefaultPlan.counties.map { c in
                .append(
                    ledger: "disbursements", entryID: nil,
                    fields: [
                        .init("county", .text(c.id)), .init("year", .int(2017)), .init("stage", .text("advance")),
                        .init("amount_fen", .int(c.yearlyAidFen / 2)),
                    ])
            })
        say("HQ recorded the plan: 3 counties, 8 work areas, 15 yearly fund targets, 3 advance disbursements")
        try carry(from: hq, to: counties)

        // A day of offline work in each county.
        for county in counties {
            try county.commit(DefaultPlan.projectIntents(county: county.info.site))
            try county.commit([
                .append(
                    ledger: "trainings", entryID: nil,
                    fields: [.init("county", .text(county.info.site)), .init("topic", .text("劳务输出岗前培训")), .init("attendees", .int(40))]),
                .append(
                    ledger: "labour_transfers", entryID: nil,
                    fields: [
                        .init("county", .text(county.info.site)), .init("destination", .text("天津")), .init("people", .int(25)),
                        .init("of_which_poor", .int(18)),
                    ]),
            ])
        }
        let lintan = counties[1]
        try lintan.commit([
            .put(collection: "projects", recordID: "lt-school", fields: [.init("stage", .text("started")), .init("progress_pct", .int(15))])
        ])
        // HQ edits the same field without having seen Lintan's edit: a conflict to review.
        try hq.commit([.put(collection: "projects", recordID: "lt-school", fields: [.init("progress_pct", .int(10))])])
        say("each county recorded its first-batch projects, a training session and a labour-transfer batch while offline")

        for county in counties { try carry(from: county, to: [hq]) }
        try carry(from: hq, to: counties)

        let digests = try ([hq] + counties).map { node throws(SyncNodeError) in try node.stateDigest() }
        let converged = Set(digests).count == 1
        say("")
        say(try fundsTable(hq))
        say("")
        let projects = try hq.records("projects")
        say(
            "projects at HQ: \(projects.count) ("
                + Dictionary(grouping: projects, by: { $0.fields["county"]?.description ?? "" }).map { "\($0.key) \($0.value.count)" }.sorted()
                .joined(separator: ", ") + ")")
        let conflicts = try hq.conflicts()
        say(
            "conflicts to review: \(conflicts.count)"
                + (conflicts.first.map { " (\($0.collection)/\($0.recordID).\($0.field): kept \($0.winnerValue), other \($0.otherValue))" } ?? ""))
        say("all 4 nodes hold identical state: \(converged ? "yes" : "NO")")
        return converged
    }

    private func carry(from source: Store, to targets: [Store]) throws(SyncNodeError) {
        for target in targets {
            let file = directory.appendingPathComponent("\(source.info.site)-to-\(target.info.site).bundle")
            let exported = try source.exportBundle(to: file, since: try target.vector())
            let imported = try target.importBundle(from: file)
            say(
                "bundle \(source.info.label) -> \(target.info.label): \(exported.transactions) transactions, \(exported.bytes) bytes, \(imported.apply?.applied ?? 0) applied"
            )
        }
    }

    private func fundsTable(_ hq: Store) throws(SyncNodeError) -> String {
        let targets = try hq.ledger("fund_targets")
        let disbursed = try hq.ledger("disbursements")
        var table = TextTable(["county", "target 2016–2020 (万元)", "disbursed (万元)", "% of target"])
        for c in DefaultPlan.counties {
            let target = LedgerMath.sum(targets, field: "amount_fen", where: "county", equals: c.id)
            let paid = LedgerMath.sum(disbursed, field: "amount_fen", where: "county", equals: c.id)
            table.add([c.name, Money.wan(target), Money.wan(paid), target == 0 ? "-" : String(format: "%.1f%%", Double(paid) * 100 / Double(target))])
        }
        return table.render()
    }
}

/// Totals over ledger entries. Reversal entries carry negative amounts, so a plain sum is right.
public enum LedgerMath {
    public static func sum(_ rows: [LedgerRow], field: String, where key: String, equals value: String) -> Int64 {
        rows.filter { $0.fields[key] == .text(value) }.reduce(0) { total, row in
            if case .int(let amount)? = row.fields[field] { return total + amount }
            return total
        }
    }
}

/// Money display: fen as 万元 with up to two decimals.
public enum Money {
    public static func wan(_ fen: Int64) -> String {
        let wan = Double(fen) / Double(DefaultPlan.fenPerWan)
        return wan == wan.rounded() ? String(Int64(wan)) : String(format: "%.2f", wan)
    }
}
