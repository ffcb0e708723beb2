import Foundation
import GRDB
import SyncProtocol

/// The checks a batch passes whole before anything of it is applied: each transaction well formed,
/// its clock within the drift limit, the next of its origin (after what this node holds or holds
/// back, and after the batch's earlier ones: no gap), and its clock after its origin's previous
/// one. Fed one transaction at a time, so a large push is checked whole without holding every
/// transaction of it decoded at once (`Store.applyFrames`).
struct BatchCheck {
    let store: Store
    let now: UInt64
    let clock: HybridClock
    /// Held transactions count as received: the next ones of their origin continue after them.
    var expected: [NodeID: UInt64]
    /// An origin's clock goes up with every transaction it makes: a clock that does not is a
    /// faulty or forged origin, refused whatever order versions reach this replica in.
    var lastClock: [NodeID: Timestamp] = [:]

    init(store: Store, held: VersionVector) {
        self.store = store
        now = store.clock.nowMillis()
        clock = HybridClock(node: store.info.nodeID, maxDriftMillis: store.maxDriftMillis)
        expected = held.entries
    }

    mutating func check(_ t: Transaction) throws(SyncNodeError) {
        if let problem = t.problem(maxValueBytes: store.limits.maxValueBytes) {
            throw SyncNodeError(.protocolViolation, "transaction \(t.origin.short)/\(t.seq) refused: \(problem)")
        }
        do {
            try clock.check(remote: t.hlc, now: now)
        } catch {
            throw SyncNodeError(.clockSkew, "transaction \(t.origin.short)/\(t.seq) refused: \(error.description)")
        }
        let held = expected[t.origin] ?? 0
        if t.seq <= held { return }
        guard t.seq == held + 1 else {
            throw SyncNodeError(
                .protocolViolation,
                "transaction \(t.origin.short)/\(t.seq) arrived before \(t.origin.short)/\(held + 1) (a gap in the sequence); nothing was applied"
            )
        }
        expected[t.origin] = t.seq
        if lastClock[t.origin] == nil, let logged = try store.lastLoggedClock(of: t.origin) { lastClock[t.origin] = logged }
        if let previous = lastClock[t.origin], t.hlc <= previous {
            throw SyncNodeError(
                .protocolViolation,
                "transaction \(t.origin.short)/\(t.seq) carries a clock (\(t.hlc)) not later than its origin's previous transaction (\(previous)); a faulty or forged origin; nothing was applied"
            )
        }
        lastClock[t.origin] = t.hlc
    }
}

/// What a remote apply did.
public struct ApplyReport: Sendable, Equatable {
    /// Transactions applied now.
    public var applied = 0
    /// Transactions already held and skipped (re-delivery is a no-op).
    public var duplicates = 0
    /// Encoded bytes of the applied transactions.
    public var bytes = 0
    /// Highest seq now held, per origin seen in the batch.
    public var heldUpTo: [NodeID: UInt64] = [:]
    /// SQLite transactions used (the batch is applied in bounded chunks).
    public var chunks = 0
    /// Transactions refused (signature, revocation or policy), with the reasons.
    public var refused: [Refusal] = []
    /// Transactions held until the registry knows their origin.
    public var held = 0
    /// Transactions left for a later sync: another node's unsigned refusal statement stood in place
    /// of one of their origin's transactions, which must arrive signed before they can be applied.
    public var waiting = 0
    /// Whether the batch changed the registry or the policy (or a fork made this node give up
    /// part of an origin's history: what was built on it was rebuilt).
    public var trustChanged = false
    /// Copies that fork their origin's history (another signed transaction under a number held
    /// here), kept as evidence (`Store.forks`).
    public var forks = 0
    /// Transactions held here whose verdict was changed to HQ's (vouched) one.
    public var verdictsTaken = 0

    public init() {}

    /// Adds what a later part of the same batch did.
    public mutating func add(_ other: ApplyReport) {
        applied += other.applied
        duplicates += other.duplicates
        bytes += other.bytes
        heldUpTo.merge(other.heldUpTo) { max($0, $1) }
        chunks += other.chunks
        refused += other.refused
        held += other.held
        waiting += other.waiting
        trustChanged = trustChanged || other.trustChanged
        forks += other.forks
        verdictsTaken += other.verdictsTaken
    }
}

