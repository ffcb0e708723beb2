import ChildProcess
import Foundation

/// A `syncnode serve` child process on loopback.
final class ServeProcess {
    let process: ChildProcess
    let port: Int
    let log: URL

    /// Starts `serve` for `data` on `port` (0 for a free one) and waits until it listens.
    /// - Parameter softFileLimit: starts `serve` with this soft open-file limit (as a machine's
    ///   usual 1,024), through the shell's `ulimit`.
    init(data: String, port: Int = 0, extra: [String] = [], environment: [String: String] = [:], softFileLimit: Int? = nil) throws {
        let portFile = URL(fileURLWithPath: data + ".port")
        try? FileManager.default.removeItem(at: portFile)
        log = URL(fileURLWithPath: data + ".serve.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let arguments = ["serve", "--data", data, "--listen", "127.0.0.1:\(port)", "--port-file", portFile.path] + extra
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        let output = ChildProcess.Stream.descriptor(handle.fileDescriptor)
        if let softFileLimit {
            process = try ChildProcess(
                "/bin/sh", ["-c", "ulimit -Sn \(softFileLimit) && exec \"$0\" \"$@\"", Binary.url.path] + arguments, environment: env, stdin: .null,
                stdout: output, stderr: output)
        } else {
            process = try ChildProcess(Binary.url.path, arguments, environment: env, stdin: .null, stdout: output, stderr: output)
        }
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let text = try? String(contentsOf: portFile, encoding: .utf8), let bound = Int(text) {
                self.port = bound
                return
            }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        throw TestFailure("serve did not start: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// SIGTERM, then waits; returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        return process.terminationStatus
    }
}
