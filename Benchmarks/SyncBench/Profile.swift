import ArgumentParser
import Foundation
import SyncNode
import SyncProtocol

/// `syncnode-bench profile ...`: one hot path alone in a process, to run under `perf record` or
/// `valgrind --tool=callgrind` (see docs/PERFORMANCE.md):
///
/// - `profile write DIR RECORDS PER_COMMIT`: local writes into a fresh node in DIR.
/// - `profile source DIR RECORDS PER_COMMIT`: the same (an alias), to make a source for `apply`.
/// - `profile apply SOURCE DIR`: exports every transaction of SOURCE (reads and decodes them), then
///   applies them to a fresh node in DIR.
struct Profile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One hot path alone in a process, for perf or callgrind.", subcommands: [Write.self, Apply.self])

    struct Write: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Local writes into a fresh node in DIR (`source`: the same, to make a source for apply).", aliases: ["source"])
        @Argument(help: "A directory for the new node.") var dir: String
        @Argument(help: "Records to write.") var records: Int
        @Argument(help: "Records per commit.") var perCommit: Int

        func run() throws {
            let store = try Store.create(in: URL(fileURLWithPath: dir), site: "hq", label: nil)
            let seconds = try Clock.seconds { try Workload.insertRecords(store, count: records, perTransaction: perCommit) }
            try store.close()
            print("write: \(records) records, \(perCommit) per commit, \(format(seconds)) s")
        }
    }

    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Exports every transaction of SOURCE (reads and decodes them), then applies them to a fresh node in DIR.")
        @Argument(help: "A node made by `profile source`.") var source: String
        @Argument(help: "A directory for the new node.") var dir: String

        func run() throws {
            let from = try Store.open(URL(fileURLWithPath: source))
            let batch = try from.transactions(missingFrom: VersionVector()).transactions
            try from.close()
            let target = try Store.create(in: URL(fileURLWithPath: dir), site: "lintan", label: nil)
            var report = ApplyReport()
            let seconds = try Clock.seconds { report = try target.apply(batch) }
            try target.close()
            print("apply: \(report.applied) transactions in \(report.chunks) chunks, \(format(seconds)) s")
        }
    }
}
