import ArgumentParser
import Foundation

// syncnode-bench: measures the node against baselines in the same run and prints a Markdown
// table for docs/PERFORMANCE.md. `--smoke` runs every measurement at tiny sizes (for the tests).
// Cases (all by default, or the ones named): p1, p7, p2, wire (P3), trust, http, p4, p6, p5.
// P5 needs root and network namespaces; in a smoke run it runs only with SYNCNODE_BENCH_NETNS=1.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syncnode-bench",
        abstract: "Measures the node against baselines in the same run; prints a Markdown table for docs/PERFORMANCE.md.",
        subcommands: [Measure.self, ServeChild.self, SyncChild.self, Profile.self],
        defaultSubcommand: Measure.self)
}

struct Measure: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "measure", abstract: "Runs the measurements (the default).")
    static let known = ["p1", "p7", "p2", "wire", "p3", "trust", "http", "p4", "p6", "p5", "p5p", "p8", "p9", "p10", "p11", "p13"]

    @Flag(help: "Every measurement at tiny sizes (for the tests).")
    var smoke = false

    @Argument(help: "Cases to run (default: all): p1, p7, p2, wire (P3), trust, http, p4, p6, p5, p8, p9, p10.")
    var cases: [String] = []

    func validate() throws {
        if let unknown = cases.first(where: { !Self.known.contains($0.lowercased()) }) {
            throw ValidationError("unknown case '\(unknown)'; cases: \(Self.known.joined(separator: ", "))")
        }
    }

    /// On the main thread, as the top-level code ran before: the measured synchronous work must
    /// not sit on a cooperative-pool thread (a large commit seals on a second core beside it).
    @MainActor
    func run() async throws {
        // A child that died must not take the benchmark with it when it is written to.
        signal(SIGPIPE, SIG_IGN)
        let named = Set(cases.map { $0.lowercased() })
        func selected(_ name: String) -> Bool { named.isEmpty || named.contains(name) || (name == "wire" && named.contains("p3")) }
        let started = Date()
        let loadAtStart = Machine.load
        var figures: [Figure] = []
        do {
            var built: LocalWrite.Built?
            defer { built?.scratch.remove() }
            if selected("p1") {
                let (p1, b) = try LocalWrite.run(
                    records: smoke ? 300 : 100_000, perCommit: smoke ? 100 : 1000, singleCommits: smoke ? 50 : 2000, repeats: smoke ? 1 : 3)
                figures += p1
                built = b
            }
            if selected("p7") {
                figures += try DiskSize.run(records: smoke ? 300 : 100_000, perCommit: smoke ? 100 : 1000, built: built)
            }
            if selected("p2") {
                figures += try RemoteApply.run(
                    records: smoke ? 300 : 100_000, perCommit: smoke ? 100 : 1000, deltaUpdates: smoke ? 100 : 10_000, deltaPerCommit: 100)
            }
            if selected("wire") {
                figures += try WireSize.run(records: smoke ? 200 : 100_000, deltaUpdates: smoke ? 100 : 10_000)
            }
            if selected("trust") {
                figures += try TrustCost.run(transactions: smoke ? 100 : 10_000)
            }
            if selected("http") {
                figures += try await HTTPSync.run(transactions: smoke ? 300 : 100_000, changesPerTransaction: 1, batch: smoke ? 50 : 5000)
            }
            if selected("p4") {
                figures += try await InitialSync.run(changes: smoke ? 600 : 1_000_000, recordsPerTransaction: 1)
                figures += try await InitialSync.run(changes: smoke ? 600 : 1_000_000, recordsPerTransaction: smoke ? 20 : 1000, primary: false)
            }
            if selected("p6") {
                figures += try await FanIn.run(
                    nodes: smoke ? 5 : 100, waves: smoke ? 2 : 5, hqTransactions: smoke ? 5 : 50, initialPerNode: smoke ? 2 : 5)
            }
            if selected("p8") {
                figures += try ReportSpeed.run(entries: smoke ? 2_000 : 1_000_000, repeats: smoke ? 1 : 3)
                figures += try ReportSpeed.appendCost(entries: smoke ? 2_000 : 100_000)
            }
            if selected("p9") {
                figures += try ReportSpeed.runProjects(projects: smoke ? 300 : 100_000, repeats: smoke ? 1 : 3)
            }
            if selected("p10") {
                figures += try ReportSpeed.runDashboard(projects: smoke ? 300 : 100_000, entries: smoke ? 2_000 : 1_000_000, repeats: smoke ? 1 : 3)
            }
            if selected("p11") {
                figures += try await MetricsCost.run(
                    records: smoke ? 500 : 100_000, conflicts: smoke ? 10 : 1_000, requests: smoke ? 50 : 2_000,
                    smallTransactions: smoke ? 200 : 100_000)
            }
            if selected("p13") && smoke && getuid() != 0 {
                Notes.add("P13 skipped in the smoke run: its PostgreSQL server is made by initdb as the postgres user, which needs root.")
            } else if selected("p13") {
                // SYNCNODE_BENCH_P13_ENTRIES: another size, to look at how the figures grow.
                let entries = ProcessInfo.processInfo.environment["SYNCNODE_BENCH_P13_ENTRIES"].flatMap(Int.init) ?? (smoke ? 2_000 : 1_000_000)
                figures += try await MirrorSpeed.run(entries: entries, perTransaction: 10, writes: smoke ? 3 : 100)
            }
            if selected("p5") {
                if smoke && ProcessInfo.processInfo.environment["SYNCNODE_BENCH_NETNS"] != "1" {
                    Notes.add("P5 skipped in the smoke run (set SYNCNODE_BENCH_NETNS=1 to run it; needs root).")
                } else {
                    figures += try await NetLink.run(transactions: smoke ? 10 : 100, runs: smoke ? 1 : 25, cutBatch: smoke ? 2 : 10)
                }
            }
            if selected("p5p") {
                // SYNCNODE_BENCH_P5P_PHOTOS / _KB: the day's photos (20 of 3 MB would take hours at 64 kbit/s).
                let environment = ProcessInfo.processInfo.environment
                let count = environment["SYNCNODE_BENCH_P5P_PHOTOS"].flatMap(Int.init) ?? (smoke ? 2 : 20)
                let kilobytes = environment["SYNCNODE_BENCH_P5P_KB"].flatMap(Int.init) ?? (smoke ? 20 : 48)
                if smoke && environment["SYNCNODE_BENCH_NETNS"] != "1" {
                    Notes.add("P5p skipped in the smoke run (set SYNCNODE_BENCH_NETNS=1 to run it; needs root).")
                } else {
                    figures += try await NetLink.run(
                        transactions: smoke ? 10 : 100, runs: 1, cutBatch: 10, photos: (count, kilobytes * 1000))
                }
            }
        }
        let date = ISO8601DateFormatter().string(from: started)
        print("Machine: \(Machine.description)")
        print(
            "Date: \(date); \(smoke ? "smoke run" : "full run") of \(named.isEmpty ? "every case" : named.sorted().joined(separator: ", ")), \(format(Date().timeIntervalSince(started))) s"
        )
        print("Load average (1, 5, 15 min) at start: \(loadAtStart); at end: \(Machine.load)")
        print("")
        print(report(figures))
        if !Notes.all.isEmpty {
            print("")
            for note in Notes.all { print("- \(note)") }
        }
    }
}
