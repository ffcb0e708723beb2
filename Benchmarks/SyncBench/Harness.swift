import Foundation

/// A measured figure, with the baseline measured in the same run where there is one.
struct Figure {
    var id: String
    var name: String
    var value: Double
    var unit: String
    var baseline: Double?
    var baselineName: String?
    var goal: String
    /// Whether the goal is met; nil for context figures without a goal.
    var met: Bool? = nil

    var ratio: Double? { baseline.map { value / $0 } }
}

/// Wall-clock timing of a block, best of `repeats` runs.
enum Clock {
    static func seconds(repeats: Int = 1, _ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return best
    }

    /// Wall time and CPU time (user + system, every thread of the process) of one run.
    static func wallAndCPU(_ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
        let cpuStart = cpuSeconds()
        let wall = try seconds(body)
        return (wall, cpuSeconds() - cpuStart)
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }

    static func seconds(_ body: () async throws -> Void) async rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try await body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}

/// Peak resident set size so far, from /proc (VmHWM), in bytes.
enum Memory {
    /// Of this process.
    static func peakRSS() -> Int { status("self", "VmHWM:") }

    /// Of another process (a child), while it runs.
    static func peakRSS(pid: Int32) -> Int { status("\(pid)", "VmHWM:") }

    /// Current resident set size of this process.
    static func currentRSS() -> Int { status("self", "VmRSS:") }

    private static func status(_ process: String, _ key: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(process)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }
}

/// A scratch directory removed at exit of the scope that made it.
struct Scratch {
    let url: URL

    init(_ name: String) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("syncnode-bench-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> URL { url.appendingPathComponent(name) }

    func remove() { try? FileManager.default.removeItem(at: url) }

    /// Total size of the files under a directory (the database with its WAL).
    static func size(of directory: URL) -> Int {
        let files = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: [.fileSizeKey])) ?? []
        return files.reduce(0) { $0 + ((try? $1.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) }
    }
}

func report(_ figures: [Figure]) -> String {
    var lines = ["| id | measure | value | baseline (same run) | ratio | goal | met |", "|---|---|---|---|---|---|---|"]
    for f in figures {
        let value = format(f.value) + " " + f.unit
        let base = f.baseline.map { format($0) + " " + f.unit + (f.baselineName.map { " (\($0))" } ?? "") } ?? "—"
        let ratio = f.ratio.map { String(format: "%.2fx", $0) } ?? "—"
        let met = f.met.map { $0 ? "yes" : "**no**" } ?? "—"
        lines.append("| \(f.id) | \(f.name) | \(value) | \(base) | \(ratio) | \(f.goal) | \(met) |")
    }
    return lines.joined(separator: "\n")
}

func format(_ x: Double) -> String {
    if x >= 1000 { return String(format: "%.0f", x) }
    if x >= 10 { return String(format: "%.1f", x) }
    return String(format: "%.3f", x)
}
