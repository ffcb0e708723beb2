import Foundation
import SyncNode
import SyncProtocol

/// `syncnode-bench profile ...`: one hot path alone in a process, to run under `perf record` or
/// `valgrind --tool=callgrind` (see docs/PERFORMANCE.md):
///
/// - `profile write DIR RECORDS PER_COMMIT`: local writes into a fresh node in DIR.
/// - `profile source DIR RECORDS PER_COMMIT`: the same, to make a source for `apply`.
/// - `profile apply SOURCE DIR`: exports every transaction of SOURCE (reads and decodes them), then
///   applies them to a fresh node in DIR.
enum Profile {
    static func run(_ arguments: [String]) throws {
        let a = arguments
        func int(_ i: Int) throws -> Int {
            guard i < a.count, let n = Int(a[i]) else { throw BenchError("profile \(a.first ?? ""): argument \(i) must be a number") }
            return n
        }
        switch a.first {
        case "write", "source":
            guard a.count == 4 else { throw BenchError("profile \(a[0]) DIR RECORDS PER_COMMIT") }
            let store = try Store.create(in: URL(fileURLWithPath: a[1]), site: "hq", label: nil)
            let seconds = try Clock.seconds { try Workload.insertRecords(store, count: try int(2), perTransaction: try int(3)) }
            try store.close()
            print("\(a[0]): \(a[2]) records, \(a[3]) per commit, \(format(seconds)) s")
        case "apply":
            guard a.count == 3 else { throw BenchError("profile apply SOURCE DIR") }
            let source = try Store.open(URL(fileURLWithPath: a[1]))
            let batch = try source.transactions(missingFrom: VersionVector()).transactions
            try source.close()
            let target = try Store.create(in: URL(fileURLWithPath: a[2]), site: "lintan", label: nil)
            var report = ApplyReport()
            let seconds = try Clock.seconds { report = try target.apply(batch) }
            try target.close()
            print("apply: \(report.applied) transactions in \(report.chunks) chunks, \(format(seconds)) s")
        default:
            throw BenchError("profile write|source|apply ...")
        }
    }
}