extension Store {
    /// Applies transactions received from another node (a peer or a bundle).
    ///
    /// Checks the whole batch first (well-formed, in order without gaps, clocks within the drift
    /// limit) and refuses it whole, writing nothing, if any transaction fails. Then applies it in
    /// bounded chunks, each one SQLite transaction; every transaction is all-or-nothing, the vector
    /// advances only with the commit that applied it, and transactions already held are skipped.
    ///
    /// - Parameter via: the authenticated node that handed over the batch (a push), which bounds how
    ///   much of its work waits in `held`; nil for pulls and bundles.
    /// - Parameter source: who handed it over, in words (a peer's name, a bundle's file), kept
    ///   with any copy that turns out to fork its origin's history (`Store+Forks`).
    public func apply(_ received: [ReceivedTransaction], via: NodeID? = nil, source: String? = nil, releaseHeld: Bool = true)
        throws(SyncNodeError) -> ApplyReport
    {
        var stops: [NodeID: UInt64] = [:]
        return try apply(received, via: via, source: source, releaseHeld: releaseHeld, stops: &stops)
    }

    /// `apply` for a stream of batches (a bundle read a batch at a time): `stops` carries, from
    /// one batch to the next, the origins whose transaction was turned away or stood for by a
    /// refusal statement (origin → that seq); their later transactions wait, in every batch.
    func apply(_ received: [ReceivedTransaction], via: NodeID?, source: String? = nil, releaseHeld: Bool, stops: inout [NodeID: UInt64])
        throws(SyncNodeError) -> ApplyReport
    {
        let offThePool = BlockingWork.isCurrentThread
        applyThreads.withLock { offThePool ? ($0.blocking += 1) : ($0.other += 1) }
        // Held work past its age goes before anything is counted against the senders' shares
        // (and before the vector extended by held work is read: what is dropped is received again).
        try expireHeldWork()
        let held = try pullVector()
        Self.noteStatements(received, held: held, stops: &stops)
        var waiting = 0
        let batch = received.filter { item in
            if let stop = stops[item.transaction.origin], item.transaction.seq >= stop {
                waiting += 1
                return false
            }
            return item.refusal == nil
        }
        var check = BatchCheck(store: self, held: held)
        for item in batch { try check.check(item.transaction) }
        let now = check.now

        var report = ApplyReport()
        report.waiting = waiting
        let sourceName = source ?? via.map { "node \($0.short)" } ?? "a peer or a bundle"
        // Across chunks: once an origin's transaction is held or turned away, its later ones in
        // this batch must wait too (they would otherwise arrive "out of order").
        var origins = ChunkApply.Origins()
        var start = batch.startIndex
        while start < batch.endIndex {
            let end = chunkEnd(batch, from: start)
            let began = ContinuousClock.now
            let chunk = batch[start..<end]
            let chunkReport = try writeInterned { db, interner -> ApplyReport in
                var run = try ChunkApply(store: self, db: db, via: via, source: sourceName, now: now, origins: origins)
                for item in chunk { try run.take(item, &interner) }
                origins = run.origins
                return try run.finish()
            }
            report.add(chunkReport)
            report.chunks += 1
            start = end
            // A chunk that held the write lock long is followed by a pause longer than SQLite's
            // busy handler sleeps between its tries, so that a local write waiting in another
            // process (a clerk's `add`) gets the lock between two chunks of a large import.
            if start < batch.endIndex, ContinuousClock.now - began > limits.applyChunkYieldAfter {
                Thread.sleep(forTimeInterval: 0.12)
            }
        }
        for r in report.refused where r.permanent == false { stops[r.origin] = min(stops[r.origin] ?? .max, r.seq) }
        if releaseHeld {
            // The batch itself is applied whatever happens here: held work that cannot be
            // released now is tried again after the next apply.
            let released = (try? releaseHeldWork()) ?? ApplyReport()
            report.applied += released.applied
            report.refused += released.refused
            report.held = max(0, report.held - released.applied - released.refused.count)
        }
        return report
    }

