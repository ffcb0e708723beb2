import Foundation
import SyncNode
import SyncProtocol

/// P6: HQ fan-in. One HQ node served by a `serve-child` process, `nodes` client nodes with a few
/// transactions each. In each of `waves` waves every client records one new transaction, then all
/// clients start a sync round with HQ at once (`Syncer.run()` over HTTP, libcurl), so HQ receives
/// pushes and serves pulls (including what the other clients pushed) concurrently. A round is
/// timed from its start to its end; errors are rounds that failed.
///
/// Two ways of running the clients:
/// - one `sync-child` process per node and wave (the figure): each process opens its store,
///   records its transaction and reports ready; then all are told to go at once.
/// - all nodes in this process (context): shows what concurrent rounds in one process get from
///   `CurlClient`, which runs each blocking request on `DispatchQueue.global()`.
///
/// Clients and HQ share the machine's cores, so a round's time includes waiting for the other
/// clients' work: a pessimistic simulation of 100 separate machines.
enum FanIn {
    static func run(nodes: Int, waves: Int, hqTransactions: Int, initialPerNode: Int) async throws -> [Figure] {
        let processes = try await scenario(
            nodes: nodes, waves: waves, hqTransactions: hqTransactions, initialPerNode: initialPerNode, inProcess: false)
        let inProcess = try await scenario(
            nodes: nodes, waves: waves, hqTransactions: hqTransactions, initialPerNode: initialPerNode, inProcess: true)
        let p99 = percentile(processes.samples, 0.99)
        return [
            Figure(
                id: "P6", name: "HQ fan-in, \(nodes) node processes syncing at once, \(waves) waves: failed rounds of \(processes.rounds)",
                value: Double(processes.errors.count), unit: "errors", goal: "0", met: processes.errors.isEmpty),
            Figure(id: "P6", name: "HQ fan-in, node processes: p99 round time", value: p99, unit: "s", goal: "≤ 2 s", met: p99 <= 2),
            Figure(id: "P6", name: "HQ fan-in, node processes: p50 round time", value: percentile(processes.samples, 0.5), unit: "s", goal: "—"),
            Figure(
                id: "P6", name: "HQ fan-in, all \(nodes) nodes in ONE process (context): p99 round time",
                value: percentile(inProcess.samples, 0.99), unit: "s", goal: "— (\(inProcess.errors.count) errors)"),
        ]
    }

    struct Outcome {
        var samples: [Double] = []
        var errors: [String] = []
        var rounds = 0
    }

