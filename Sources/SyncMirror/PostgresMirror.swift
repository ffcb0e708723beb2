import Foundation
import Logging
import PostgresNIO
import SyncNode
import SyncProtocol

/// What one mirror pass did.
public struct MirrorReport: Codable, Sendable, Equatable {
    /// The database, without credentials.
    public var target: String
    /// Transactions mirrored by this pass, and in how many batches (one PostgreSQL transaction each).
    public var transactions: Int
    public var batches: Int
    /// Records and ledger entries written by this pass.
    public var records: Int
    public var entries: Int
    /// Whether the node's history changed under what was mirrored (a fork repaired, a node's own
    /// history recovered), so the mirror was written again from nothing.
    public var restarted: Bool
    /// The transactions the mirror holds now (the sum of its vector), and whether that is all the
    /// node holds.
    public var mirrored: UInt64
    public var current: Bool
    public var seconds: Double
    /// Of `seconds`: reading the node's batches, writing them into PostgreSQL, and the tables
    /// computed from everything (conflicts, nodes, funds, review).
    public var readSeconds: Double = 0
    public var writeSeconds: Double = 0
    public var derivedSeconds: Double = 0
}

/// Seconds since `start`.
func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// How many history checks one call of `Store.forkedOrigins` takes (it reads at most its own limit).
let maxForkChecksPerCall = 1_000

/// Brings a PostgreSQL database up to date with the node's merged view (`docs/MIRROR.md`).
///
/// Incremental: the database keeps the vector it mirrored (`mirror_vector`, with each origin's
/// history chain there); a pass asks the node for what lies beyond it, a batch at a time, and
/// writes each batch, with the vector it reaches, in one PostgreSQL transaction. A pass cut off
/// anywhere leaves whole batches: the next one starts where the last committed batch ended, and
/// a batch written twice writes the same rows (every write is an upsert of the current state).
/// The node's SQLite is only read, on `BlockingWork`'s threads: a mirror never holds up sync.
public struct PostgresMirror: Sendable {
    public let store: Store
    public let target: PostgresTarget
    /// Most transactions per batch.
    public let batchSize: Int
    let logger: Logger

    public init(store: Store, target: PostgresTarget, batchSize: Int = 5000, logger: Logger) {
        self.store = store
        self.target = target
        self.batchSize = max(1, batchSize)
        self.logger = logger
    }

    /// One pass: connects, brings the database up to date, disconnects, and notes where the
    /// mirror stands in the node (`status`, `/metrics`). A failure is noted too, and thrown as a
    /// `SyncNodeError` that says what to do.
    /// - Parameter refreshDerived: whether to write the conflicts, funds and review tables again
    ///   when anything changed (`serve` spaces them out: they are the costly part of a pass).
    public func run(refreshDerived: Bool = true) async throws -> MirrorReport {
        let started = ContinuousClock.now
        var report = try await connected { db in try await pass(db, refreshDerived: refreshDerived) }
        report.seconds = seconds(since: started)
        try await note(mirrored: report.mirrored, current: report.current, error: nil)
        return report
    }

    /// Writes the tables computed from everything (conflicts, nodes, funds, review) when what they
    /// show may have changed since they were written, on a connection of its own: `serve` runs
    /// this beside the passes that carry the entries, which never wait for it. Returns whether it
    /// wrote them.
    @discardableResult
    public func runDerived() async throws -> Bool {
        try await connected { db in
            try await prepare(db)
            let key = try await derivedKey(mirrored: try await readVector(db).0.total)
            guard try await setting("derived_through", db) != key else { return false }
            try await refreshDerived(key: key, db)
            return true
        }
    }

