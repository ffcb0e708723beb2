import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import SyncNode
import SyncProtocol
import SyncWeb

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
        let (hq, counties) = try createNodes()
        defer {
            try? hq.close()
            for c in counties { try? c.close() }
        }
        let server = try await DemoServer.start(hq)
        say("HQ serves the sync API on http://127.0.0.1:\(server.port)")
        let chengde = counties[0]
        let lintan = counties[1]
        let gangu = counties[2]
        do {
            // The counties first get the registry and the plan.
            for county in [chengde, lintan] { try await sync(county, server.port) }
            try carry(from: hq, to: gangu)

            try recordOfflineWork(counties, hq: hq)
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
        for (name, filter) in [
            ("funds", ReportFilter(year: 2017)), ("projects", ReportFilter()), ("activities", ReportFilter()), ("review", ReportFilter()),
        ] {
            say("")
            say(ReportFormat.text(try hq.report(name, filter: filter, today: localToday())))
        }
        say("")
        say("all 4 nodes hold identical state: \(converged ? "yes" : "NO")")
        return converged
    }

    /// HQ as the trust anchor with the plan installed, and a node per county that HQ approved;
    /// HQ records the plan's first advance to each county.
    private func createNodes() throws(SyncNodeError) -> (hq: Store, counties: [Store]) {
        let plan = Programme.embedded
        let hq = try Store.create(in: directory.appendingPathComponent("hq"), site: "hq", label: "dongli-hq", role: .hq, trust: .hq)
        try hq.installPlan(Programme.embeddedText)
        var counties: [Store] = []
        for c in plan.counties {
            let store = try Store.create(
                in: directory.appendingPathComponent(c.id), site: c.id, label: "\(c.id)-office-1", role: .county, trust: .anchor(hq.info.publicKey))
            try hq.commit([.approve(node: store.info.nodeID, key: store.info.publicKey, site: c.id, role: .county, label: store.info.label)])
            counties.append(store)
        }
        say(
            "created 4 nodes in \(directory.path); HQ approved "
                + counties.map { "\($0.info.label) (key \($0.info.publicKey.fingerprint.prefix(9)))" }.joined(separator: ", "))

        // The yearly targets are the plan's (HQ sets another only where it differs); HQ records a
        // first advance to each county.
        for c in plan.counties {
            try add(
                hq, "disbursement", nil, [("county", c.id), ("stage", "advance"), ("amount", "\(c.yearlyAidFen[2017]! / 2 / Money.fenPerYuan)元")],
                "2017-03-01")
        }
        let years = plan.yearRange.count
        say(
            "HQ installed the plan (\(plan.counties.count) counties, \(plan.workAreas.count) work areas, \(plan.counties.count * years) yearly targets) and recorded 3 advance disbursements"
        )

        return (hq, counties)
    }

    /// Work recorded offline in each county, in the plan's words; a conflict for HQ to review,
    /// and a disbursement a county may not record.
    private func recordOfflineWork(_ counties: [Store], hq: Store) throws(SyncNodeError) {
        let plan = Programme.embedded
        let lintan = counties[1]
        // Work recorded offline in each county, in the plan's words.
        for (i, county) in counties.enumerated() {
            let site = county.info.site
            for p in plan.firstBatchProjects ?? [] where p["county"] == site {
                try add(
                    county, "project", p["id"], p.filter { $0.key != "id" }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, "2017-04-01")
            }
            try add(county, "training", nil, [("topic", "劳务输出岗前培训"), ("attendees", String(40 + i))], "2017-05-10")
            try add(county, "labour_transfer", nil, [("destination", "tianjin"), ("people", String(25 + i)), ("poor", "18")], "2017-05-20")
            try add(county, "expenditure", nil, [("purpose", "教学设备"), ("amount", "\(12 + i).5万")], "2017-06-01")
        }
        try add(lintan, "project_event", nil, [("project", "lt-school"), ("stage", "started"), ("progress_pct", "15")], "2017-06-15")
        // HQ changes a field of a Lintan project without having seen Lintan's change: a conflict to review.
        try lintan.commit([.put(collection: "projects", recordID: "lt-clinic", fields: [.init("responsible", .text("临潭卫健局"))])])
        try hq.commit([.put(collection: "projects", recordID: "lt-clinic", fields: [.init("responsible", .text("东丽卫计委"))])])
        // Lintan tries to record money HQ's finance bureau disburses: refused at once, locally.
        do {
            try add(lintan, "disbursement", nil, [("stage", "progress"), ("amount", "1万")], "2017-06-20")
        } catch {
            say("lintan-office-1 was stopped from recording a disbursement: \(error.message)")
        }
        say("each county recorded its first-batch projects, a training, a labour-transfer batch and an expenditure while offline")

    }

    private func add(_ store: Store, _ kind: String, _ id: String?, _ input: [(String, String)], _ date: String) throws(SyncNodeError) {
        let isRecord = Programme.embedded.kind(kind)?.collection != nil
        try store.recordProgrammeItem(kind: kind, recordID: id, input: isRecord ? input : input + [("date", date)], today: date)
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
        let recipients = try source.bundleRecipients(named: [target.info.label])
        let exported = try source.exportBundle(to: file, since: try target.vector(), sealedFor: recipients)
        let imported = try target.importBundle(from: file)
        say(
            "bundle (USB) \(source.info.label) -> \(target.info.label): \(exported.transactions) transactions, \(exported.bytes) bytes sealed for \(exported.sealedFor.joined(separator: ", ")), \(imported.apply?.applied ?? 0) applied"
        )
    }

}

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
