import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SyncProtocol
import Synchronization
import Testing

@testable import SyncNode

/// Issue 24: a sync round is async, and under `serve` its scheduler runs it on Swift's cooperative
/// pool (as many threads as cores). Its SQLite work (applying what it pulled, reading what it
/// pushes, releasing held work) used to run there too, so one large apply held a core's thread
/// that the node's HTTP answers and web pages needed. It now runs on `BlockingWork`'s threads.
@Suite struct StorageThreadTests {
    @Test func aSyncRoundAppliesOffTheCooperativePool() async throws {
        let hq = try TestNode(site: "hq", label: "dongli-hq")
        let county = try TestNode()
        defer {
            hq.remove()
            county.remove()
        }
        for i in 0..<300 {
            try hq.store.commit([.put(collection: "projects", recordID: "p\(i)", fields: [.init("name", .text("项目 \(i)"))])])
        }
        try county.store.commit([.put(collection: "projects", recordID: "lintan-1", fields: [.init("name", .text("临潭"))])])
        let app = Application(router: NodeServer.router(service: SyncService(store: hq.store), logger: Logger(label: "test")))
        let before = county.store.applyThreads.withLock { $0 }
        try await app.testLive { client in
            let port = try #require(client.port)
            var limits = SyncLimits()
            limits.maxTransactions = 50  // several pulls, so several applies
            let summary = try await Syncer(store: county.store, transport: HTTPTransport(baseURL: "http://127.0.0.1:\(port)"), limits: limits).run()
            #expect(summary.received == 300 && summary.sent == 1)
        }
        let after = county.store.applyThreads.withLock { $0 }
        #expect(after.blocking - before.blocking >= 6, "each pulled batch applied on BlockingWork's threads: \(after)")
        #expect(after.other == before.other, "no apply of the round ran on the calling (cooperative) thread: \(after)")
        #expect(try hq.store.stateDigest() == county.store.stateDigest())
        // The check can fail: an apply called from the test's own task is counted as elsewhere.
        _ = try county.store.apply([])
        #expect(county.store.applyThreads.withLock { $0.other } == after.other + 1)
    }

    /// The same under `serve`, through the real binary: Lintan's `serve` pulls 3,000 of HQ's
    /// transactions (several batches) while 32 clients ask its `/health` without pause, so that
    /// its threads always have requests to answer. Its `/metrics` counts, by thread, where each
    /// apply ran: every one on the node's storage threads, none elsewhere; and every request of
    /// the load was answered while the round ran. (How busy Swift's own pool was is not measured:
    /// the count of where applies ran is the evidence.)
    @Test func underServeEveryApplyOfARoundRunsOnTheStorageThreadsWhileThePoolIsBusy() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (hq, lintan) = try Federation.hqAndLintan(in: dir)
        let hqStore = try Store.open(URL(fileURLWithPath: hq))
        for start in stride(from: 0, to: 3000, by: 500) {
            for i in start..<(start + 500) {
                try hqStore.commit([.put(collection: "projects", recordID: "p\(i)", fields: [.init("name", .text("项目 \(i)"))])])
            }
        }
        try hqStore.close()
        let hqServer = try ServeProcess(data: hq)
        defer { hqServer.stop() }
        #expect(try await Binary.runAsync(["peer", "add", "--data", lintan, hqServer.url]).status == 0)
        let lintanServer = try ServeProcess(data: lintan, extra: ["--every", "1h"])
        defer { lintanServer.stop() }

        // The load: 32 clients, each asking again as soon as it is answered, until the round ends.
        let load = Load()
        let url = lintanServer.url + "/health"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<32 {
                group.addTask {
                    let client = CurlClient()
                    while !load.done.withLock({ $0 }) {
                        let status = (try? await client.send(method: "GET", url: url))?.status
                        load.answered.withLock { status == 200 ? ($0.ok += 1) : ($0.failed += 1) }
                    }
                }
            }
            let done = try await ObservabilityTests.scrape(lintanServer.url) {
                $0.total("syncnode_sync_rounds_total", ["outcome": "ok"]) >= 1
            }
            load.done.withLock { $0 = true }
            try await group.waitForAll()
            #expect(done.total("syncnode_transactions_applied_total") >= 3000)
            #expect((done.value("syncnode_applies_since_start", ["thread": "storage"]) ?? 0) >= 6, "several batches: \(done.samples)")
            #expect(done.value("syncnode_applies_since_start", ["thread": "other"]) == 0, "no apply ran on a caller's thread")
        }
        let answered = load.answered.withLock { $0 }
        #expect(answered.ok >= 32 && answered.failed == 0, "the load was answered throughout: \(answered)")
    }

    /// The load's clients: when to stop, and how their requests were answered.
    final class Load: Sendable {
        let done = Mutex(false)
        let answered = Mutex((ok: 0, failed: 0))
    }
}
