import ChildProcess
import Foundation

/// Runs the built `syncnode` executable as a separate process.
enum Binary {
    /// The executable beside the test bundle (SwiftPM builds it because the test target depends
    /// on it), or `SYNCNODE_BIN` when set.
    static var url: URL {
        if let path = ProcessInfo.processInfo.environment["SYNCNODE_BIN"] { return URL(fileURLWithPath: path) }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("syncnode")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/syncnode")
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `syncnode ARGS...` and waits for it.
    @discardableResult
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        try runExecutable(url, arguments, environment: environment)
    }

    /// Runs `syncnode ARGS...` and waits for it on a thread of its own, so that an async test
    /// does not hold one of the few cooperative threads (which other tests, and in-process
    /// servers, need) while the child runs.
    @discardableResult
    static func runAsync(_ arguments: [String], environment: [String: String] = [:]) async throws -> Result {
        try await waitOffThePool { try runExecutable(url, arguments, environment: environment) }
    }

    /// Runs a command through `/bin/sh -c SCRIPT`, with `$SYNCNODE` set to the binary (for
    /// arguments Process cannot pass, such as invalid UTF-8).
    static func shell(_ script: String) throws -> Result {
        try runExecutable(URL(fileURLWithPath: "/bin/sh"), ["-c", script], environment: ["SYNCNODE": url.path])
    }

    private static func runExecutable(_ executable: URL, _ arguments: [String], environment: [String: String]) throws -> Result {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SYNCNODE_DATA")
        // The tests read the CLI's English messages whatever the machine's locale; a test that
        // wants Chinese says so (`SYNCNODE_LANG: ""` and a Chinese `LANG`, or `SYNCNODE_LANG: "zh"`).
        env["SYNCNODE_LANG"] = "en"
        env.merge(environment) { $1 }
        let (status, stdout, stderr) = try ChildProcess.run(executable.path, arguments, environment: env)
        return Result(status: status, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }
}

/// Runs blocking `work` (a child process, a socket waiting for a server) on a thread of its own and
/// waits for it without holding one of the few cooperative threads that in-process servers need.
func waitOffThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}