    /// A refusal statement is nobody's judgement but its sender's: the transaction it stands for
    /// (if this node lacks it), and every later one of that origin, wait until the signed
    /// original arrives.
    static func noteStatements(_ received: some Sequence<ReceivedTransaction>, held: VersionVector, stops: inout [NodeID: UInt64]) {
        for item in received where item.refusal != nil && item.transaction.seq > held[item.transaction.origin] {
            stops[item.transaction.origin] = min(stops[item.transaction.origin] ?? .max, item.transaction.seq)
        }
    }

    /// Where the chunk that begins at `start` ends: at most `applyChunkTransactions`, and within
    /// the byte and change bounds unless one transaction alone exceeds them.
    private func chunkEnd(_ batch: [ReceivedTransaction], from start: Int) -> Int {
        var end = start
        var bytes = 0
        var changes = 0
        while end < batch.endIndex, end - start < limits.applyChunkTransactions,
            end == start
                || (bytes + batch[end].body.count <= limits.applyChunkBytes
                    && changes + batch[end].transaction.changes.count <= limits.applyChunkChanges)
        {
            bytes += batch[end].body.count
            changes += batch[end].transaction.changes.count
            end += 1
        }
        return end
    }

    /// A pushed batch, checked whole (`planFrames`) and cut into the slices it is applied in.
    public struct FramePlan: Sendable {
        var stops: [NodeID: UInt64]
        var slices: [Range<Int>]
    }

    /// Why a pushed batch cannot be applied: a frame that is not a transaction (the request is
    /// malformed), or a transaction the batch checks refuse.
    public enum FrameProblem: Error {
        case malformed(String)
        case refused(SyncNodeError)
    }

    /// Checks a pushed batch, given as its frames, whole before anything of it is applied, one
    /// transaction decoded at a time, and cuts it into slices of at most `applyChunkChanges`
    /// changes: memory holds the body and one slice decoded, not every transaction at once.
    public func planFrames(_ frames: [ArraySlice<UInt8>]) throws(FrameProblem) -> FramePlan {
        func decode(_ i: Int, _ frame: ArraySlice<UInt8>) throws(FrameProblem) -> ReceivedTransaction {
            do {
                return try ReceivedTransaction(frame: frame)
            } catch {
                throw .malformed("transaction \(i + 1) of the batch: \(error.description)")
            }
        }
        do {
            let held = try pullVector()
            var stops: [NodeID: UInt64] = [:]
            var statements: [ReceivedTransaction] = []
            for (i, frame) in frames.enumerated() where frame.first != UInt8(ascii: "T") { statements.append(try decode(i, frame)) }
            Self.noteStatements(statements, held: held, stops: &stops)
            var check = BatchCheck(store: self, held: held)
            var slices: [Range<Int>] = []
            var sliceStart = 0
            var changes = 0
            for (i, frame) in frames.enumerated() where frame.first == UInt8(ascii: "T") {
                let t = try decode(i, frame).transaction
                if let stop = stops[t.origin], t.seq >= stop { continue }
                try check.check(t)
                if changes > 0 && changes + t.changes.count > limits.applyChunkChanges {
                    slices.append(sliceStart..<i)
                    sliceStart = i
                    changes = 0
                }
                changes += t.changes.count
            }
            slices.append(sliceStart..<frames.count)
            return FramePlan(stops: stops, slices: slices)
        } catch let problem as FrameProblem {
            throw problem
        } catch let error as SyncNodeError {
            throw .refused(error)
        } catch {
            throw .refused(SyncNodeError(.storage, "\(error)"))
        }
    }

    /// Applies a pushed batch as `planFrames` cut it, a slice at a time.
    public func applyFrames(_ frames: [ArraySlice<UInt8>], _ plan: FramePlan, via: NodeID?, source: String? = nil) throws(SyncNodeError)
        -> ApplyReport
    {
        var stops = plan.stops
        var report = ApplyReport()
        for (n, range) in plan.slices.enumerated() {
            var slice: [ReceivedTransaction] = []
            do {
                for frame in frames[range] { slice.append(try ReceivedTransaction(frame: frame)) }
            } catch {
                throw SyncNodeError(error)
            }
            report.add(try apply(slice, via: via, source: source, releaseHeld: n == plan.slices.count - 1, stops: &stops))
        }
        return report
    }

