import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import SyncNode
import SyncProtocol

/// Child modes of the benchmark executable, so that a measured process does only one thing:
///
/// - `serve-child --data DIR --listen HOST:PORT --port-file FILE`: the node's HTTP API for an
///   existing node until SIGTERM (the library's `NodeServer`, as `syncnode serve` without its
///   scheduler).
/// - `sync-child --data DIR --peer URL [--create] [--batch N] [--expect N] [--timeout S]
///   [--stall-seconds S] [--commit-record ID] [--wait-go]`: optionally records one record, and
///   waits for a `go` line on standard input once ready; then one sync round
///   (`Syncer` over `HTTPTransport`), then one JSON line with the round time, counts and the
///   process's peak RSS.
enum ChildModes {
    static var quietLogger: Logger {
        var logger = Logger(label: "syncnode-bench")
        logger.logLevel = .error
        return logger
    }

    static func serve(_ o: ServeChild) async throws {
        let data = o.data
        let listen = o.listen
        let portFile = URL(fileURLWithPath: o.portFile)
        guard let address = ListenAddress(listen) else { throw BenchError("--listen takes HOST:PORT") }
        let (host, port) = (address.host, address.port)
        let store = try Store.open(URL(fileURLWithPath: data))
        let logger = quietLogger
        let app = try NodeServer.application(service: SyncService(store: store), host: host, port: port, logger: logger) { bound in
            try? Data(String(bound).utf8).write(to: portFile, options: .atomic)
        }
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
        try? store.close()
    }

    static func sync(_ o: SyncChild) async throws {
        let data = URL(fileURLWithPath: o.data)
        let peer = o.peer
        let rssAtStart = Memory.currentRSS()
        let store = o.create ? try Store.create(in: data, site: "fresh", label: nil) : try Store.open(data)
        defer { try? store.close() }
        var limits = SyncLimits()
        if let batch = o.batch { limits.maxTransactions = batch }
        var options = HTTPClientOptions()
        if let timeout = o.timeout { options.timeoutSeconds = timeout }
        if let stall = o.stallSeconds { options.lowSpeedSeconds = stall }
        // Requests are signed as `syncnode sync` signs them (an enforcing HQ refuses unsigned ones).
        let transport = HTTPTransport(baseURL: peer, client: CurlClient(options: options), signer: store.requestSigner)
        let syncer = Syncer(store: store, transport: transport, limits: limits, logger: quietLogger)
        if let record = o.commitRecord {
            let i = Int(try store.vector().total)
            try store.commit([.put(collection: "projects", recordID: record, fields: Workload.fields(i))])
        }
        if o.waitGo {
            // Ready: everything but the round is done. Start when the parent says so.
            FileHandle.standardOutput.write(Data("ready\n".utf8))
            guard readLine() == "go" else { throw BenchError("no go") }
        }
        let peakBefore = Memory.peakRSS()
        var summary: SyncSummary?
        let seconds: Double
        do {
            seconds = try await Clock.seconds { summary = try await syncer.run() }
        } catch {
            // The failed round's outcome, in the shape of `syncnode sync --json`.
            let json = try JSONSerialization.data(withJSONObject: ["ok": false, "error": "\(error)"], options: [.sortedKeys])
            FileHandle.standardOutput.write(json + Data("\n".utf8))
            throw error
        }
        let peak = Memory.peakRSS()
        guard let summary else { throw BenchError("no summary") }
        if let expect = o.expect, summary.received != expect {
            throw BenchError("received \(summary.received) transactions, expected \(expect)")
        }
        let held = try store.summary()
        let result: [String: Any] = [
            "ok": true, "seconds": seconds, "received": summary.received, "sent": summary.sent, "wireBytes": summary.wireBytes,
            "batches": summary.batchesReceived, "peakRSS": peak, "peakBeforeSync": peakBefore, "rssAtStart": rssAtStart,
            "records": held.records, "transactions": held.transactions,
        ]
        let json = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        FileHandle.standardOutput.write(json + Data("\n".utf8))
    }
}

struct ServeChild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve-child", abstract: "The node's HTTP API for an existing node until SIGTERM.")
    @Option(help: "The node's data directory.") var data: String
    @Option(help: "HOST:PORT to listen on (port 0 picks one).") var listen: String
    @Option(help: "A file to write the bound port to.") var portFile: String

    func run() async throws { try await ChildModes.serve(self) }
}

struct SyncChild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sync-child", abstract: "One measured sync round; prints one JSON line.")
    @Option(help: "The node's data directory.") var data: String
    @Option(help: "The peer's base URL.") var peer: String
    @Flag(help: "Create a fresh node in --data first.") var create = false
    @Option(help: "Transactions per batch.") var batch: Int?
    @Option(help: "Fail unless this many transactions are received.") var expect: Int?
    @Option(help: "Request timeout in seconds.") var timeout: Double?
    @Option(help: "Seconds of stalled transfer before giving up.") var stallSeconds: Int?
    @Option(help: "Record this project before the round.") var commitRecord: String?
    @Flag(help: "Print 'ready' and wait for 'go' on standard input before the round.") var waitGo = false

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        // As the `sync` command does.
        Syncer.configureForOneShotProcess()
        try await ChildModes.sync(self)
    }
}
