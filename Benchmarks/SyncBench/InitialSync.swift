import Foundation
import SyncNode
import SyncProtocol

/// P4: initial sync of about 1M field changes to a fresh node over loopback HTTP.
///
/// Shape: records of the benchmark shape (6 fields), `recordsPerTransaction` records per
/// transaction — one record per transaction by default, as staff save one form at a time, which
/// gives ⌈1M / 6⌉ = 166,667 transactions: the per-transaction costs (log row, vector, frame) are
/// all paid, the least favourable of the plausible shapes.
///
/// Three processes, so that building the source does not pollute the memory figure: this process
/// builds the source node (untimed) and closes it; a `serve-child` serves it; a `sync-child`
/// creates the fresh node and runs one sync round with the default batch limits (`SyncLimits()`,
/// as `syncnode sync`). Peak RSS is the child's VmHWM, read by the child itself after the round;
/// the server's is read from /proc while it still runs.
///
/// With `primary` false the same sync is run as context (for another transaction shape).
enum InitialSync {
    static func run(changes: Int, recordsPerTransaction: Int, primary: Bool = true) async throws -> [Figure] {
        let scratch = try Scratch("p4")
        defer { scratch.remove() }
        let records = (changes + Workload.fieldsPerRecord - 1) / Workload.fieldsPerRecord
        let transactions = (records + recordsPerTransaction - 1) / recordsPerTransaction
        let sourceDir = scratch.path("source")
        let buildSeconds = try Clock.seconds(repeats: 1) {
            let source = try Store.create(in: sourceDir, site: "hq", label: nil)
            try Workload.insertRecords(source, count: records, perTransaction: recordsPerTransaction)
            try source.close()
        }
        Notes.add(
            "P4: source of \(records) records in \(transactions) transactions built in \(format(buildSeconds)) s (untimed; \(format(buildSeconds / Double(transactions) * 1e6)) µs per commit)."
        )

        let portFile = scratch.path("port")
        let server = try Child.bench(
            ["serve-child", "--data", sourceDir.path, "--listen", "127.0.0.1:0", "--port-file", portFile.path], label: "P4 server")
        defer { server.stop() }
        let port = try waitForPort(portFile, child: server)
        let client = try Child.bench(
            ["sync-child", "--data", scratch.path("target").path, "--create", "--peer", "http://127.0.0.1:\(port)", "--expect", "\(transactions)"],
            label: "P4 fresh node")
        let status = client.wait(timeout: 900)
        let serverPeak = Memory.peakRSS(pid: server.pid)
        server.stop()
        guard status == 0 else { throw BenchError("the P4 sync child failed (status \(status.map(String.init) ?? "killed after 900 s"))") }
        let result = try client.json()
        let seconds = result["seconds"] as? Double ?? .nan
        let peak = Double(result["peakRSS"] as? Int ?? 0) / 1e6
        let before = Double(result["peakBeforeSync"] as? Int ?? 0) / 1e6
        let wire = result["wireBytes"] as? Int ?? 0
        let batches = result["batches"] as? Int ?? 0
        guard result["records"] as? Int == records else { throw BenchError("the fresh node does not hold every record") }

        // The baseline: the same rows upserted into an empty plain table, 1,000 per transaction.
        let plain = try PlainTable(in: scratch.path("plain"))
        let plainSeconds = try Clock.seconds(repeats: 1) { try plain.upsert(0..<records, perTransaction: 1000) }
        try plain.close()

        let fieldChanges = records * Workload.fieldsPerRecord
        Notes.add(
            "P4: \(batches) pull batches, \(wire) bytes on the wire (\(format(Double(wire) / Double(fieldChanges))) B per field change); fresh node's peak RSS was \(format(before)) MB before the round; \(format(Double(fieldChanges) / seconds)) field changes/s."
        )
        if !primary {
            return [
                Figure(
                    id: "P4",
                    name:
                        "(context) the same sync shaped as \(transactions) transactions of \(recordsPerTransaction) records; peak RSS \(format(peak)) MB",
                    value: seconds, unit: "s", baseline: plainSeconds, baselineName: "plain upserts of the same rows, no network", goal: "—")
            ]
        }
        return [
            Figure(
                id: "P4",
                name:
                    "initial sync of \(fieldChanges) field changes (\(records) records, \(transactions) transactions) to a fresh node over loopback HTTP",
                value: seconds, unit: "s", baseline: plainSeconds, baselineName: "plain upserts of the same rows, no network",
                goal: "≤ 10 s", met: seconds <= 10),
            Figure(
                id: "P4", name: "peak RSS of the fresh node's process during that sync", value: peak, unit: "MB", goal: "≤ 200 MB", met: peak <= 200),
            Figure(id: "P4", name: "peak RSS of the serving node's process", value: Double(serverPeak) / 1e6, unit: "MB", goal: "—"),
        ]
    }
}
