import FaultProxy
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SyncNode
import SyncProtocol
import Testing

/// A transfer cut in the middle of a body, over real HTTP through a fault proxy.
@Suite struct HTTPResumeTests {
    private func syncer(_ store: Store, port: UInt16) -> Syncer {
        var limits = SyncLimits()
        limits.maxTransactions = 10
        var options = HTTPClientOptions()
        // Generous: the server runs in this test process, whose cooperative pool the other tests
        // running in parallel keep busy; a timeout here would shift the proxy's connection count.
        options.timeoutSeconds = 120
        // And no stall limit shorter than that: a busy run can leave the server silent for 20 s.
        options.lowSpeedSeconds = 120
        // One connection per request, so the proxy's plan can cut the n-th request.
        options.reuseConnections = false
        return Syncer(
            store: store, transport: HTTPTransport(baseURL: "http://127.0.0.1:\(port)", client: CurlClient(options: options)), limits: limits)
    }

    /// `node` served over real HTTP (Hummingbird on loopback) behind a fault proxy; `body` gets the
    /// proxy and the port to sync through.
    private func withProxiedServer(of node: TestNode, _ body: @escaping @Sendable (FaultProxy, UInt16) async throws -> Void) async throws {
        let app = Application(router: NodeServer.router(service: SyncService(store: node.store), logger: Logger(label: "test")))
        try await app.testLive { client in
            let proxy = FaultProxy(upstreamPort: try #require(client.port))
            let port = try proxy.start()
            defer { proxy.stop() }
            try await body(proxy, port)
        }
    }

    @Test func pushCutMidBodyResumesWithoutResendingAcknowledgedBatches() async throws {
        let hq = try TestNode(site: "hq")
        let county = try TestNode()
        defer {
            hq.remove()
            county.remove()
        }
        for i in 0..<50 {
            try county.store.commit([.put(collection: "projects", recordID: "p\(i)", fields: [.init("name", .text("项目\(i)"))])])
        }
        try await withProxiedServer(of: hq) { proxy, port in
            // Connections: 1 status, 2 pull, 3 first push, 4 second push: cut after 300 bytes.
            proxy.plan { $0 == 4 ? .cutRequest(afterBytes: 300) : .pass }
            await #expect(throws: SyncNodeError.self) { try await syncer(county.store, port: port).run() }
            #expect(try hq.store.vector()[county.store.info.nodeID] == 10)

            let resumed = try await syncer(county.store, port: port).run()
            #expect(resumed.sent == 40)
            #expect(resumed.batchesSent == 4)
        }
        #expect(try hq.store.stateDigest() == county.store.stateDigest())
    }

    @Test func aRoundKeepsOneConnectionAndSurvivesItsLoss() async throws {
        let hq = try TestNode(site: "hq")
        let county = try TestNode()
        defer {
            hq.remove()
            county.remove()
        }
        for i in 0..<25 {
            try county.store.commit([.put(collection: "projects", recordID: "p\(i)", fields: [.init("name", .text("项目\(i)"))])])
            try hq.store.commit([.put(collection: "counties", recordID: "c\(i)", fields: [.init("note", .text("东丽\(i)"))])])
        }
        try await withProxiedServer(of: hq) { proxy, port in
            var limits = SyncLimits()
            limits.maxTransactions = 10
            let transport = HTTPTransport(baseURL: "http://127.0.0.1:\(port)")
            // Status, three pulls and three pushes: one kept-alive connection.
            let first = try await Syncer(store: county.store, transport: transport, limits: limits).run()
            #expect(first.batchesReceived == 3 && first.batchesSent == 3)
            #expect(proxy.connections == 1)
            // The kept connection dies (the proxy restarts on the same port): the next round
            // opens a new one and completes; nothing is lost.
            proxy.stop()
            _ = try proxy.start(port: port)
            try county.store.commit([.put(collection: "projects", recordID: "late", fields: [.init("name", .text("迟到"))])])
            let second = try await Syncer(store: county.store, transport: transport, limits: limits).run()
            #expect(second.sent == 1)
            #expect(proxy.connections >= 2)
        }
        #expect(try hq.store.stateDigest() == county.store.stateDigest())
    }

    @Test func pullCutMidResponseResumesWhereItStopped() async throws {
        let hq = try TestNode(site: "hq")
        let county = try TestNode()
        defer {
            hq.remove()
            county.remove()
        }
        for i in 0..<30 {
            try hq.store.commit([.put(collection: "counties", recordID: "c\(i)", fields: [.init("note", .text(String(repeating: "东丽", count: 200)))])]
            )
        }
        try await withProxiedServer(of: hq) { proxy, port in
            // Connections: 1 status, 2 first pull, 3 second pull: its response is cut.
            proxy.plan { $0 == 3 ? .cutResponse(afterBytes: 200) : .pass }
            await #expect(throws: SyncNodeError.self) { try await syncer(county.store, port: port).run() }
            #expect(try county.store.vector()[hq.store.info.nodeID] == 10)
            let resumed = try await syncer(county.store, port: port).run()
            #expect(resumed.received == 20)
        }
        #expect(try hq.store.stateDigest() == county.store.stateDigest())
    }
}
