import ChildProcess
import FaultProxy
import Foundation
import SyncProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// Every child process the harness starts, so that all of them are killed at the end, on a
/// failure, and on SIGINT/SIGTERM (the signal handler reads a fixed C array: no allocation).
enum Children {
    static let capacity = 512
    nonisolated(unsafe) static let pids: UnsafeMutablePointer<pid_t> = {
        let p = UnsafeMutablePointer<pid_t>.allocate(capacity: capacity)
        p.initialize(repeating: 0, count: capacity)
        return p
    }()
    static let lock = NSLock()

    static func add(_ pid: pid_t) {
        lock.withLock {
            for i in 0..<capacity where pids[i] == 0 {
                pids[i] = pid
                return
            }
        }
    }

    static func remove(_ pid: pid_t) {
        lock.withLock {
            for i in 0..<capacity where pids[i] == pid { pids[i] = 0 }
        }
    }

    /// SIGKILLs every child still registered.
    static func killAll() {
        lock.withLock {
            for i in 0..<capacity where pids[i] > 0 {
                kill(pids[i], SIGKILL)
                pids[i] = 0
            }
        }
    }

    static func installSignalHandlers() {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig) { s in
                for i in 0..<Children.capacity where Children.pids[i] > 0 { kill(Children.pids[i], SIGKILL) }
                _exit(128 + s)
            }
        }
        signal(SIGPIPE, SIG_IGN)
    }
}

/// A child process whose stdout and stderr go to files.
final class Child {
    let process: ChildProcess
    let stdoutPath: String
    let stderrPath: String
    let started = Date()

    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], logPrefix: String) throws {
        stdoutPath = logPrefix + ".out"
        stderrPath = logPrefix + ".err"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SYNCNODE_DATA")
        env.removeValue(forKey: "SYNCNODE_CLOCK_OFFSET_MS")
        env.merge(environment) { $1 }
        guard let out = FileHandle(forWritingAtPath: stdoutPath), let err = FileHandle(forWritingAtPath: stderrPath) else {
            throw HarnessError("cannot open \(logPrefix).out/.err")
        }
        // The child has its own copies once started; the harness's must be closed, or hundreds of
        // children leak thousands of descriptors.
        defer {
            try? out.close()
            try? err.close()
        }
        process = try ChildProcess(
            executable, arguments, environment: env, stdin: .null, stdout: .descriptor(out.fileDescriptor), stderr: .descriptor(err.fileDescriptor))
        Children.add(process.pid)
    }

    var pid: pid_t { process.pid }
    var isRunning: Bool { process.isRunning }

    /// Waits up to `seconds`; then SIGKILLs. Returns the exit status, or nil if it had to be killed.
    @discardableResult
    func wait(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        if process.isRunning {
            kill9()
            return nil
        }
        Children.remove(pid)
        return process.terminationSignal == nil ? process.terminationStatus : nil
    }

    /// kill -9, and reap.
    func kill9() {
        if process.isRunning { kill(pid, SIGKILL) }
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        Children.remove(pid)
    }

    /// SIGTERM, then SIGKILL after `grace` seconds.
    func stop(grace: Double = 5) {
        if process.isRunning { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        kill9()
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
}

/// The outcome of a command run to completion.
struct CommandResult {
    /// The exit status; nil when the process was killed (by the harness or a timeout).
    var status: Int32?
    var stdout: String
    var stderr: String

    var ok: Bool { status == 0 }

    func json() -> Any? { try? JSONSerialization.jsonObject(with: Data(stdout.utf8), options: [.fragmentsAllowed]) }
}

/// The schedule's generator (SyncProtocol's SplitMix64): the same seed gives the same schedule.
typealias SeededRandom = SplitMix64

extension SplitMix64 {
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }

    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &self)] }
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough on loopback for a test).
func freePort() -> Int {
    guard let (fd, port) = Loopback.listen() else { return 0 }
    close(fd)
    return Int(port)
}

func wallMillis() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }
