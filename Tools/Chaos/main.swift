import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// syncnode-chaos: runs real syncnode processes (HQ, a relay, three counties) on loopback through
// fault proxies, drives a seeded workload with kill -9, proxy faults, partitions and clock skew,
// heals, and checks that no acknowledged write is lost and every node ends identical.
//
//   swift build && .build/debug/syncnode-chaos --runs 20 --seed 1        # the long version
//   .build/debug/syncnode-chaos --ci                                     # 3 short runs (CI)
//
// Options: --runs N, --seed S (run i uses seed S+i), --steps N (actions per run), --ci,
// --syncnode PATH, --faultproxy PATH, --dir DIR (runs' data; kept for failed runs), --keep,
// --report FILE (figures as JSON), --max-minutes M (stop starting runs after M minutes),
// --check-the-checker (after run 1, damage the result three ways and require the checker to see it).

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("syncnode-chaos: \(message)\n".utf8))
    exit(64)
}

func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

struct ChaosOptions: ParsableArguments {
    @Flag(help: "Three short runs with the checker checked (the CI setting).")
    var ci = false
    @Flag(help: "After run 1, damage the result three ways and require the checker to see each.")
    var checkTheChecker = false
    @Option(help: "Number of runs.")
    var runs: Int?
    @Option(help: "Seed of the first run (run i uses seed+i).")
    var seed: UInt64 = 1
    @Option(help: "Actions per run.")
    var steps: Int?
    @Option(help: "The syncnode binary (default: beside this one).")
    var syncnode: String?
    @Option(help: "The faultproxy binary (default: beside this one).")
    var faultproxy: String?
    @Option(help: "Where the runs' data goes (kept for failed runs).")
    var dir: String?
    @Flag(help: "Keep every run's data.")
    var keep = false
    @Option(help: "Write the figures as JSON to this file.")
    var report: String?
    @Option(help: "Stop starting runs after this many minutes.")
    var maxMinutes: Double?
}

let options = ChaosOptions.parseOrExit()
let runs = options.runs ?? (options.ci ? 3 : 20)
let seed = options.seed
let steps = options.steps ?? (options.ci ? 40 : 120)
let keep = options.keep
let checkTheChecker = options.checkTheChecker || options.ci
let report = options.report
let maxMinutes = options.maxMinutes ?? (options.ci ? 10 : 180)
let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
let tools = Tools(
    syncnode: options.syncnode ?? beside.appendingPathComponent("syncnode").path,
    faultproxy: options.faultproxy ?? beside.appendingPathComponent("faultproxy").path)
let root = options.dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("syncnode-chaos-\(getpid())").path

guard runs > 0, steps > 0 else { fail("--runs and --steps must be positive") }
for path in [tools.syncnode, tools.faultproxy] where !FileManager.default.isExecutableFile(atPath: path) {
    fail("\(path) is not built; run `swift build` first (or pass --syncnode / --faultproxy)")
}

Children.installSignalHandlers()
atexit { Children.killAll() }
try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)

struct Totals {
    var passed = 0
    var failed = 0
    var faults: [String: Int] = [:]
    var ackedWrites = 0
    var attachedFiles = 0
    var checks = 0
    var lost = 0
    var divergent = 0
    var killedWrites = 0
    var refusedLocally = 0
    var refusals = 0
    var conflicts = 0
    var skewRefusals = 0
    var notFoundWrites = 0
    var failedWrites = 0
    var unackedConcurrentEdits = 0
    var skippedRuns = 0
    var seconds = 0.0
}

var totals = Totals()
let started = Date()
say("syncnode-chaos: \(runs) runs from seed \(seed), \(steps) steps each; data under \(root)")
for i in 0..<runs {
    if Date().timeIntervalSince(started) > maxMinutes * 60 {
        totals.skippedRuns = runs - i
        say("stopping: --max-minutes \(maxMinutes) reached before run \(i + 1); \(runs - i) of \(runs) runs not made")
        break
    }
    let runSeed = seed &+ UInt64(i)
    // Skew modes rotate so that short runs cover the three kinds of wrong clock first: seeds 1, 2
    // and 3 (CI's runs) are within maxDrift, beyond it and two days ahead; seed 4 has none.
    let skew: SkewMode = [.none, .within, .beyond, .far][Int(runSeed % 4)]
    let runStart = Date()
    var run: ChaosRun?
    var verdict = Verdict()
    do {
        let r = try ChaosRun(index: i + 1, seed: runSeed, steps: steps, skew: skew, tools: tools, root: root)
        run = r
        defer { r.tearDown() }
        try r.setUp()
        try r.workload()
        let converged = try r.heal()
        r.tearDown()
        verdict = try r.check(converged: converged)
        if checkTheChecker && i == 0 && verdict.failures.isEmpty {
            let proven = try r.checkTheChecker()
            say("check of the checker: it flags " + proven.joined(separator: "; "))
        }
    } catch {
        verdict.failures.append("harness error: \(error)")
    }
    Children.killAll()
    let seconds = Date().timeIntervalSince(runStart)
    totals.seconds += seconds
    if let run { try? run.schedule.joined(separator: "\n").write(toFile: run.directory + "/schedule.txt", atomically: true, encoding: .utf8) }
    let ok = verdict.failures.isEmpty
    if ok { totals.passed += 1 } else { totals.failed += 1 }
    if let run {
        for (k, n) in run.faults { totals.faults[k, default: 0] += n }
        totals.ackedWrites += run.ackedWrites
        totals.attachedFiles += run.ackedAttachments.count
        totals.killedWrites += run.killedWrites
        totals.refusedLocally += run.refusedLocally
        totals.skewRefusals += run.skewRefusals
        totals.notFoundWrites += run.notFoundWrites
        totals.failedWrites += run.failedWrites
        totals.unackedConcurrentEdits += run.unackedConcurrentEdits
    }
    totals.checks += verdict.checks
    totals.lost += verdict.lost
    totals.refusals += verdict.refusals
    totals.conflicts += verdict.conflicts
    if verdict.divergent { totals.divergent += 1 }
    let faultText = (run?.faults ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    say(
        String(
            format: "run %d seed %llu skew=%@: %@ in %.1fs; %d acknowledged writes, %d checks, %d lost; faults: %@", i + 1, runSeed, skew.rawValue,
            ok ? "ok" : "FAILED", seconds, run?.ackedWrites ?? 0, verdict.checks, verdict.lost, faultText))
    if !ok {
        say("  seed \(runSeed) failed (reproduce: syncnode-chaos --runs 1 --seed \(runSeed) --steps \(steps)):")
        for f in verdict.failures.prefix(20) { say("  - " + f) }
        say("  fault schedule:")
        for line in run?.schedule ?? [] { say("    " + line) }
        if let run { say("  data and logs kept in \(run.directory)") }
    } else if let run, !keep {
        try? FileManager.default.removeItem(atPath: run.directory)
    }
}

let faultTotal = totals.faults.filter { $0.key != "restart" && $0.key != "concurrent-edit" }.values.reduce(0, +)
say("")
say(String(format: "figures: %d runs in %.0f s", totals.passed + totals.failed, totals.seconds))
say("  faults injected: \(faultTotal)")
for (kind, n) in totals.faults.sorted(by: { $0.key < $1.key }) { say("    \(kind): \(n)") }
say(
    "  acknowledged writes: \(totals.ackedWrites) (of them attached files: \(totals.attachedFiles)); (write, node) checks: \(totals.checks); lost: \(totals.lost)"
)
say("  divergent runs: \(totals.divergent); refused transactions (expected, policy): \(totals.refusals)")
say("  conflicts kept for review at the end: \(totals.conflicts); writes killed before acknowledgement: \(totals.killedWrites)")
say("  syncs refused for clock skew while beyond maxDrift: \(totals.skewRefusals); writes refused locally by policy: \(totals.refusedLocally)")
say(
    "  writes not acknowledged: \(totals.notFoundWrites) not found (exit 3), \(totals.failedWrites) failed otherwise (each in its run's schedule), "
        + "\(totals.unackedConcurrentEdits) sides of concurrent edits")
say("  runs not made (--max-minutes): \(totals.skippedRuns)")
if let report {
    let object: [String: Any] = [
        "runs": totals.passed + totals.failed, "passed": totals.passed, "failed": totals.failed, "seconds": Int(totals.seconds), "seed": seed,
        "steps": steps, "faults": totals.faults, "faultsInjected": faultTotal, "acknowledgedWrites": totals.ackedWrites,
        "attachedFiles": totals.attachedFiles, "checks": totals.checks,
        "lost": totals.lost, "divergentRuns": totals.divergent, "refusals": totals.refusals, "conflicts": totals.conflicts,
        "killedWrites": totals.killedWrites, "skewRefusals": totals.skewRefusals, "notFoundWrites": totals.notFoundWrites,
        "failedWrites": totals.failedWrites, "unacknowledgedConcurrentEdits": totals.unackedConcurrentEdits, "skippedRuns": totals.skippedRuns,
    ]
    if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]) {
        try? data.write(to: URL(fileURLWithPath: report))
    }
}
if totals.failed == 0 && !keep { try? FileManager.default.removeItem(atPath: root) }
say("chaos: \(totals.passed) passed, \(totals.failed) failed")
Children.killAll()
// In CI every run must be made: a run cut by --max-minutes is a check that did not happen.
if options.ci && totals.skippedRuns > 0 {
    say("chaos: \(totals.skippedRuns) runs were not made within --max-minutes \(maxMinutes): a failure with --ci")
    exit(1)
}
exit(totals.failed == 0 ? 0 : 1)
