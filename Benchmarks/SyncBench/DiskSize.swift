import Foundation
import SyncNode

/// P7: bytes on disk per record, the node's database against the plain table holding the same
/// records, both closed by their owner, then checkpointed (`wal_checkpoint(TRUNCATE)`).
enum DiskSize {
    /// Uses the databases P1 wrote when given, else writes them (untimed) the same way.
    static func run(records: Int, perCommit: Int, built: LocalWrite.Built?) throws -> [Figure] {
        var scratch: Scratch?
        defer { scratch?.remove() }
        let nodeFile: URL
        let plainFile: URL
        let count: Int
        if let built {
            nodeFile = built.nodeDirectory.appendingPathComponent(Store.fileName)
            plainFile = built.plain
            count = built.records
        } else {
            let s = try Scratch("p7")
            scratch = s
            let store = try Store.create(in: s.path("node"), site: "lintan", label: nil)
            try Workload.insertRecords(store, count: records, perTransaction: perCommit)
            try store.close()
            let plain = try PlainTable(in: s.path("plain"))
            try plain.upsert(0..<records, perTransaction: perCommit)
            try plain.close()
            nodeFile = s.path("node").appendingPathComponent(Store.fileName)
            plainFile = plain.file
            count = records
        }
        let node = try DiskUsage.measure(nodeFile)
        let plain = try DiskUsage.measure(plainFile)
        let perRecord = Double(node.bytes) / Double(count)
        let plainPerRecord = Double(plain.bytes) / Double(count)
        let breakdown = node.objects.map { "\($0.name) \(format(Double($0.bytes) / Double(count))) B" }.joined(separator: ", ")
        let plainBreakdown = plain.objects.map { "\($0.name) \(format(Double($0.bytes) / Double(count))) B" }.joined(separator: ", ")
        Notes.add(
            "P7: node \(node.bytes) bytes (\(node.pages) pages of \(node.pageSize), \(node.freePages) free), per record by object: \(breakdown.isEmpty ? "dbstat unavailable" : breakdown)"
        )
        Notes.add("P7: plain \(plain.bytes) bytes (\(plain.pages) pages, \(plain.freePages) free), per record: \(plainBreakdown)")
        return [
            Figure(
                id: "P7", name: "disk per record after checkpoint (\(count) records × 6 fields, written as in P1)", value: perRecord,
                unit: "B/record",
                baseline: plainPerRecord, baselineName: "plain table", goal: "≤ 2x plain", met: perRecord <= 2 * plainPerRecord)
        ]
    }
}
