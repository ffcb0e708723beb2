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
    static func run(_ arguments: [String]) async throws -> Bool {
        switch arguments.first {
        case "serve-child":
            try await serve(Array(arguments.dropFirst()))
            return true
        case "sync-child":
            try await sync(Array(arguments.dropFirst()))
            return true
        case "profile":
            try Profile.run(Array(arguments.dropFirst()))
            return true
        default:
            return false
        }
    }

    static var quietLogger: Logger {
        var logger = Logger(label: "syncnode-bench")
        logger.logLevel = .error
        return logger
    }

    private static func option(_ arguments: [String], _ name: String) -> String? {
        guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return nil }
        return arguments[i + 1]
    }

    private static func required(_ arguments: [String], _ name: String) throws -> String {
        guard let value = option(arguments, name) else { throw BenchError("missing \(name)") }
        return value
    }

    static func serve(_ arguments: [String]) async throws {
        let data = try required(arguments, "--data")
        let listen = try required(arguments, "--listen")
        let portFile = URL(fileURLWithPath: try required(arguments, "--port-file"))
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw BenchError("--listen takes HOST:PORT")
        }
        let host = String(listen[..<colon])
        let store = try Store.open(URL(fileURLWithPath: data))
        let logger = quietLogger
        let app = try NodeServer.application(service: SyncService(store: store), host: host, port: port, logger: logger) { bound in
            try? Data(String(bound).utf8).write(to: portFile, options: .atomic)
        }
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
        try? store.close()
    }

    static func sync(_ arguments: [String]) async throws {
        let data = URL(fileURLWithPath: try required(arguments, "--data"))
        let peer = try required(arguments, "--peer")
        let rssAtStart = Memory.currentRSS()
        let store = arguments.contains("--create") ? try Store.create(in: data, site: "fresh", label: nil) : try Store.open(data)
        defer { try? store.close() }
        var limits = SyncLimits()
        if let batch = option(arguments, "--batch").flatMap(Int.init) { limits.maxTransactions = batch }
        var options = HTTPClientOptions()
        if let timeout = option(arguments, "--timeout").flatMap(Double.init) { options.timeoutSeconds = timeout }
        if let stall = option(arguments, "--stall-seconds").flatMap(Int.init) { options.lowSpeedSeconds = stall }
        // Requests are signed as `syncnode sync` signs them (an enforcing HQ refuses unsigned ones).
        let transport = HTTPTransport(baseURL: peer, client: CurlClient(options: options), signer: store.requestSigner)
        let syncer = Syncer(store: store, transport: transport, limits: limits, logger: quietLogger)
        if let record = option(arguments, "--commit-record") {
            let i = Int(try store.vector().total)
            try store.commit([.put(collection: "projects", recordID: record, fields: Workload.fields(i))])
        }
        if arguments.contains("--wait-go") {
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
        if let expect = option(arguments, "--expect").flatMap(Int.init), summary.received != expect {
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
