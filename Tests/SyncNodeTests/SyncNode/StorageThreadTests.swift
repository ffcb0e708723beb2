import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SyncProtocol
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
}
