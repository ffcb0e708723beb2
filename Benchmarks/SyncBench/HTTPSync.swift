import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import SyncNode
import SyncProtocol

/// Initial sync of many transactions from one node to a fresh one over loopback HTTP (libcurl
/// client, Hummingbird server, both in this process).
enum HTTPSync {
    static func run(transactions: Int, changesPerTransaction: Int, batch: Int) async throws -> [Figure] {
        let scratch = try Scratch("http")
        defer { scratch.remove() }
        let source = try Store.create(in: scratch.path("source"), site: "hq", label: nil)
        let target = try Store.create(in: scratch.path("target"), site: "lintan", label: nil)
        defer {
            try? source.close()
            try? target.close()
        }
        var made = 0
        while made < transactions {
            // One transaction per commit, each setting `changesPerTransaction` fields.
            let i = made
            try source.commit([.put(collection: "projects", recordID: "p\(i)", fields: Array(Workload.fields(i).prefix(changesPerTransaction)))])
            made += 1
        }
        let logger = Logger(label: "bench")
        let portBox = PortBox()
        let app = try NodeServer.application(service: SyncService(store: source), host: "127.0.0.1", port: 0, logger: logger) { port in
            await portBox.set(port)
        }
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        let server = Task { try await group.run() }
        let port = await portBox.wait()
        var limits = SyncLimits()
        limits.maxTransactions = batch
        limits.maxBytes = 8 << 20
        let syncer = Syncer(store: target, transport: HTTPTransport(baseURL: "http://127.0.0.1:\(port)"), limits: limits)
        var summary: SyncSummary?
        let rssBefore = Memory.peakRSS()
        let seconds = try await Clock.seconds { summary = try await syncer.run() }
        await group.triggerGracefulShutdown()
        _ = try? await server.value
        guard let summary, summary.received == transactions else { throw BenchError("the sync did not carry every transaction") }
        let changes = transactions * changesPerTransaction
        return [
            Figure(
                id: "S1", name: "initial sync of \(transactions) transactions (\(changes) field changes) over loopback HTTP, batch \(batch)",
                value: seconds, unit: "s", goal: "—"),
            Figure(id: "S1", name: "bytes on the wire for that sync (gzip, both directions)", value: Double(summary.wireBytes), unit: "B", goal: "—"),
            Figure(
                id: "S1", name: "wire bytes per field change in that sync", value: Double(summary.wireBytes) / Double(changes), unit: "B", goal: "—"),
            Figure(
                id: "S1", name: "peak RSS of the process (server + client + both stores)", value: Double(max(rssBefore, Memory.peakRSS())) / 1e6,
                unit: "MB", goal: "—"),
        ]
    }
}

actor PortBox {
    private var port: Int?
    func set(_ p: Int) { port = p }
    func wait() async -> Int {
        while port == nil { try? await Task.sleep(for: .milliseconds(10)) }
        return port!
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
