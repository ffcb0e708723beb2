import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SyncNode
import SyncProtocol

/// P11: what watching a node costs it. A `/metrics` scrape of a node holding `records` records,
/// `conflicts` of them with an open conflict, and remembered peers (states are read from the
/// store at each scrape); and the time of a plain request through the node's router (request id,
/// log line, counters) against the same request on a bare Hummingbird router, same process and run.
enum MetricsCost {
    static func run(records: Int, conflicts: Int, requests: Int, smallTransactions: Int) async throws -> [Figure] {
        let scratch = try Scratch("p11")
        defer { scratch.remove() }
        let node = try Store.create(in: scratch.path("node"), site: "hq", label: nil)
        let other = try Store.create(in: scratch.path("other"), site: "lintan", label: nil)
        defer {
            try? node.close()
            try? other.close()
        }
        var i = 0
        while i < records {
            let n = min(1000, records - i)
            try node.commit((i..<(i + n)).map { .put(collection: "projects", recordID: "p\($0)", fields: Workload.fields($0)) })
            i += n
        }
        // The other node writes the first `conflicts` records' stage too, unaware of this node's.
        try other.commit((0..<conflicts).map { .put(collection: "projects", recordID: "p\($0)", fields: [.init("stage", .text("other"))]) })
        _ = try node.apply(try other.transactions(missingFrom: try node.vector()).transactions)
        for p in 0..<3 { try node.addPeer("http://peer-\(p).example:8420") }

        let logger = {
            var logger = Logger(label: "bench")
            logger.logLevel = .warning
            return logger
        }()
        let service = SyncService(store: node)
        let nodePort = PortBox()
        let app = try NodeServer.application(service: service, host: "127.0.0.1", port: 0, logger: logger) { await nodePort.set($0) }
        let bare = Router()
        // The same answer, made the same way as the node's `/health`.
        let identity = ["status": "ok", "node": node.info.nodeID.hex, "label": node.info.label]
        bare.get("health") { _, _ in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(identity))))
        }
        let barePort = PortBox()
        let bareApp = Application(
            router: bare, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { await barePort.set($0.localAddress?.port ?? 0) },
            logger: logger)
        let group = ServiceGroup(services: [app, bareApp], gracefulShutdownSignals: [], logger: logger)
        let server = Task { try await group.run() }
        defer { server.cancel() }
        let url = "http://127.0.0.1:\(await nodePort.wait())"
        let bareURL = "http://127.0.0.1:\(await barePort.wait())"
        let client = CurlClient()

        var scrapes: [Double] = []
        var size = 0
        for _ in 0..<20 {
            var answer: HTTPResult?
            scrapes.append(try await Clock.seconds { answer = try await client.send(method: "GET", url: url + "/metrics") })
            guard let answer, answer.status == 200 else { throw BenchError("GET /metrics failed") }
            size = answer.body.count
        }
        let conflictsSeen = String(decoding: try service.metricsExposition(), as: UTF8.self).split(separator: "\n")
            .first { $0.hasPrefix("syncnode_conflicts_open ") }
        guard conflictsSeen?.hasSuffix(" \(Double(conflicts))") == true else { throw BenchError("the scrape did not count the conflicts") }

        // Interleaved, so both see the same machine: the node's router, then the bare one.
        var nodeTimes: [Double] = []
        var bareTimes: [Double] = []
        for _ in 0..<3 {
            for (target, times) in [(url, 0), (bareURL, 1)] {
                let seconds = try await Clock.seconds {
                    for _ in 0..<requests {
                        guard try await client.send(method: "GET", url: target + "/health").status == 200 else {
                            throw BenchError("GET /health failed")
                        }
                    }
                }
                if times == 0 { nodeTimes.append(seconds) } else { bareTimes.append(seconds) }
            }
        }
        await group.triggerGracefulShutdown()
        _ = try? await server.value
        scrapes.sort()

        // When each node's last transaction arrived (`node list`, `report sync`, `status` at HQ, the
        // dashboard's funds table), over a log of many small transactions from two origins.
        let busy = try Store.create(in: scratch.path("busy"), site: "hq", label: nil)
        defer { try? busy.close() }
        for t in 0..<smallTransactions {
            try busy.commit([.put(collection: "notes", recordID: "n\(t)", fields: [.init("text", .text(String(repeating: "x", count: 200)))])])
        }
        let county = try Store.create(in: scratch.path("county"), site: "lintan", label: nil)
        try county.commit([.put(collection: "notes", recordID: "lt-1", fields: [.init("text", .text("from lintan"))])])
        _ = try busy.apply(try county.transactions(missingFrom: VersionVector()).transactions)
        try county.close()
        var arrivals = 0
        let lastArrival = try Clock.seconds(repeats: 5) { arrivals = try busy.lastReceivedByNode().count }
        guard arrivals == 2 else { throw BenchError("expected the last arrival of 2 nodes, got \(arrivals)") }
        let perRequest = nodeTimes.min()! / Double(requests) * 1e6
        let barePerRequest = bareTimes.min()! / Double(requests) * 1e6
        return [
            Figure(
                id: "P11", name: "GET /metrics over \(records) records, \(conflicts) open conflicts, 3 peers (median of 20)",
                value: scrapes[scrapes.count / 2], unit: "s", goal: "—"),
            Figure(id: "P11", name: "slowest of those 20 scrapes", value: scrapes.last!, unit: "s", goal: "—"),
            Figure(id: "P11", name: "size of the scrape", value: Double(size), unit: "B", goal: "—"),
            Figure(
                id: "P11", name: "GET /health through the node's router (request id, log line, counters), libcurl, sequential",
                value: perRequest, unit: "µs/request", baseline: barePerRequest, baselineName: "the same answer from a bare Hummingbird router",
                goal: "—"),
            Figure(
                id: "P11", name: "last arrival per node over \(smallTransactions + 1) transactions of 2 nodes (best of 5)",
                value: lastArrival * 1000, unit: "ms", goal: "—"),
        ]
    }
}
