import ArgumentParser
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

/// Writes `<ms since start> <line>` to stdout, one line at a time from any thread.
final class EventLog: @unchecked Sendable {
    let started = Date()
    private let lock = NSLock()

    func callAsFunction(_ line: String) {
        let ms = Int(Date().timeIntervalSince(started) * 1000)
        lock.withLock { FileHandle.standardOutput.write(Data("\(ms) \(line)\n".utf8)) }
    }
}

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

@main
struct FaultProxyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faultproxy",
        abstract: "A TCP fault proxy on 127.0.0.1 for the reliability harness.")

    @Option(help: "The port on 127.0.0.1 to forward to.")
    var upstream: Int

    @Option(help: "The port to listen on (0 picks a free one).")
    var port: UInt16 = 0

    @Option(help: "A file to write the listening port to.")
    var portFile: String?

    @Option(help: "The seeded fault plan (see FaultPlan), e.g. 'seed=7,reset=0.1'.")
    var plan: String = ""

    @Option(help: "A file read every 100 ms: 'faults' (or empty), 'pass' or 'partition'.")
    var control: String?

    @Option(help: "Stop after this many seconds.")
    var maxSeconds: Double = 3600

    func validate() throws {
        guard (1...65535).contains(upstream) else { throw ValidationError("--upstream takes a port number (1-65535)") }
        do { _ = try FaultPlan(plan) } catch { throw ValidationError("--plan: \(error)") }
    }

    func run() throws {
        let log = EventLog()
        let started = log.started
        let controller = Controller(plan: try FaultPlan(plan))
        let proxy = FaultProxy(upstreamPort: upstream)
        proxy.plan { _ in controller.nextFault() }
        proxy.observe { number, fault in log("conn \(number) \(fault)") }
        let listening: UInt16
        do {
            listening = try proxy.start(port: port)
        } catch {
            throw ValidationError("\(error)")
        }
        if let portFile {
            try? Data(String(listening).utf8).write(to: URL(fileURLWithPath: portFile))
        }
        log("listening 127.0.0.1:\(listening) upstream 127.0.0.1:\(upstream)")

        signal(SIGTERM) { _ in _exit(0) }
        signal(SIGINT) { _ in _exit(0) }
        signal(SIGPIPE, SIG_IGN)

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
    }
}
