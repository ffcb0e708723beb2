import Foundation
import SyncNode
import SyncProtocol

/// P1: local writes through the node's write path (`Store.commit`: materialised state, field
/// history, change log, vector, clock) against plain upserts of the same rows.
///
/// The issue measures one transaction of 100k records. A node transaction carries at most
/// `Transaction.maxChanges` (10,000) changes, that is at most 1,666 records of 6 fields, so the
/// node commits `perCommit` records per transaction (1,000: 6,000 changes) and the plain baseline
/// upserts in SQLite transactions of the same size. The plain table is also timed as one
/// transaction of every record, the shape.
enum LocalWrite {
    /// The node and plain databases of the last repeat, kept for P7.
    struct Built {
        let scratch: Scratch
        let nodeDirectory: URL
        let plain: URL
        let records: Int
    }

    static func run(records: Int, perCommit: Int, singleCommits: Int, repeats: Int) throws -> (figures: [Figure], built: Built) {
        precondition(perCommit * Workload.fieldsPerRecord <= Transaction.maxChanges)
        let scratch = try Scratch("p1")
        var nodeSeconds = Double.infinity
        var nodeCPU = 0.0
        var plainSeconds = Double.infinity
        var plainCPU = 0.0
        var plainOneSeconds = Double.infinity
        var nodeDirectory = scratch.path("node")
        var plainDirectory = scratch.path("plain")
        for k in 0..<repeats {
            // Alternate which goes first, so neither always meets a cold page cache.
            let nodeDir = scratch.path("node-\(k)")
            let plainDir = scratch.path("plain-\(k)")
            let order = k % 2 == 0 ? [0, 1, 2] : [2, 1, 0]
            for which in order {
                switch which {
                case 0:
                    let store = try Store.create(in: nodeDir, site: "lintan", label: nil)
                    let run = try Clock.wallAndCPU { try Workload.insertRecords(store, count: records, perTransaction: perCommit) }
                    if run.wall < nodeSeconds { (nodeSeconds, nodeCPU) = run }
                    try store.close()
                case 1:
                    let plain = try PlainTable(in: plainDir)
                    let run = try Clock.wallAndCPU { try plain.upsert(0..<records, perTransaction: perCommit) }
                    if run.wall < plainSeconds { (plainSeconds, plainCPU) = run }
                    try plain.close()
                default:
                    let dir = scratch.path("plain-one-\(k)")
                    let plain = try PlainTable(in: dir)
                    plainOneSeconds = min(plainOneSeconds, try Clock.seconds { try plain.upsert(0..<records, perTransaction: records) })
                    guard try plain.rowCount() == records else { throw BenchError("the plain table lost rows") }
                    try plain.close()
                    try? FileManager.default.removeItem(at: dir)
                }
            }
            if k > 0 {
                try? FileManager.default.removeItem(at: nodeDirectory)
                try? FileManager.default.removeItem(at: plainDirectory)
            }
            nodeDirectory = nodeDir
            plainDirectory = plainDir
        }

        // Small transactions: one record per commit, as a form saved in the UI.
        let singleStore = try Store.create(in: scratch.path("single"), site: "lintan", label: nil)
        let nodeSingle = try Clock.seconds { try Workload.insertRecords(singleStore, count: singleCommits, perTransaction: 1) }
        try singleStore.close()
        let plainSingleTable = try PlainTable(in: scratch.path("plain-single"))
        let plainSingle = try Clock.seconds { try plainSingleTable.upsert(0..<singleCommits, perTransaction: 1) }
        try plainSingleTable.close()

        let changes = records * Workload.fieldsPerRecord
        let ratio = nodeSeconds / plainSeconds
        Notes.add(
            "P1: best of \(repeats); node \(format(Double(records) / nodeSeconds)) records/s (\(format(Double(changes) / nodeSeconds)) field changes/s), plain \(format(Double(records) / plainSeconds)) rows/s in \(perCommit)-row transactions, \(format(Double(records) / plainOneSeconds)) rows/s in one transaction."
        )
        let figures = [
            Figure(
                id: "P1",
                name:
                    "local write, \(records) records × 6 fields, \(perCommit) records per commit (a transaction holds ≤ \(Transaction.maxChanges) changes)",
                value: nodeSeconds, unit: "s", baseline: plainSeconds, baselineName: "plain upserts, \(perCommit) rows per transaction",
                goal: "≤ 1.5x plain", met: ratio <= 1.5),
            Figure(
                id: "P1",
                name:
                    "CPU time of that local write (user + system, both threads: a large commit is sealed on a second core while its records are written)",
                value: nodeCPU, unit: "s", baseline: plainCPU, baselineName: "plain upserts, CPU time", goal: "—"),
            Figure(
                id: "P1", name: "local write rate against the plain table written as ONE transaction (the issue's shape)",
                value: Double(records) / nodeSeconds, unit: "records/s", baseline: Double(records) / plainOneSeconds,
                baselineName: "plain upserts, one transaction", goal: "— (CRDT extension peer: 1/23 = 0.043x)"),
            Figure(
                id: "P1", name: "local write, one record (6 fields) per commit, \(singleCommits) commits",
                value: nodeSingle / Double(singleCommits) * 1e6, unit: "µs/commit", baseline: plainSingle / Double(singleCommits) * 1e6,
                baselineName: "plain upsert, one row per transaction", goal: "—"),
        ]
        return (
            figures,
            Built(scratch: scratch, nodeDirectory: nodeDirectory, plain: plainDirectory.appendingPathComponent(PlainTable.fileName), records: records)
        )
    }
}
