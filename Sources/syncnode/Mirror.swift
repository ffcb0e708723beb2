import ArgumentParser
import Foundation
import Logging
import SyncMirror
import SyncNode

extension SyncNodeCommand {
    struct Mirror: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bring a PostgreSQL database up to date with this node's merged view (for analysts' tools).",
            discussion: """
                Incremental: only what the database lacks is sent, in batches of one PostgreSQL transaction each; a run cut off \
                is continued by the next. Credentials come from the URL or PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, \
                PGSSLMODE, PGSSLROOTCERT; the password is never printed. The tables are described in docs/MIRROR.md. \
                `serve --mirror-postgres URL` keeps the mirror current while serving. \
                Exits 69 when the server cannot be reached, 78 when it refuses the login, 75 when another mirror is writing, \
                67 when the database holds another node's mirror.
                """)

        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "The database: postgres://USER@HOST:PORT/DATABASE?sslmode=… (default: the PG* variables).") var postgres: String?
        @Option(help: "Most transactions per batch.") var batchTransactions = 5000
        @Option(help: "Log level: trace, debug, info, notice, warning, error (trace and debug include the PostgreSQL client's own lines).")
        var logLevel = "warning"

        func validate() throws {
            guard batchTransactions > 0 else { throw ValidationError("--batch-transactions must be positive") }
            guard Logger.Level(rawValue: logLevel) != nil else {
                throw ValidationError("--log-level is one of trace, debug, info, notice, warning, error")
            }
        }

        func run() async throws {
            let target = try withFailure { () throws(SyncNodeError) in try PostgresTarget.parse(postgres) }
            let store: Store
            do {
                store = try Store.open(node.directory, clock: CLIClock.current)
            } catch {
                throw failure(error)
            }
            defer { try? store.close() }
            var logger = Logger(label: "syncnode.mirror")
            logger.logLevel = Logger.Level(rawValue: logLevel)!
            let mirror = PostgresMirror(store: store, target: target, batchSize: batchTransactions, logger: logger)
            let report: MirrorReport
            do {
                report = try await mirror.run()
            } catch let error as SyncNodeError {
                throw failure(error)
            }
            if output.json {
                emit(
                    Presenter.json([
                        "target": report.target, "transactions": report.transactions, "batches": report.batches, "records": report.records,
                        "entries": report.entries, "restarted": report.restarted, "mirrored": report.mirrored, "current": report.current,
                        "seconds": report.seconds, "readSeconds": report.readSeconds, "writeSeconds": report.writeSeconds,
                        "derivedSeconds": report.derivedSeconds,
                    ]))
                return
            }
            if report.restarted {
                note(
                    "warning: this node's history changed under the mirror (a repaired fork or recovered history); it was written again from nothing")
            }
            if !report.current {
                note(
                    "warning: the node holds work beyond what was mirrored (\(report.mirrored) transactions): more arrived meanwhile, or part of the log cannot be read; run again, and see `syncnode check` if it stays"
                )
            }
            emit(
                report.transactions == 0
                    ? "\(report.target) was already current (\(report.mirrored) transactions)"
                    : "mirrored \(report.transactions) transactions (\(report.records) records, \(report.entries) ledger entries) to \(report.target) in \(String(format: "%.1f", report.seconds)) s; it holds \(report.mirrored)\(report.current ? "" : ", and more arrived meanwhile")"
            )
        }
    }
}
