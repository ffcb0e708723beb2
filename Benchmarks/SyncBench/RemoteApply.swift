import Foundation
import SyncNode
import SyncProtocol

/// P2: applying another node's transactions (`Store.apply`) to an empty node, against plain
/// upserts of the same rows into an empty table; then the delta of one-field updates.
///
/// The transactions are exported first with `transactions(missingFrom:)` (untimed; this also
/// decodes them). The timed part is `apply` of the decoded batch; decoding is timed on its own.
enum RemoteApply {
    static func run(records: Int, perCommit: Int, deltaUpdates: Int, deltaPerCommit: Int) throws -> [Figure] {
        let scratch = try Scratch("p2")
        defer { scratch.remove() }
        let source = try Store.create(in: scratch.path("source"), site: "hq", label: nil)
        defer { try? source.close() }
        try Workload.insertRecords(source, count: records, perTransaction: perCommit)
        let full = try source.transactions(missingFrom: VersionVector())
        let afterFull = try source.vector()
        try Workload.updateOneField(source, count: deltaUpdates, of: records, perTransaction: deltaPerCommit)
        let delta = try source.transactions(missingFrom: afterFull)
        guard !full.more, !delta.more else { throw BenchError("the export was cut short") }

        let bodies = full.transactions.map(\.body)
        let decodeSeconds = try Clock.seconds(repeats: 3) {
            for body in bodies { _ = try ReceivedTransaction(body: body) }
        }

        let target = try Store.create(in: scratch.path("target"), site: "lintan", label: nil)
        defer { try? target.close() }
        var fullReport = ApplyReport()
        let applySeconds = try Clock.seconds { fullReport = try target.apply(full.transactions) }
        var deltaReport = ApplyReport()
        let deltaSeconds = try Clock.seconds { deltaReport = try target.apply(delta.transactions) }
        guard fullReport.applied == full.transactions.count, deltaReport.applied == delta.transactions.count else {
            throw BenchError("apply skipped transactions")
        }

        let plain = try PlainTable(in: scratch.path("plain"))
        defer { try? plain.close() }
        let plainSeconds = try Clock.seconds { try plain.upsert(0..<records, perTransaction: perCommit) }
        let plainDeltaSeconds = try Clock.seconds { try plain.updateOneField(count: deltaUpdates, of: records, perTransaction: deltaPerCommit) }

        let rate = Double(records) / applySeconds
        let plainRate = Double(records) / plainSeconds
        let deltaRate = Double(deltaUpdates) / deltaSeconds
        let plainDeltaRate = Double(deltaUpdates) / plainDeltaSeconds
        Notes.add(
            "P2: full set = \(full.transactions.count) transactions of \(perCommit) records (\(fullReport.bytes) encoded bytes) applied in \(fullReport.chunks) SQLite transactions; \(format(rate * 6)) field changes/s. Delta = \(delta.transactions.count) transactions of \(deltaPerCommit) one-field updates, \(deltaReport.chunks) SQLite transactions; plain delta in \(deltaPerCommit)-row transactions."
        )
        return [
            Figure(
                id: "P2", name: "remote apply of \(records) records (\(records * 6) field changes) to an empty node", value: rate, unit: "records/s",
                baseline: plainRate, baselineName: "plain upserts into an empty table, \(perCommit) rows per transaction",
                goal: "≥ 0.5x plain (extension peer: ~10k rows/s)", met: rate >= 0.5 * plainRate),
            Figure(
                id: "P2", name: "remote apply of the delta: \(deltaUpdates) one-field updates", value: deltaRate, unit: "updates/s",
                baseline: plainDeltaRate, baselineName: "plain one-column upserts", goal: "≥ 0.5x plain", met: deltaRate >= 0.5 * plainDeltaRate),
            Figure(
                id: "P2", name: "decoding the received transactions (not in the apply time above)", value: Double(records) / decodeSeconds,
                unit: "records/s", goal: "—"),
        ]
    }
}
