import ChildProcess
import Foundation

/// Lines printed after the table: how a figure was made, breakdowns, skipped cases.
enum Notes {
    nonisolated(unsafe) private static var lines: [String] = []
    private static let lock = NSLock()

    static func add(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
        FileHandle.standardError.write(Data("note: \(line)\n".utf8))
    }

    static var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }
}

/// The `q` quantile (0...1) of `samples`, nearest rank.
func percentile(_ samples: [Double], _ q: Double) -> Double {
    guard !samples.isEmpty else { return .nan }
    let sorted = samples.sorted()
    let rank = Int((q * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank, 1), sorted.count) - 1]
}

func median(_ samples: [Double]) -> Double { percentile(samples, 0.5) }

/// A child process with its standard output captured in a file (so it can never block on a pipe)
/// and its standard error passed through. Every wait is bounded.
final class Child {
    let process: ChildProcess
    let output: URL
    let label: String

    private var input: FileHandle?

    init(_ executable: String, _ arguments: [String], label: String, stderrFile: URL? = nil, withInput: Bool = false) throws {
        self.label = label
        output = FileManager.default.temporaryDirectory.appendingPathComponent("syncnode-bench-\(UUID().uuidString).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        // Targets are loopback or the benchmark's own namespaces: never through a proxy.
        let environment = ProcessInfo.processInfo.environment.merging(["no_proxy": "*", "NO_PROXY": "*"]) { $1 }
        let outHandle = try FileHandle(forWritingTo: output)
        var errHandle: FileHandle?
        var inputRead: Int32?
        // The child keeps its own copies; the parent's are closed once it has started.
        defer {
            try? outHandle.close()
            try? errHandle?.close()
            if let inputRead { close(inputRead) }
        }
        var stdin = ChildProcess.Stream.null
        if withInput {
            var fds: [Int32] = [0, 0]
            guard ChildProcess.pipe(&fds) else { throw BenchError("pipe: errno \(errno)") }
            inputRead = fds[0]
            input = FileHandle(fileDescriptor: fds[1], closeOnDealloc: true)
            stdin = .descriptor(fds[0])
        }
        var stderr = ChildProcess.Stream.inherit
        if let stderrFile {
            _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
            errHandle = try FileHandle(forWritingTo: stderrFile)
            stderr = .descriptor(errHandle!.fileDescriptor)
        }
        process = try ChildProcess(
            executable, arguments, environment: environment, stdin: stdin, stdout: .descriptor(outHandle.fileDescriptor), stderr: stderr)
        Self.lock.lock()
        Self.running.insert(process.pid)
        Self.lock.unlock()
    }

    nonisolated(unsafe) private static var running: Set<Int32> = []
    private static let lock = NSLock()

    /// Kills every child still running (on SIGINT/SIGTERM of the benchmark).
    static func killAll() {
        lock.lock()
        let pids = running
        lock.unlock()
        for pid in pids { kill(pid, SIGKILL) }
    }

    private func forget() {
        Self.lock.lock()
        Self.running.remove(process.pid)
        Self.lock.unlock()
    }

    /// This benchmark executable itself, in one of its child modes.
    static func bench(_ arguments: [String], label: String, withInput: Bool = false) throws -> Child {
        try Child(benchExecutable, arguments, label: label, withInput: withInput)
    }

    /// Writes a line to the child's standard input (made with `withInput`).
    func send(_ line: String) {
        try? input?.write(contentsOf: Data((line + "\n").utf8))
    }

    static var benchExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    var pid: Int32 { process.pid }
    var isRunning: Bool { process.isRunning }

    /// Waits for the exit, at most `timeout` seconds; kills the child if it is still running then.
    @discardableResult
    func wait(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    /// SIGTERM, then SIGKILL after `grace` seconds.
    func stop(grace: Double = 10) {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        wait(timeout: grace)
    }

    var stdout: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

    /// The last line of standard output, parsed as a JSON object.
    func json() throws -> [String: Any] {
        let last = stdout.split(separator: "\n").last.map(String.init) ?? ""
        guard let object = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any] else {
            throw BenchError("\(label) printed no result (stdout: \(stdout.suffix(500)))")
        }
        return object
    }

    deinit {
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        forget()
        try? FileManager.default.removeItem(at: output)
    }
}

/// Runs a command to completion (bounded), returning its exit status and output.
@discardableResult
func command(_ argv: [String], timeout: Double = 30, check: Bool = true) throws -> (status: Int32, output: String) {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("syncnode-bench-cmd-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: out) }
    let handle = try FileHandle(forWritingTo: out)
    let process: ChildProcess
    do {
        defer { try? handle.close() }
        process = try ChildProcess(
            argv[0], Array(argv.dropFirst()), stdin: .null, stdout: .descriptor(handle.fileDescriptor), stderr: .descriptor(handle.fileDescriptor))
    }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
    if process.isRunning {
        process.terminate(SIGKILL)
        process.waitUntilExit()
        throw BenchError("`\(argv.joined(separator: " "))` did not finish in \(Int(timeout)) s")
    }
    let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
    if check && process.terminationStatus != 0 {
        throw BenchError("`\(argv.joined(separator: " "))` failed (\(process.terminationStatus)): \(text.suffix(400))")
    }
    return (process.terminationStatus, text)
}

/// Waits (bounded) until `file` holds a port number written by a server child.
func waitForPort(_ file: URL, child: Child, timeout: Double = 30) throws -> Int {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if let text = try? String(contentsOf: file, encoding: .utf8), let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            return port
        }
        if !child.isRunning { throw BenchError("\(child.label) exited before listening") }
        Thread.sleep(forTimeInterval: 0.02)
    }
    throw BenchError("\(child.label) did not listen within \(Int(timeout)) s")
}

/// The machine the figures come from.
enum Machine {
    /// `/proc/loadavg`'s 1, 5 and 15-minute load averages: other work on the machine skews figures.
    static var load: String {
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    static var description: String {
        let cpu =
            ((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "").split(separator: "\n")
            .first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        let memory =
            ((try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? "").split(separator: "\n")
            .first { $0.hasPrefix("MemTotal:") }
            .flatMap { $0.split(separator: " ").compactMap { Int($0) }.first }
            .map { String(format: "%.1f GiB", Double($0) / 1_048_576) } ?? "unknown memory"
        let kernel =
            (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        return "\(ProcessInfo.processInfo.activeProcessorCount) cores (\(cpu)), \(memory) RAM, Linux \(kernel)"
    }
}