    /// Judges again the held transactions whose origin the registry now knows (approved by a
    /// registry change that arrived by any path, or before an interrupted apply could release
    /// them). Runs after every apply and local registry write, and when a sync round or `serve`
    /// starts; costs two indexed reads when nothing is held. Drops held work past its age first
    /// (`expireHeldWork`).
    @discardableResult
    public func releaseHeldWork() throws(SyncNodeError) -> ApplyReport {
        try expireHeldWork()
        let origins = try read { db -> [NodeID] in
            try HeldRow.origins(db).filter { node in try Store.registryEntry(db, node, shared: interns) != nil }
        }
        guard !origins.isEmpty else { return ApplyReport() }
        return try apply(try heldBatch(of: origins), releaseHeld: false)
    }

    /// The clock of the last transaction of `origin` in the log (applied or refused), if any.
    func lastLoggedClock(of origin: NodeID) throws(SyncNodeError) -> Timestamp? {
        try read { db in
            try Int64.fetchOne(
                db.cachedStatement(
                    sql: "SELECT hlc FROM log WHERE origin = (SELECT ix FROM node WHERE id = ?) ORDER BY seq DESC LIMIT 1"),
                arguments: [Data(origin.bytes)]
            ).map { Timestamp(clock: UInt64(bitPattern: $0), node: origin) }
        }
    }

    /// Whether this very copy (bytes and signature) of the transaction is held already.
    func isHeld(_ db: Database, _ item: ReceivedTransaction) throws -> Bool {
        try HeldRow.holds(db, item)
    }

    func heldSeq(_ db: Database, origin: NodeID) throws -> UInt64 {
        let seq = try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT seq FROM vector WHERE origin = ?"), arguments: [Data(origin.bytes)])
        return UInt64(seq ?? 0)
    }

    /// Materialises one received transaction and keeps it in the log. The caller has checked that
    /// it is the next one of its origin, and writes the vector row and removes the transaction
    /// from `held` itself (once per chunk).
    func applyTransaction(_ db: Database, _ t: Transaction, body: [UInt8], signature: [UInt8], _ interner: inout Interner) throws {
        try applyChanges(db, t, &interner)
        try appendToLog(db, t, body: LogBody(body, deflater), signature: signature, refused: nil, &interner)
    }