    private static func scenario(nodes: Int, waves: Int, hqTransactions: Int, initialPerNode: Int, inProcess: Bool) async throws -> Outcome {
        let scratch = try Scratch("p6")
        defer { scratch.remove() }
        let hqDir = scratch.path("hq")
        // Trust as deployed: HQ is the trust anchor, every node verifies signatures against HQ's
        // registry and signs its requests; HQ approves every node before the first wave.
        let hq = try Store.create(in: hqDir, site: "hq", label: "dongli-hq", role: .hq, trust: .hq)
        for i in 0..<hqTransactions {
            try hq.commit([.put(collection: "projects", recordID: "hq-\(i)", fields: Workload.fields(i))])
        }
        var approvals: [Intent] = []
        var stores: [Store] = []
        for n in 0..<nodes {
            let store = try Store.create(
                in: scratch.path("node-\(n)"), site: "dongli-office", label: "office-\(n)", role: .office, trust: .anchor(hq.info.publicKey))
            approvals.append(
                .approve(node: store.info.nodeID, key: store.info.publicKey, site: "dongli-office", role: .office, label: store.info.label))
            stores.append(store)
        }
        try hq.commit(approvals)
        let hqHolds = try hq.vector().total
        try hq.close()

        let portFile = scratch.path("port")
        let server = try Child.bench(
            ["serve-child", "--data", hqDir.path, "--listen", "127.0.0.1:0", "--port-file", portFile.path], label: "P6 HQ server")
        defer { server.stop() }
        let port = try waitForPort(portFile, child: server)
        let url = "http://127.0.0.1:\(port)"

        var clients: [Store] = []
        defer { for c in clients { try? c.close() } }
        for (n, store) in stores.enumerated() {
            for i in 0..<initialPerNode {
                try store.commit([.put(collection: "projects", recordID: "n\(n)-\(i)", fields: Workload.fields(i))])
            }
            if inProcess { clients.append(store) } else { try store.close() }
        }

        var outcome = Outcome()
        var waveSeconds: [Double] = []
        var perWave: [String] = []
        for wave in 0..<waves {
            let results: [(Double, String?)]
            let start = DispatchTime.now().uptimeNanoseconds
            if inProcess {
                for (n, store) in clients.enumerated() {
                    let i = initialPerNode + wave
                    try store.commit([.put(collection: "projects", recordID: "n\(n)-\(i)", fields: Workload.fields(i))])
                }
                results = await inProcessWave(clients, url: url)
            } else {
                results = try processWave(nodes: nodes, scratch: scratch, url: url, record: { n in "n\(n)-\(initialPerNode + wave)" })
            }
            waveSeconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            let times = results.map(\.0)
            perWave.append("\(format(percentile(times, 0.5)))/\(format(times.max() ?? 0))")
            for (seconds, error) in results {
                outcome.rounds += 1
                if let error { outcome.errors.append(error) } else { outcome.samples.append(seconds) }
            }
        }
        let serverPeak = Memory.peakRSS(pid: server.pid)

        // Everything pushed arrived: HQ's vector counts every transaction of every node.
        let (status, _) = try await HTTPTransport(baseURL: url, signer: stores[0].requestSigner).status()
        let expected = hqHolds + UInt64(nodes * (initialPerNode + waves))
        server.stop()
        let how = inProcess ? "in one process" : "one process per node"
        if !outcome.errors.isEmpty {
            Notes.add("P6 (\(how)): \(outcome.errors.count) errors; first: \(Set(outcome.errors).prefix(3).joined(separator: " | "))")
        }
        Notes.add(
            "P6 (\(how)): \(nodes) nodes × \(waves) waves = \(outcome.rounds) rounds; HQ holds \(status.vector.total) of \(expected) transactions; round time p50/max per wave: \(perWave.joined(separator: ", ")) s; wave wall time incl. start-up max \(format(waveSeconds.max() ?? 0)) s; HQ peak RSS \(format(Double(serverPeak) / 1e6)) MB."
        )
        if outcome.errors.isEmpty && status.vector.total != expected {
            outcome.errors.append("HQ holds \(status.vector.total) transactions, expected \(expected)")
        }
        return outcome
    }

    private static func inProcessWave(_ clients: [Store], url: String) async -> [(Double, String?)] {
        await withTaskGroup(of: (Double, String?).self) { group in
            for store in clients {
                group.addTask {
                    let syncer = Syncer(
                        store: store, transport: HTTPTransport(baseURL: url, signer: store.requestSigner), logger: ChildModes.quietLogger)
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    do {
                        _ = try await syncer.run()
                        return (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9, nil)
                    } catch {
                        return (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9, "\(error)")
                    }
                }
            }
            var out: [(Double, String?)] = []
            for await r in group { out.append(r) }
            return out
        }
    }

    /// One `sync-child` per node: all start, record their transaction and report ready; then all
    /// are told to go at the same moment.
    private static func processWave(nodes: Int, scratch: Scratch, url: String, record: (Int) -> String) throws -> [(Double, String?)] {
        var children: [Child] = []
        for n in 0..<nodes {
            children.append(
                try Child.bench(
                    ["sync-child", "--data", scratch.path("node-\(n)").path, "--peer", url, "--commit-record", record(n), "--wait-go"],
                    label: "P6 node \(n)", withInput: true))
        }
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, children.contains(where: { $0.isRunning && !$0.stdout.hasPrefix("ready") }) {
            Thread.sleep(forTimeInterval: 0.02)
        }
        for child in children { child.send("go") }
        var results: [(Double, String?)] = []
        for child in children {
            let status = child.wait(timeout: max(1, deadline.timeIntervalSinceNow + 60))
            if status == 0, let object = try? child.json(), object["ok"] as? Bool == true, let seconds = object["seconds"] as? Double {
                results.append((seconds, nil))
            } else {
                let error = (try? child.json())?["error"] as? String ?? "exit \(status.map(String.init) ?? "killed")"
                results.append((.nan, error))
            }
        }
        return results
    }
}
