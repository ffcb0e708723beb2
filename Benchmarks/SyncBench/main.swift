import Foundation

// syncnode-bench: measures the node against baselines in the same run and prints a Markdown
// table for docs/PERFORMANCE.md. `--smoke` runs every measurement at tiny sizes (for the tests).
let arguments = CommandLine.arguments.dropFirst()
let smoke = arguments.contains("--smoke")
let only = arguments.first { !$0.hasPrefix("--") }

var figures: [Figure] = []
do {
    if only == nil || only == "wire" {
        figures += try WireSize.run(records: smoke ? 200 : 100_000, deltaUpdates: smoke ? 100 : 10_000)
    }
    if only == nil || only == "trust" {
        figures += try TrustCost.run(transactions: smoke ? 100 : 10_000)
    }
    if only == nil || only == "http" {
        figures += try await HTTPSync.run(transactions: smoke ? 300 : 100_000, changesPerTransaction: 1, batch: smoke ? 50 : 5000)
    }
} catch {
    FileHandle.standardError.write(Data("syncnode-bench: \(error)\n".utf8))
    exit(1)
}
print(report(figures))
