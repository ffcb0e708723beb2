import FaultProxy
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// faultproxy: a TCP fault proxy on 127.0.0.1 for the reliability harness.
//
//   faultproxy --upstream PORT [--port N] [--port-file FILE] [--plan SPEC] [--control FILE] [--max-seconds N]
//
// Every accepted connection gets one fault drawn from the seeded plan (see `FaultPlan`). The
// control file, when given, is read every 100 ms: `faults` (or empty) applies the plan, `pass`
// forwards everything untouched, `partition` cuts every open connection and resets new ones.
// One line per connection and per mode change goes to stdout: `<ms> conn <n> <fault>` and
// `<ms> mode <mode>`. The proxy stops on SIGTERM or SIGINT, or after --max-seconds (default 3600).

let usage = "usage: faultproxy --upstream PORT [--port N] [--port-file FILE] [--plan SPEC] [--control FILE] [--max-seconds N]"

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("faultproxy: \(message)\n\(usage)\n".utf8))
    exit(64)
}

var options: [String: String] = [:]
var arguments = CommandLine.arguments.dropFirst()
while let name = arguments.popFirst() {
    guard name.hasPrefix("--"), ["--upstream", "--port", "--port-file", "--plan", "--control", "--max-seconds"].contains(name) else {
        fail("unknown argument '\(name)'")
    }
    guard let value = arguments.popFirst() else { fail("\(name) needs a value") }
    options[String(name.dropFirst(2))] = value
}
guard let upstreamText = options["upstream"], let upstream = Int(upstreamText), (1...65535).contains(upstream) else {
    fail("--upstream takes a port number")
}
let listenPort = UInt16(options["port"] ?? "0") ?? 0
let maxSeconds = Double(options["max-seconds"] ?? "3600") ?? 3600
let plan: FaultPlan
do {
    plan = try FaultPlan(options["plan"] ?? "")
} catch {
    fail("--plan: \(error)")
}

/// Writes `<ms since start> <line>` to stdout, one line at a time from any thread.
final class EventLog: @unchecked Sendable {
    let started = Date()
    private let lock = NSLock()

    func callAsFunction(_ line: String) {
        let ms = Int(Date().timeIntervalSince(started) * 1000)
        lock.withLock { FileHandle.standardOutput.write(Data("\(ms) \(line)\n".utf8)) }
    }
}

let log = EventLog()
let started = log.started

/// The mode the control file selects, shared with the proxy's plan closure.
final class Controller: @unchecked Sendable {
    private let lock = NSLock()
    private var plan: FaultPlan
    private var mode = "faults"

    init(plan: FaultPlan) { self.plan = plan }

    var current: String { lock.withLock { mode } }

    func set(_ newMode: String) { lock.withLock { mode = newMode } }

    func nextFault() -> FaultProxy.Fault {
        lock.withLock { mode == "faults" ? plan.next() : .pass }
    }
}

let controller = Controller(plan: plan)
let proxy = FaultProxy(upstreamPort: upstream)
proxy.plan { _ in controller.nextFault() }
proxy.observe { number, fault in log("conn \(number) \(fault)") }
let port: UInt16
do {
    port = try proxy.start(port: listenPort)
} catch {
    fail("\(error)")
}
if let portFile = options["port-file"] {
    try? Data(String(port).utf8).write(to: URL(fileURLWithPath: portFile))
}
log("listening 127.0.0.1:\(port) upstream 127.0.0.1:\(upstream)")

signal(SIGTERM) { _ in _exit(0) }
signal(SIGINT) { _ in _exit(0) }
signal(SIGPIPE, SIG_IGN)

let control = options["control"]
while Date().timeIntervalSince(started) < maxSeconds {
    if let control, let data = FileManager.default.contents(atPath: control) {
        var mode = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if mode.isEmpty { mode = "faults" }
        if ["faults", "pass", "partition"].contains(mode), mode != controller.current {
            controller.set(mode)
            proxy.partitioned = mode == "partition"
            log("mode \(mode)")
        }
    }
    Thread.sleep(forTimeInterval: 0.1)
}
log("stopping after \(Int(maxSeconds)) s")
proxy.stop()