    /// Writes the transaction's changes into the records and ledgers.
    func applyChanges(_ db: Database, _ t: Transaction, _ interner: inout Interner) throws {
        let ts = Data(t.hlc.bytes)
        var i = t.changes.startIndex
        while i < t.changes.endIndex {
            switch t.changes[i] {
            case .set(let first):
                // Consecutive writes to one record are applied with one read and one write of its row.
                var j = i + 1
                while j < t.changes.endIndex, case .set(let next) = t.changes[j], next.recordID.sameBytes(as: first.recordID),
                    next.collection.sameBytes(as: first.collection)
                {
                    j += 1
                }
                try applyWrites(db, RecordWrites(t.changes[i..<j]), ts: t.hlc, seq: t.seq, &interner)
                i = j
                continue
            case .append(let entry):
                try applyEntry(db, entry, ts: ts, origin: t.origin)
            case .author(let name):
                // Who made it, found by the transaction's clock (every version and entry it wrote carries it).
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO tx_author (node, clock, name) VALUES (?, ?, ?)").execute(
                    arguments: [Data(t.origin.bytes), Int64(bitPattern: t.hlc.clock), name])
            case .unknown:
                // Kept in the log and relayed; a newer node knows what to do with it.
                break
            }
            i += 1
        }
    }

    /// Advances the vector past the transaction (and forgets it as held).
    func advance(_ db: Database, _ t: Transaction) throws {
        try HeldRow.remove(db, t.origin, t.seq)
        try advanceVector(db, origin: t.origin, to: t.seq)
    }

    /// The one vector upsert: the vector holds `seq` of `origin` or more (it never goes back;
    /// only `recoverOwnHistory` sets this node's own entry outright).
    func advanceVector(_ db: Database, origin: NodeID, to seq: UInt64) throws {
        try db.cachedStatement(
            sql: "INSERT INTO vector (origin, seq) VALUES (?, ?) ON CONFLICT(origin) DO UPDATE SET seq = max(seq, excluded.seq)"
        ).execute(arguments: [Data(origin.bytes), Int64(seq)])
    }

    /// Keeps a transaction's exact bytes in the log, deflated when that is smaller.
    func appendToLog(_ db: Database, _ t: Transaction, body: LogBody, signature: [UInt8], refused: String?, _ interner: inout Interner) throws {
        let origin = try interner.nodeIx(t.origin, db)!
        let previous: Data?
        if let last = interner.lastChain[origin], last.seq + 1 == t.seq {
            previous = last.chain
        } else {
            previous = try historyChain(db, origin: origin, seq: t.seq - 1)
        }
        let chain = HistoryChain.link(previous, signature: signature, refused: refused != nil)
        try interner.statements().appendLog(
            origin: origin, seq: t.seq, hlc: t.hlc.clock, body: body.stored, size: body.size,
            signature: signature, refused: refused, received: clock.nowMillis(), chain: chain)
        interner.lastChain[origin] = (t.seq, chain)
    }

    /// The record's live versions, or an empty record.
    func loadRecord(_ db: Database, collection: Int64, recordID: String, _ interner: inout Interner) throws -> StoredRecord? {
        let state: Data?
        if let read = interner.memo?.removeValue(forKey: Interner.RecordKey(collection: collection, recordID: ExactText(recordID))) {
            state = read
        } else {
            state = try interner.statements().state(collection: collection, recordID: recordID)
        }
        guard let state else { return nil }
        return try RecordCodec.decode(state, &interner, db)
    }

    /// Adds versions written by one transaction (clock `ts`) to one record.
    ///
    /// A record's row keeps every *live* version of a field: the heads (versions no held version
    /// replaced) and the winner (the greatest timestamp). A version that stops being live moves to
    /// `field_history`. A replaced timestamp not held yet is remembered in `dangling_ref`, so that
    /// the version arrives as replaced: the result is the same whatever order versions arrive in.
    private func applyWrites(_ db: Database, _ writes: RecordWrites, ts: Timestamp, seq: UInt64, _ interner: inout Interner) throws {
        let collection = try interner.nameIx(writes.first.collection, db)!
        let recordID = writes.first.recordID
        let stored = try loadRecord(db, collection: collection, recordID: recordID, &interner)
        let node = try interner.nodeIx(ts.node, db)!
        if stored == nil, writes.allSatisfy({ $0.base == nil && $0.resolves.isEmpty }) {
            // A record this transaction creates: its state is its writes (the common case of
            // local entry and of a first sync), packed without building the record.
            var fields: [(name: Int64, value: Value)] = []
            fields.reserveCapacity(writes.changes.count)
            for w in writes { fields.append((try interner.nameIx(w.field, db)!, w.value)) }
            fields.sort { $0.name < $1.name }
            // A field written twice (a malformed transaction whose check runs concurrently, see
            // `Sealing`) takes the general path, which refuses it.
            if zip(fields, fields.dropFirst()).allSatisfy({ $0.name != $1.name }) {
                let state = RecordCodec.encodeFresh(fields, clock: ts.clock, node: node, seq: seq)
                try interner.statements().writeRecord(collection: collection, recordID: recordID, state: state, conflicts: 0, exists: false)
                return
            }
        }
        var record = stored ?? StoredRecord()
        let clock = Int64(bitPattern: ts.clock)
        var resolvedDangling = false
        for w in writes {
            let field = try interner.nameIx(w.field, db)!
            var replaced = false
            if record.hasDanglingRefs {
                try db.cachedStatement(
                    sql: "DELETE FROM dangling_ref WHERE collection = ? AND record_id = ? AND field = ? AND clock = ? AND node = ?"
                ).execute(arguments: [collection, recordID, field, clock, node])
                replaced = db.changesCount > 0
                resolvedDangling = resolvedDangling || replaced
            }
            guard
                let step = MergeRule.add(
                    ts: ts, seq: seq, value: w.value, replacing: (w.base.map { [$0] } ?? []) + w.resolves, alreadyReplaced: replaced,
                    to: record.fields[field] ?? [])
            else { throw duplicateClock(w, ts: ts, seq: seq) }
            for old in step.notLive {
                let oldArgs: StatementArguments = [collection, recordID, field, Int64(bitPattern: old.clock), try interner.nodeIx(old.node, db)!]
                let inHistory =
                    try Bool.fetchOne(
                        db.cachedStatement(
                            sql: "SELECT 1 FROM field_history WHERE collection = ? AND record_id = ? AND field = ? AND clock = ? AND node = ?"),
                        arguments: oldArgs) ?? false
                if !inHistory {
                    try db.cachedStatement(
                        sql: "INSERT OR IGNORE INTO dangling_ref (collection, record_id, field, clock, node) VALUES (?, ?, ?, ?, ?)"
                    ).execute(arguments: oldArgs)
                    record.hasDanglingRefs = true
                }
            }
            for v in step.retired {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO field_history (collection, record_id, field, clock, node, seq, value) VALUES (?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT DO NOTHING
                        """
                ).execute(arguments: [
                    collection, recordID, field, Int64(bitPattern: v.ts.clock), try interner.nodeIx(v.ts.node, db)!, Int64(v.seq),
                    v.value.databaseValue,
                ])
                if db.changesCount != 1 { throw duplicateClock(w, ts: v.ts, seq: v.seq) }
            }
            record.fields[field] = step.live
        }
        if resolvedDangling {
            record.hasDanglingRefs =
                try Bool.fetchOne(
                    db.cachedStatement(sql: "SELECT 1 FROM dangling_ref WHERE collection = ? AND record_id = ? LIMIT 1"),
                    arguments: [collection, recordID]) ?? false
        }
        let state = try RecordCodec.encode(record, &interner, db)
        try interner.statements().writeRecord(
            collection: collection, recordID: recordID, state: state, conflicts: record.conflictCount, exists: stored != nil)
    }

    /// An honest origin never issues the same clock twice: this is a faulty or forged transaction,
    /// not a storage failure.
    private func duplicateClock(_ w: FieldWrite, ts: Timestamp, seq: UInt64) -> SyncNodeError {
        SyncNodeError(
            .protocolViolation,
            "transaction \(ts.node.short)/\(seq) writes \(w.collection)/\(w.recordID).\(w.field) with the clock of another transaction of its origin; nothing of it was applied"
        )
    }

    private func applyEntry(_ db: Database, _ e: LedgerEntry, ts: Data, origin: NodeID) throws {
        let fields = try LedgerJSON.encode(e.fields)
        let key: StatementArguments = [e.ledger, e.entryID, Data(origin.bytes)]
        try db.cachedStatement(
            sql: "INSERT INTO ledger_entry (ledger, entry_id, origin, ts, fields) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        ).execute(arguments: key + [ts, fields])
        guard db.changesCount == 0 else { return }
        // The origin used this id before (only a faulty origin does). Entries are immutable: the
        // earlier write stays, on every replica; the other is kept for review.
        let existing = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT ts, fields FROM ledger_entry WHERE ledger = ? AND entry_id = ? AND origin = ?"), arguments: key)!
        let existingTs: Data = existing["ts"]
        if let a = Timestamp(bytes: existingTs), let b = Timestamp(bytes: ts), !LedgerRule.keeps(existing: a, over: b) {
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO ledger_duplicate (ledger, entry_id, ts, fields) VALUES (?, ?, ?, ?)")
                .execute(arguments: [e.ledger, e.entryID, existingTs, existing["fields"] as String])
            try db.cachedStatement(sql: "UPDATE ledger_entry SET ts = ?, fields = ? WHERE ledger = ? AND entry_id = ? AND origin = ?")
                .execute(arguments: [ts, fields] + key)
        } else {
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO ledger_duplicate (ledger, entry_id, ts, fields) VALUES (?, ?, ?, ?)")
                .execute(arguments: [e.ledger, e.entryID, ts, fields])
        }
    }
}

extension NodeID {
    /// 16 big-endian bytes.
    public var bytes: [UInt8] {
        [high, low].flatMap { word in stride(from: 56, through: 0, by: -8).map { UInt8(truncatingIfNeeded: word >> UInt64($0)) } }
    }

    init?(bytes: Data) {
        guard bytes.count == 16 else { return nil }
        let b = Array(bytes)
        self.init(high: b[0..<8].reduce(0) { $0 << 8 | UInt64($1) }, low: b[8..<16].reduce(0) { $0 << 8 | UInt64($1) })
    }
}

extension Value {
    var databaseValue: DatabaseValue {
        switch self {
        case .null: return .null
        case .int(let i): return i.databaseValue
        case .real(let d): return d.databaseValue
        case .text(let s): return s.databaseValue
        }
    }

    init(_ dbValue: DatabaseValue) {
        switch dbValue.storage {
        case .null: self = .null
        case .int64(let i): self = .int(i)
        case .double(let d): self = .real(d)
        case .string(let s): self = .text(s)
        case .blob(let b): self = .text(String(decoding: b, as: UTF8.self))
        }
    }
}

/// Ledger entry fields as stored: canonical JSON text.
enum LedgerJSON {
    static func encode(_ fields: [String: Value]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(fields), as: UTF8.self)
    }

    static func decode(_ text: String) -> [String: Value] {
        (try? JSONDecoder().decode([String: Value].self, from: Data(text.utf8))) ?? [:]
    }
}

/// The consecutive field writes of one transaction to one record, read in place.
struct RecordWrites: Sequence {
    let changes: ArraySlice<Change>

    /// - Precondition: `changes` is not empty and holds only writes (`.set`).
    init(_ changes: ArraySlice<Change>) { self.changes = changes }

    var first: FieldWrite { Self.write(changes[changes.startIndex]) }

    func makeIterator() -> LazyMapSequence<ArraySlice<Change>, FieldWrite>.Iterator { changes.lazy.map(Self.write).makeIterator() }

    private static func write(_ change: Change) -> FieldWrite {
        guard case .set(let w) = change else { preconditionFailure("a record's writes hold only writes") }
        return w
    }
}

/// One chunk of a received batch, inside the one SQLite transaction that applies it: each
/// transaction in order is taken, held, refused or turned away, and the vector and clock are
/// written once at the end.
struct ChunkApply {
    /// Origins whose later transactions in the batch must wait: one is held (keep the order) or
    /// was turned away (the rest waits for the next sync). Carried from chunk to chunk.
    struct Origins {
        var held = Set<NodeID>()
        var blocked = Set<NodeID>()
    }

    let store: Store
    let db: Database
    let via: NodeID?
    let source: String
    let now: UInt64
    var origins: Origins
    var part = ApplyReport()
    var hlc: HybridClock
    var context: TrustContext
    /// Per origin, the seq held so far; the vector rows are written once, at the end.
    var seqs: [NodeID: UInt64] = [:]
    var advanced = Set<NodeID>()
    var anyHeld: Bool
    var quota: HoldQuota?

    init(store: Store, db: Database, via: NodeID?, source: String, now: UInt64, origins: Origins) throws {
        self.store = store
        self.db = db
        self.via = via
        self.source = source
        self.now = now
        self.origins = origins
        hlc = try store.loadClock(db)
        context = try TrustContext(db, shared: store.interns)
        anyHeld = try HeldRow.any(db)
    }

    private var label: String { store.info.label }

    mutating func take(_ item: ReceivedTransaction, _ interner: inout Interner) throws {
        let t = item.transaction
        var held = try heldSeq(t.origin)
        if t.seq <= held {
            // A number held here: the same transaction again, or another one its origin signed
            // under the same number (a fork of its history).
            guard try examine(item, &interner) else { return }
            held = t.seq - 1
        }
        if origins.blocked.contains(t.origin) {
            // An earlier copy of this origin was turned away: the rest waits for the next sync.
            return
        }
        if origins.held.contains(t.origin) {
            // An earlier transaction of this origin is held: keep the order.
            _ = try holdIfRoom(item)
            return
        }
        guard t.seq == held + 1 else {
            // The next of an origin whose earlier transactions wait in `held` waits too.
            let lastHeld = try HeldRow.lastSeq(db, of: t.origin)
            guard lastHeld == Int64(t.seq) - 1 else {
                throw SyncNodeError(.protocolViolation, "transaction \(t.origin.short)/\(t.seq) arrived out of order; retry the sync")
            }
            if try holdIfRoom(item) { origins.held.insert(t.origin) }
            return
        }
        guard try judged(item, &interner) else { return }
        try store.applyTransaction(db, t, body: item.body, signature: item.signature, &interner)
        if anyHeld { try HeldRow.remove(db, t.origin, t.seq) }
        seqs[t.origin] = t.seq
        advanced.insert(t.origin)
        if t.touchesTrustData {
            context = try TrustContext(db, shared: store.interns)
            part.trustChanged = true
            part.refused += try store.enforceRevocations(db, touched: t, &interner)
        }
        try? hlc.observe(remote: t.hlc, now: now)
        part.applied += 1
        part.bytes += item.body.count
        part.heldUpTo[t.origin] = t.seq
    }

    /// The vector rows and the clock, once per chunk.
    mutating func finish() throws -> ApplyReport {
        for origin in advanced { try store.advanceVector(db, origin: origin, to: seqs[origin]!) }
        try store.saveClock(db, hlc)
        return part
    }

    private mutating func heldSeq(_ origin: NodeID) throws -> UInt64 {
        if let known = seqs[origin] { return known }
        let held = try store.heldSeq(db, origin: origin)
        seqs[origin] = held
        return held
    }

    /// A copy under a number held here: true when this node gave up its own history there for
    /// HQ's (the copy is then taken as the next), false when the copy is done with.
    private mutating func examine(_ item: ReceivedTransaction, _ interner: inout Interner) throws -> Bool {
        let t = item.transaction
        switch try store.examineHeldCopy(db, item, via: via, source: source, &context, &interner) {
        case .same:
            part.duplicates += 1
        case .verdictTaken:
            part.verdictsTaken += 1
            part.trustChanged = true
            context = try TrustContext(db, shared: store.interns)
        case .forged(let reason):
            part.refused.append(Refusal(origin: t.origin, seq: t.seq, reason: reason, refusedBy: label, permanent: false))
        case .fork:
            part.forks += 1
            part.duplicates += 1
        case .switched:
            // HQ keeps the other history: this node's went back before it.
            part.forks += 1
            part.trustChanged = true
            seqs[t.origin] = t.seq - 1
            advanced.insert(t.origin)
            return true
        }
        return false
    }

    /// The registry's and the policy's word on the next transaction of its origin: true when it
    /// is to be applied; otherwise it is held, refused (recorded against its origin) or turned
    /// away (said to the sender only).
    private mutating func judged(_ item: ReceivedTransaction, _ interner: inout Interner) throws -> Bool {
        let t = item.transaction
        switch try store.judge(db, item, &context) {
        case .accept:
            return true
        case .hold:
            if try holdIfRoom(item) { origins.held.insert(t.origin) }
        case .refuse(let reason):
            try store.recordRefusal(db, item, reason: reason, refusedBy: label, &interner)
            seqs[t.origin] = t.seq
            part.refused.append(Refusal(origin: t.origin, seq: t.seq, reason: reason, refusedBy: label))
            part.heldUpTo[t.origin] = t.seq
        case .reject(let reason):
            // Said to the sender only: a bad copy says nothing about its origin's work, so it
            // is not listed against the origin (anyone can make one).
            part.refused.append(Refusal(origin: t.origin, seq: t.seq, reason: reason, refusedBy: label, permanent: false))
            origins.blocked.insert(t.origin)
            if anyHeld {
                // A held copy that turns out forged, and what was held after it, go: the
                // genuine ones must be asked for again.
                try HeldRow.remove(db, t.origin, from: t.seq)
            }
        }
        return false
    }

    /// Holds `item` if the sender's share of `held` allows, else turns it away for now.
    private mutating func holdIfRoom(_ item: ReceivedTransaction) throws -> Bool {
        if anyHeld, try store.isHeld(db, item) {
            // Offered again (a sender offers what this node's vector lacks): it keeps its sender
            // and its arrival time, from which its age counts, and is not counted against the
            // sender's share a second time.
            part.held += 1
            return true
        }
        if quota == nil { quota = try HoldQuota(db, via: via, limits: store.limits) }
        if let full = quota!.refusal(for: item) {
            part.refused.append(
                Refusal(origin: item.transaction.origin, seq: item.transaction.seq, reason: full, refusedBy: label, permanent: false))
            origins.blocked.insert(item.transaction.origin)
            return false
        }
        anyHeld = true
        try store.hold(db, item, via: via)
        part.held += 1
        return true
    }
}