    /// `body` on a connection of its own, closed after it. A failure is noted where `status`
    /// reads it and thrown as a `SyncNodeError` that says what to do; a task cancelled because
    /// `serve` is stopping is not a failure of the mirror.
    private func connected<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        var connection: PostgresConnection?
        do {
            let db = try await connect()
            connection = db
            let result = try await body(db)
            try? await db.close()
            return result
        } catch {
            if let connection { try? await connection.close() }
            if error is CancellationError || Task.isCancelled { throw CancellationError() }
            let said = MirrorErrors.said(error, target)
            try? await note(mirrored: nil, current: false, error: said.message)
            throw said
        }
    }

    /// What the derived tables are computed from: the transactions mirrored, and the forks and
    /// refusals the node knows (which change its review without new work).
    private func derivedKey(mirrored total: UInt64) async throws -> String {
        try await BlockingWork.run { [store] in "\(total)/\(try store.forks().count)/\(try store.rejections().count)" }
    }

    private func connect() async throws -> PostgresConnection {
        let configuration = try target.configuration()
        // The client's own lines only when asked for in detail (trace, debug).
        var client = logger
        if logger.logLevel > .debug { client.logLevel = max(logger.logLevel, .warning) }
        return try await PostgresConnection.connect(configuration: configuration, id: 1, logger: client)
    }

    private func pass(_ db: PostgresConnection, refreshDerived: Bool) async throws -> MirrorReport {
        try await lock(db)
        try await prepare(db)
        var (mirrored, chains) = try await readVector(db)
        var report = MirrorReport(
            target: target.description, transactions: 0, batches: 0, records: 0, entries: 0, restarted: false, mirrored: 0, current: false, seconds: 0
        )
        let shape = try await BlockingWork.run { [store] in MirrorSchema.planShape(try store.programme()) }
        let mirroredShape = try await setting("plan_shape", db)
        let planChanged = mirroredShape != nil && mirroredShape != shape
        let historyChanged = try await historyChanged(under: mirrored, chains)
        if planChanged || historyChanged {
            let why = planChanged ? "the plan's kinds or ledgers changed" : "the node's history changed under the mirror"
            logger.warning("\(why); writing the mirror again from nothing", metadata: ["mirror.target": "\(target)"])
            try await db.transaction(logger: logger) { db in
                try await db.run("TRUNCATE records, ledger_entries, money_entries, conflicts, mirror_vector", logger: logger)
            }
            mirrored = VersionVector()
            chains = [:]
            report.restarted = true
        }
        if mirroredShape != shape {
            try await db.run(
                "INSERT INTO syncnode_mirror (key, value) VALUES ('plan_shape', \(shape)) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                logger: logger)
        }
        mirrored = try await mirrorBatches(after: mirrored, &report, db)
        if refreshDerived {
            // Written again when anything they show may have changed: new work, or forks and
            // refusals the node learned of without new work.
            let key = try await derivedKey(mirrored: mirrored.total)
            let derivedThrough = try await setting("derived_through", db)
            if report.transactions > 0 || report.restarted || derivedThrough != key {
                let deriving = ContinuousClock.now
                try await self.refreshDerived(key: key, db)
                report.derivedSeconds = seconds(since: deriving)
            }
        }
        report.mirrored = mirrored.total
        let held = try await BlockingWork.run { [store] in try store.vector() }
        report.current = held == mirrored
        return report
    }

    /// Writes batch after batch until the database holds what the node holds; the next batch is
    /// read from the node while the last one is written. Returns the vector reached.
    private func mirrorBatches(after start: VersionVector, _ report: inout MirrorReport, _ db: PostgresConnection) async throws -> VersionVector {
        @Sendable func read(after: VersionVector) async throws -> (MirrorBatch, [(NodeID, String?)], Double) {
            let reading = ContinuousClock.now
            return try await BlockingWork.run { [store, batchSize] in
                let batch = try store.mirrorBatch(after: after, maxTransactions: batchSize)
                let advanced = batch.through.entries.filter { $0.value != after[$0.key] }.map(\.key)
                let chains = try advanced.map { origin in (origin, try store.forkCheck(origin: origin, seq: batch.through[origin])?.chain) }
                return (batch, chains, seconds(since: reading))
            }
        }
        var mirrored = start
        var next: Task<(MirrorBatch, [(NodeID, String?)], Double), any Error>? = Task { try await read(after: start) }
        defer { next?.cancel() }
        while let pending = next {
            let (batch, chains, readSeconds) = try await pending.value
            next = nil
            guard batch.transactions > 0, batch.through != mirrored else { break }
            if batch.more { next = Task { [through = batch.through] in try await read(after: through) } }
            report.readSeconds += readSeconds
            let writing = ContinuousClock.now
            try await write(batch, chains: chains, db)
            report.writeSeconds += seconds(since: writing)
            mirrored = batch.through
            report.transactions += batch.transactions
            report.batches += 1
            report.records += batch.records.count
            report.entries += batch.entries.count
            // Where a long first pass stands, for `status` meanwhile.
            try await note(mirrored: mirrored.total, current: false, error: nil)
            logger.debug(
                "mirrored a batch",
                metadata: [
                    "mirror.transactions": "\(batch.transactions)", "mirror.entries": "\(batch.entries.count)", "mirror.held": "\(mirrored.total)",
                ])
        }
        return mirrored
    }

    /// One writer per database: a second mirror (a `mirror` run beside `serve --mirror-postgres`)
    /// is told to wait rather than interleave. The lock goes with the connection.
    private func lock(_ db: PostgresConnection) async throws {
        let rows = try await db.run("SELECT pg_try_advisory_lock(\(MirrorSchema.lockKey))", logger: logger)
        for try await locked in rows.decode(Bool.self) where !locked {
            throw SyncNodeError(
                .busy, "another mirror is writing to \(target) now (a syncnode mirror or serve --mirror-postgres); run again when it has finished")
        }
    }

    /// Makes the tables when missing; refuses a database of a newer schema or of another node.
    private func prepare(_ db: PostgresConnection) async throws {
        try await db.transaction(logger: logger) { db in
            var settings: [String: String] = [:]
            var made = false
            for try await exists in try await db.run("SELECT to_regclass('syncnode_mirror') IS NOT NULL", logger: logger).decode(Bool.self) {
                made = exists
            }
            if made {
                let rows = try await db.run("SELECT key, value FROM syncnode_mirror WHERE key IN ('schema_version', 'node')", logger: logger)
                for try await (key, value) in rows.decode((String, String).self) { settings[key] = value }
            }
            // The tables are made (or completed) only when the schema is not this version's:
            // the statements take locks that analysts' queries would wait behind.
            if settings["schema_version"] != String(MirrorSchema.version) || !made {
                for statement in MirrorSchema.tables { try await db.run(PostgresQuery(unsafeSQL: statement), logger: logger) }
            }
            if let version = settings["schema_version"].flatMap(Int.init), version > MirrorSchema.version {
                throw SyncNodeError(
                    .notForThisNode,
                    "\(target) holds a mirror of schema \(version), written by a newer syncnode; this one writes schema \(MirrorSchema.version). Upgrade this node, or mirror into another database"
                )
            }
            let node = store.info.nodeID.hex
            if let other = settings["node"], other != node {
                throw SyncNodeError(
                    .notForThisNode,
                    "\(target) holds the mirror of node \(other.prefix(8)), not of this node (\(node.prefix(8))); mirror each node into a database of its own"
                )
            }
            let version = String(MirrorSchema.version)
            try await db.run(
                """
                INSERT INTO syncnode_mirror (key, value) VALUES ('schema_version', \(version)), ('node', \(node)), ('node_label', \(store.info.label))
                ON CONFLICT (key) DO UPDATE SET value = excluded.value
                """, logger: logger)
        }
    }

    private func readVector(_ db: PostgresConnection) async throws -> (VersionVector, [NodeID: String]) {
        var entries: [NodeID: UInt64] = [:]
        var chains: [NodeID: String] = [:]
        let rows = try await db.run("SELECT origin, seq, chain FROM mirror_vector", logger: logger)
        for try await (origin, seq, chain) in rows.decode((String, Int64, String?).self) {
            guard let node = NodeID(hex: origin), seq > 0 else { continue }
            entries[node] = UInt64(seq)
            chains[node] = chain
        }
        return (VersionVector(entries), chains)
    }

    /// Whether the node no longer holds what was mirrored as it was: an origin's history shorter
    /// than mirrored, or different at the last transaction mirrored (its history chain).
    private func historyChanged(under mirrored: VersionVector, _ chains: [NodeID: String]) async throws -> Bool {
        guard !mirrored.entries.isEmpty else { return false }
        return try await BlockingWork.run { [store] in
            let held = try store.vector()
            if mirrored.entries.contains(where: { held[$0.key] < $0.value }) { return true }
            // A chain the mirror could not read when it wrote (that history was being withdrawn
            // at that moment) counts as changed.
            if mirrored.entries.keys.contains(where: { chains[$0] == nil }) { return true }
            let checks = mirrored.entries.map { origin, seq in PullRequest.ForkCheck(origin: origin, seq: seq, chain: chains[origin]!) }
            for start in stride(from: 0, to: checks.count, by: maxForkChecksPerCall) {
                let part = Array(checks[start..<min(checks.count, start + maxForkChecksPerCall)])
                if !(try store.forkedOrigins(part)).isEmpty { return true }
            }
            return false
        }
    }

    private func setting(_ key: String, _ db: PostgresConnection) async throws -> String? {
        var found: String?
        // Read to the end: a row sequence left unfinished is cancelled under the connection.
        for try await value in try await db.run("SELECT value FROM syncnode_mirror WHERE key = \(key)", logger: logger).decode(String.self) {
            found = value
        }
        return found
    }

    private func note(mirrored: UInt64?, current: Bool, error: String?) async throws {
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        try await BlockingWork.run { [store, target] in
            var status = try store.mirrorStatus() ?? MirrorStatus(target: target.description, mirrored: 0, currentAt: nil)
            status.target = target.description
            if let mirrored { status.mirrored = mirrored }
            if current { status.currentAt = now }
            if let error {
                status.failedAt = now
                status.error = error
            } else {
                status.failedAt = nil
                status.error = nil
            }
            try store.noteMirrorStatus(status)
        }
    }
}
