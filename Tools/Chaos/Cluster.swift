import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where the harness finds the programs it runs.
struct Tools {
    var syncnode: String
    var faultproxy: String
}

/// One syncnode: its data directory and, for serving nodes, its `serve` process.
final class Node {
    let name: String
    let site: String
    let role: String
    let data: String
    var id = ""
    var publicKey = ""
    /// Serving nodes keep their port across restarts.
    var port: Int?
    var serve: Child?
    var serveStarts = 0
    /// SYNCNODE_CLOCK_OFFSET_MS for this node's processes (clock-skew fault), nil when the clock is right.
    var clockOffsetMillis: Int64?

    init(name: String, site: String, role: String, data: String) {
        self.name = name
        self.site = site
        self.role = role
        self.data = data
    }

    var environment: [String: String] {
        clockOffsetMillis.map { ["SYNCNODE_CLOCK_OFFSET_MS": String($0)] } ?? [:]
    }
}

/// A `faultproxy` process in front of one node's API, with its control file.
final class Proxy {
    let name: String
    let upstreamPort: Int
    let control: String
    let port: Int
    let child: Child

    init(tools: Tools, name: String, upstreamPort: Int, plan: String, directory: String) throws {
        self.name = name
        self.upstreamPort = upstreamPort
        control = directory + "/\(name).control"
        try Data("faults".utf8).write(to: URL(fileURLWithPath: control))
        let portFile = directory + "/\(name).port"
        child = try Child(
            tools.faultproxy,
            ["--upstream", String(upstreamPort), "--port-file", portFile, "--plan", plan, "--control", control, "--max-seconds", "1800"],
            logPrefix: directory + "/\(name)")
        let deadline = Date().addingTimeInterval(10)
        var bound: Int?
        while Date() < deadline {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let p = Int(text) {
                bound = p
                break
            }
            usleep(20_000)
        }
        guard let bound else {
            child.kill9()
            throw HarnessError("faultproxy \(name) did not start: \(child.stderr)")
        }
        port = bound
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// `faults`, `pass` or `partition`; the proxy reads it within 100 ms.
    func set(_ mode: String) {
        try? Data(mode.utf8).write(to: URL(fileURLWithPath: control))
    }

    /// Faults injected, by kind, read from the proxy's log.
    func faultCounts() -> [String: Int] {
        var counts: [String: Int] = [:]
        for line in child.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count >= 4, parts[1] == "conn" else { continue }
            let kind = String(parts[3].split(separator: "(").first ?? parts[3])
            counts[kind, default: 0] += 1
        }
        return counts
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs syncnode commands against nodes, with client timeouts short enough for a fault run.
struct CLI {
    let tools: Tools
    let logDirectory: String
    static let clientOptions = ["--timeout", "6", "--connect-timeout", "2", "--stall-seconds", "2"]

    /// Runs `syncnode ARGS --data node.data` to completion (bounded by `timeout`).
    func run(_ node: Node, _ arguments: [String], timeout: Double = 60) throws -> CommandResult {
        let child = try start(node, arguments)
        let status = child.wait(seconds: timeout)
        let result = CommandResult(status: status, stdout: child.stdout, stderr: child.stderr)
        cleanUp(child)
        return result
    }

    func start(_ node: Node, _ arguments: [String]) throws -> Child {
        try Child(
            tools.syncnode, arguments + ["--data", node.data], environment: node.environment,
            logPrefix: logDirectory + "/cmd-\(UUID().uuidString.prefix(8))")
    }

    func cleanUp(_ child: Child) {
        try? FileManager.default.removeItem(atPath: child.stdoutPath)
        try? FileManager.default.removeItem(atPath: child.stderrPath)
    }

    /// A `record list` or `ledger list`: a name the node neither holds nor finds in its plan is
    /// answered with exit 3 (the only not-found these commands have); for the checker that is an
    /// empty list.
    func list(_ node: Node, _ arguments: [String]) throws -> CommandResult {
        let r = try run(node, arguments)
        if r.status == 3 { return CommandResult(status: 0, stdout: "[]", stderr: r.stderr) }
        return try succeeded(r, node, arguments)
    }

    /// Runs and requires exit 0.
    @discardableResult
    func must(_ node: Node, _ arguments: [String]) throws -> CommandResult {
        try succeeded(try run(node, arguments), node, arguments)
    }

    private func succeeded(_ r: CommandResult, _ node: Node, _ arguments: [String]) throws -> CommandResult {
        guard r.ok else {
            throw HarnessError(
                "`syncnode \(arguments.joined(separator: " "))` on \(node.name) exited \(r.status.map(String.init) ?? "killed"): \(r.stderr)")
        }
        return r
    }

    /// Starts `serve` for a node on its port (a free one the first time) and waits until it listens.
    func startServe(_ node: Node, every: String = "1s") throws {
        let portFile = node.data + ".port"
        var lastError = ""
        for attempt in 0..<20 {
            try? FileManager.default.removeItem(atPath: portFile)
            let port = node.port ?? 0
            node.serveStarts += 1
            let child = try Child(
                tools.syncnode,
                [
                    "serve", "--data", node.data, "--listen", "127.0.0.1:\(port)", "--port-file", portFile, "--every", every, "--log-level",
                    "warning",
                ] + Self.clientOptions, environment: node.environment, logPrefix: logDirectory + "/serve-\(node.name)-\(node.serveStarts)")
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline && child.isRunning {
                if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let bound = Int(text) {
                    node.port = bound
                    node.serve = child
                    return
                }
                usleep(20_000)
            }
            lastError = child.stderr
            child.kill9()
            // The port may still be held for a moment after a kill -9; try again shortly.
            usleep(UInt32(100_000 * (attempt + 1)))
        }
        throw HarnessError("serve \(node.name) did not start: \(lastError)")
    }
}
