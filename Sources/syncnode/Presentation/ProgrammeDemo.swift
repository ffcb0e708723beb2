import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import SyncNode
import SyncProtocol

/// The embedded default run: the 2017 plan on four local nodes (HQ and the three counties).
///
/// HQ is created as the trust anchor and approves the three county nodes; it records the plan's
/// reference data and targets and serves the sync API on loopback. Each county records a day of
/// work while offline. Chengde and Lintan then sync with HQ over HTTP (libcurl client, signed
/// requests); Gangu, with no network, carries a bundle file both ways. Every node ends with the
/// same state, which the demo checks.
public struct ProgrammeDemo {
    public let directory: URL
    let say: @Sendable (String) -> Void

    public init(directory: URL, say: @escaping @Sendable (String) -> Void) {
        self.directory = directory
        self.say = say
    }

    /// Runs the demo and returns whether all four nodes converged.
    public func run() async throws(SyncNodeError) -> Bool {
        if FileManager.default.fileExists(atPath: directory.path) {
            throw SyncNodeError(.nodeExists, "\(directory.path) already exists; remove it or give the demo another --dir")
        }
        let hq = try Store.create(in: directory.appendingPathComponent("hq"), site: "hq", label: "dongli-hq", role: .hq, trust: .hq)
        var counties: [Store] = []
        for c in DefaultPlan.counties {
            let store = try Store.create(
                in: directory.appendingPathComponent(c.id), site: c.id, label: "\(c.id)-office-1", role: .county, trust: .anchor(hq.info.publicKey))
            try hq.commit([.approve(node: store.info.nodeID, key: store.info.publicKey, site: c.id, role: .county, label: store.info.label)])
            counties.append(store)
        }
        defer {
            try? hq.close()
            for c in counties { try? c.close() }
        }
        say(
            "created 4 nodes in \(directory.path); HQ approved "
                + counties.map { "\($0.info.label) (key \($0.info.publicKey.fingerprint.prefix(9)))" }.joined(separator: ", "))

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

        let server = try await DemoServer.start(hq)
        say("HQ serves the sync API on http://127.0.0.1:\(server.port)")
        let chengde = counties[0]
        let lintan = counties[1]
        let gangu = counties[2]
        do {
            // The counties first get the registry and the plan.
            for county in [chengde, lintan] { try await sync(county, server.port) }
            try carry(from: hq, to: gangu)

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
            try lintan.commit([
                .put(collection: "projects", recordID: "lt-school", fields: [.init("stage", .text("started")), .init("progress_pct", .int(15))])
            ])
            // HQ edits the same field without having seen Lintan's edit: a conflict to review.
            try hq.commit([.put(collection: "projects", recordID: "lt-school", fields: [.init("progress_pct", .int(10))])])
            // Lintan tries to record money HQ's finance bureau disburses: refused at once, locally.
            do {
                try lintan.commit([
                    .append(ledger: "disbursements", entryID: nil, fields: [.init("county", .text("lintan")), .init("amount_fen", .int(1))])
                ])
            } catch {
                say("lintan-office-1 was stopped from writing a disbursement: \(error.message)")
            }
            say("each county recorded its first-batch projects, a training session and a labour-transfer batch while offline")

            try carry(from: gangu, to: hq)
            for county in [chengde, lintan, chengde] { try await sync(county, server.port) }
            try carry(from: hq, to: gangu)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()

        let digests = try ([hq] + counties).map { node throws(SyncNodeError) in try node.stateDigest() }
        let converged = Set(digests).count == 1
        say("")
        say(try fundsTable(hq))
        say("")
        let projects = try hq.records("projects")
        say(
            "projects at HQ: \(projects.count) ("
                + Dictionary(grouping: projects, by: { $0.fields["county"]?.description ?? "" }).map { "\($0.key) \($0.value.count)" }.sorted()
                .joined(
                    separator: ", ") + ")")
        let conflicts = try hq.conflicts()
        say(
            "conflicts to review: \(conflicts.count)"
                + (conflicts.first.map { " (\($0.collection)/\($0.recordID).\($0.field): kept \($0.winnerValue), other \($0.otherValue))" } ?? ""))
        say("all 4 nodes hold identical state: \(converged ? "yes" : "NO")")
        return converged
    }

    private func sync(_ county: Store, _ port: Int) async throws(SyncNodeError) {
        let transport = HTTPTransport(baseURL: "http://127.0.0.1:\(port)", signer: county.requestSigner)
        let summary = try await Syncer(store: county, transport: transport).run(bookkeepingKey: transport.baseURL)
        say(
            "HTTP sync \(county.info.label) <-> dongli-hq: sent \(summary.sent), received \(summary.received) transactions, \(summary.wireBytes) bytes on the wire"
        )
    }

    private func carry(from source: Store, to target: Store) throws(SyncNodeError) {
        let file = directory.appendingPathComponent("\(source.info.site)-to-\(target.info.site).bundle")
        let exported = try source.exportBundle(to: file, since: try target.vector())
        let imported = try target.importBundle(from: file)
        say(
            "bundle (USB) \(source.info.label) -> \(target.info.label): \(exported.transactions) transactions, \(exported.bytes) bytes, \(imported.apply?.applied ?? 0) applied"
        )
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

/// Totals over ledger entries. A valid reversal carries the opposite amounts of the entry it
/// cancels, so summing every entry that counts is right; a reversal that cancels nothing counts
/// for nothing.
public enum LedgerMath {
    public static func sum(_ rows: [LedgerRow], field: String, where key: String, equals value: String) -> Int64 {
        rows.filter { $0.counts && $0.fields[key] == .text(value) }.reduce(0) { total, row in
            if case .int(let amount)? = row.fields[field] {
                let (sum, overflow) = total.addingReportingOverflow(amount)
                return overflow ? (amount > 0 ? .max : .min) : sum
            }
            return total
        }
    }
}

/// Money display: fen as 万元 with up to two decimals.
/// HQ's API on a loopback port for the length of the demo.
struct DemoServer {
    let port: Int
    let group: ServiceGroup
    let task: Task<Void, any Error>

    static func start(_ store: Store) async throws(SyncNodeError) -> DemoServer {
        var logger = Logger(label: "syncnode.demo")
        logger.logLevel = .warning
        let ready = AsyncStream<Int>.makeStream()
        let app = try NodeServer.application(service: SyncService(store: store), host: "127.0.0.1", port: 0, logger: logger) { port in
            ready.continuation.yield(port)
        }
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        let task = Task { try await group.run() }
        var iterator = ready.stream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw SyncNodeError(.unreachable, "the demo server did not start") }
        return DemoServer(port: port, group: group, task: task)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
