import Foundation
import GRDB
import SyncProtocol

/// One thing a user asks the node to record.
public enum Intent: Sendable, Equatable {
    /// Set fields of a record (creating it, or bringing it back if it was deleted).
    case put(collection: String, recordID: String, fields: [FieldAssignment])
    /// Mark a record deleted (a later write can bring it back).
    case delete(collection: String, recordID: String)
    /// Append an immutable ledger entry; a nil id gets a fresh random one.
    case append(ledger: String, entryID: String?, fields: [FieldAssignment])
    /// Resolve a field's conflict: write `value` (or keep the winning value) replacing every version.
    case resolve(collection: String, recordID: String, field: String, value: Value?)
    /// (HQ) Enter a node in the registry with its public key, site and role.
    case approve(node: NodeID, key: PublicKeyText, site: String, role: Role, label: String)
    /// (HQ) Revoke a node: its transactions made from now on are refused everywhere.
    case revoke(node: NodeID)
    /// Record again the changes of a withdrawn transaction of this node (see `recoverOwnHistory`),
    /// each write keeping the version it replaced (so work that was concurrent with another edit
    /// stays a conflict for review, rather than silently winning with its new clock).
    case reissue([Change])
}

/// `field = value`, in the order the user gave them.
public struct FieldAssignment: Sendable, Equatable {
    public var field: String
    public var value: Value

    public init(_ field: String, _ value: Value) {
        self.field = field
        self.value = value
    }
}

extension Store {
    /// Who is recording, for the transactions this task commits: the web user of a request, or
    /// the OS user of a command (`syncnode` sets it). Nil: the transaction names no author.
    @TaskLocal public static var author: String?

    /// The key of the submission this task records (a web form's, made when the form was shown):
    /// a second write with the same key records nothing and throws `alreadyRecorded` with the
    /// first one's transaction. Checked and kept in the same SQLite transaction as the write, so
    /// a retry after a lost answer, a double click or a crash in between never records twice.
    @TaskLocal public static var submissionKey: String?

    /// `name` as an author's name: control characters dropped, at most `Names.maxAuthorBytes`.
    static func authorName(_ name: String) -> String {
        var out = ""
        for c in name where !c.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            guard out.utf8.count + c.utf8.count <= Names.maxAuthorBytes else { break }
            out.append(c)
        }
        return out.isEmpty ? "?" : out
    }

    /// Who made the transactions of these clocks, where they name one.
    public func authors(of clocks: some Sequence<Timestamp>) throws(SyncNodeError) -> [Timestamp: String] {
        let wanted = Set(clocks)
        return try read { db in
            var out: [Timestamp: String] = [:]
            guard !wanted.isEmpty, try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM tx_author)") == true else { return out }
            if wanted.count > 2_000 {
                // Many clocks (a long review): one pass over the table beats a seek each.
                let rows = try Row.fetchCursor(db, sql: "SELECT node, clock, name FROM tx_author")
                while let row = try rows.next() {
                    guard let node = NodeID(bytes: row["node"] as Data) else { continue }
                    let clock = UInt64(bitPattern: row["clock"] as Int64)
                    let ts = Timestamp(millis: clock >> 16, counter: UInt16(truncatingIfNeeded: clock), node: node)
                    if wanted.contains(ts) { out[ts] = row["name"] }
                }
                return out
            }
            let statement = try db.cachedStatement(sql: "SELECT name FROM tx_author WHERE node = ? AND clock = ?")
            for ts in wanted {
                if let name = try String.fetchOne(statement, arguments: [Data(ts.node.bytes), Int64(bitPattern: ts.clock)]) { out[ts] = name }
            }
            return out
        }
    }

    /// Records the intents as one transaction: materialised state, field history, one log entry,
    /// the advanced vector and the clock's high-water mark, all in one SQLite transaction.
    ///
    /// - Returns: the transaction, as it will be sent to other nodes.
    /// - Throws: `invalidInput` for bad names or values, `notFound` for deleting a missing record
    ///   or resolving a field without conflict; storage errors. Nothing is written on error.
    /// Answers a submission whose key (`submissionKey`) was recorded already with that first
    /// transaction (`alreadyRecorded`), before any check of its content: a resend after a lost
    /// answer is judged against a replica that already holds it, and would otherwise be refused
    /// ("exists already", "paid beyond the allocation") or, confirmed, recorded twice. `commit`
    /// looks again inside its write, for two sends at once.
    public func refuseRecordedSubmission() throws(SyncNodeError) {
        guard let key = Self.submissionKey.map({ String($0.prefix(128)) }) else { return }
        try read { db in try Self.refuseRecorded(key, db) }
    }

    private static func refuseRecorded(_ key: String, _ db: Database) throws {
        guard let seq = try Int64.fetchOne(db, sql: "SELECT seq FROM submission_key WHERE key = ?", arguments: [key]) else { return }
        var error = SyncNodeError(.alreadyRecorded, "this submission was recorded already, as transaction \(seq); nothing was recorded again")
        error.recordedSeq = UInt64(seq)
        throw error
    }

    @discardableResult
    public func commit(_ intents: [Intent]) throws(SyncNodeError) -> Transaction {
        guard !intents.isEmpty else { throw .invalid("nothing to record") }
        let now = clock.nowMillis()
        let key = Self.submissionKey.map { String($0.prefix(128)) }
        let transaction = try writeInterned { db, interner in
            if let key { try Self.refuseRecorded(key, db) }
            let t = try record(db, intents, now: now, &interner)
            if let key {
                try db.execute(
                    sql: "INSERT INTO submission_key (key, seq, at) VALUES (?, ?, ?)", arguments: [key, Int64(t.seq), Int64(clamping: now)])
            }
            return t
        }
        if transaction.touchesTrustData {
            // An approval may be what held transactions were waiting for.
            try releaseHeldWork()
        }
        return transaction
    }

    /// Records `intents` as one transaction of this node inside the caller's SQLite transaction
    /// (see `commit`); `interner` holds that transaction's statements.
    func record(_ db: Database, _ intents: [Intent], now: UInt64, _ interner: inout Interner) throws -> Transaction {
        interner.memo = [:]
        var hlc = try loadClock(db)
        let ts: Timestamp
        do {
            ts = try hlc.tick(now: now)
        } catch {
            throw SyncNodeError(.clockSkew, "\(error)")
        }
        let seq = try heldSeq(db, origin: info.nodeID) + 1
        var changes: [Change] = []
        var checked = CheckedNames()
        for intent in intents {
            try self.changes(for: intent, in: db, into: &changes, &checked, &interner)
        }
        // Who made it (a reissued transaction keeps the author it had).
        if let author = Self.author, !changes.contains(where: { if case .author = $0 { true } else { false } }) {
            changes.append(.author(Self.authorName(author)))
        }
        let transaction = Transaction(origin: info.nodeID, seq: seq, hlc: ts, changes: changes)
        // The check in `problem()` says the same, but only after the records are written
        // when the transaction is sealed in the background: refuse it before anything is.
        if changes.count > Transaction.maxChanges {
            throw SyncNodeError.invalid("a transaction holds at most \(Transaction.maxChanges) changes; record this work in several")
        }
        // Checking, encoding, signing and deflating need only the transaction: for a large
        // one they run on another core while this one writes the records. A problem found
        // there undoes the writes (the SQLite transaction is rolled back). A small one is
        // sealed first, and nothing is written if it has a problem.
        let sealing = Sealing(transaction, store: self, inBackground: changes.count >= Sealing.backgroundChanges)
        if !sealing.inBackground, let problem = sealing.result().problem { throw SyncNodeError.invalid(problem) }
        do {
            try checkLocal(db, transaction)
            try applyChanges(db, transaction, &interner)
        } catch {
            if let problem = sealing.result().problem { throw SyncNodeError.invalid(problem) }
            throw error
        }
        let sealed = sealing.result()
        if let problem = sealed.problem { throw SyncNodeError.invalid(problem) }
        try appendToLog(db, transaction, body: sealed.logBody, signature: sealed.signature, refused: nil, &interner)
        try advance(db, transaction)
        try saveClock(db, hlc)
        return transaction
    }

    private func changes(
        for intent: Intent, in db: Database, into out: inout [Change], _ checked: inout CheckedNames, _ interner: inout Interner
    ) throws {
        guard case .put(let collection, let recordID, let fields) = intent else {
            out += try changes(for: intent, in: db, &interner)
            return
        }
        try checked.check(collection, what: "collection name")
        if let p = Names.problem(with: recordID, what: "record id") { throw SyncNodeError.invalid(p) }
        guard !fields.isEmpty else { throw SyncNodeError.invalid("give at least one FIELD=VALUE to record") }
        // One read of the record gives every field's base and whether it is deleted.
        let winners = try winningVersions(db, collection: collection, recordID: recordID, &interner)
        for assignment in fields {
            try checked.check(assignment.field, what: "field name")
            out.append(.set(try write(collection, recordID, assignment.field, assignment.value, base: winners[assignment.field]?.ts)))
        }
        if RecordRule.isDeleted(winners: winners) {
            out.append(.set(try write(collection, recordID, Names.deletedField, .int(0), base: winners[Names.deletedField]?.ts)))
        }
    }

    /// The changes of an intent other than `put` (which `changes(for:in:into:_:)` writes in place).
    private func changes(for intent: Intent, in db: Database, _ interner: inout Interner) throws -> [Change] {
        switch intent {
        case .put:
            var out: [Change] = []
            var checked = CheckedNames()
            try changes(for: intent, in: db, into: &out, &checked, &interner)
            return out
        case .delete(let collection, let recordID):
            try checkRecordNames(collection, recordID)
            let winners = try winningVersions(db, collection: collection, recordID: recordID, &interner)
            guard !winners.isEmpty, !RecordRule.isDeleted(winners: winners) else {
                throw SyncNodeError(.notFound, "no record \(collection)/\(recordID) to delete")
            }
            return [.set(try write(collection, recordID, Names.deletedField, .int(1), base: winners[Names.deletedField]?.ts))]
        case .append(let ledger, let entryID, let fields):
            if let p = Names.problem(with: ledger, what: "ledger name") { throw SyncNodeError.invalid(p) }
            let id = entryID ?? UUID().uuidString.lowercased()
            if let p = Names.problem(with: id, what: "entry id") { throw SyncNodeError.invalid(p) }
            var map: [String: Value] = [:]
            for assignment in fields {
                if let p = Names.problem(with: assignment.field, what: "field name", allowReserved: Names.isReservedEntryField(assignment.field)) {
                    throw SyncNodeError.invalid(p)
                }
                guard map.updateValue(assignment.value, forKey: assignment.field) == nil else {
                    throw SyncNodeError.invalid("field '\(assignment.field)' is given twice")
                }
            }
            guard !map.isEmpty else { throw SyncNodeError.invalid("give at least one FIELD=VALUE for the ledger entry") }
            if let target = LedgerEntry(ledger: ledger, entryID: id, fields: map).reverses {
                map = try reversalFields(db, ledger: ledger, entryID: id, target: target, given: map)
            }
            if entryID != nil {
                let taken =
                    try Bool.fetchOne(
                        db.cachedStatement(sql: "SELECT 1 FROM ledger_entry WHERE ledger = ? AND entry_id = ? AND origin = ?"),
                        arguments: [ledger, id, Data(info.nodeID.bytes)]) ?? false
                if taken {
                    throw SyncNodeError.invalid("ledger \(ledger) already has an entry \(id); entries never change, append a reversal instead")
                }
            }
            return [.append(LedgerEntry(ledger: ledger, entryID: id, fields: map))]
        case .approve, .revoke:
            return try registryChanges(db, for: intent, &interner)
        case .reissue(let changes):
            return changes
        case .resolve(let collection, let recordID, let field, let value):
            let live = try liveVersions(db, collection: collection, recordID: recordID, field: field, &interner)
            guard let winner = MergeRule.winner(live), MergeRule.isConflicted(live) else {
                throw SyncNodeError(.notFound, "field \(collection)/\(recordID).\(field) has no conflict to resolve")
            }
            // The resolution replaces every head it saw, including concurrent writes of the same value.
            let others = live.filter { $0.isHead && $0.ts != winner.ts }.map(\.ts)
            return [
                .set(
                    FieldWrite(
                        collection: collection, recordID: recordID, field: field, value: value ?? winner.value, base: winner.ts,
                        resolves: others))
            ]
        }
    }

    /// The fields of a reversal of `target`: the county and the opposite numbers of the entry it
    /// cancels, filled in where not given. Throws when the entry does not exist, is already
    /// reversed, or the given fields do not cancel it (`LedgerRule.reversals`, which every replica
    /// applies when it counts totals).
    private func reversalFields(_ db: Database, ledger: String, entryID: String, target: String, given: [String: Value]) throws -> [String: Value] {
        let rows = try Row.fetchAll(
            db.cachedStatement(
                sql: "SELECT entry_id, ts, fields FROM ledger_entry WHERE ledger = ? AND (entry_id = ? OR json_extract(fields, '$._reverses') = ?)"),
            arguments: [ledger, target, target])
        var entries = rows.map { row in
            LedgerRule.Entry(entryID: row["entry_id"], ts: Timestamp(bytes: row["ts"] as Data)!, fields: LedgerJSON.decode(row["fields"]))
        }
        let candidates = entries.filter { $0.entryID == target && !$0.isReversal }
        guard let first = candidates.min(by: { $0.ts < $1.ts }) else {
            throw SyncNodeError(.notFound, "no entry \(target) in ledger \(ledger) to reverse").next(.listLedger(ledger))
        }
        var fields = given
        let counties = Set(candidates.compactMap { $0.county?.description })
        if fields["county"] == nil && counties.count > 1 {
            throw SyncNodeError.invalid(
                "ledger \(ledger) has entries \(target) of several counties (\(counties.sorted().joined(separator: ", "))); say which one this reverses with county=…"
            )
        }
        let pinned = LedgerRule.Entry(entryID: entryID, ts: first.ts, fields: fields).reversesOrigin
        let matching = candidates.filter { c in
            (fields["county"] == nil || c.county == fields["county"]) && (pinned == nil || c.origin == pinned)
        }
        if matching.count > 1 {
            throw SyncNodeError.invalid(
                "ledger \(ledger) has entries \(target) of several nodes (\(matching.map(\.origin.hex).joined(separator: ", "))); say which one this reverses with \(Names.reversesOriginField)=NODE"
            )
        }
        let original = matching.first ?? first
        if fields["county"] == nil, let county = original.county { fields["county"] = county }
        // Pin the entry by its origin: another node using the same id, even with an earlier
        // clock, cannot become the entry this reversal cancels.
        if fields[Names.reversesOriginField] == nil { fields[Names.reversesOriginField] = .text(original.origin.hex) }
        if !fields.values.contains(where: { if case .text = $0 { false } else { $0 != .null } }) {
            for (name, value) in original.fields where !Names.isReservedEntryField(name) {
                switch value {
                case .int(let i): fields[name] = .int(-i)
                case .real(let d): fields[name] = .real(-d)
                default: continue
                }
            }
        }
        let mine = LedgerRule.Entry(entryID: entryID, ts: Timestamp(millis: .max >> 16, counter: .max, node: info.nodeID), fields: fields)
        entries.append(mine)
        if case .invalid(let why)? = LedgerRule.reversals(entries)[entries.count - 1] {
            throw SyncNodeError.invalid("this reversal would cancel nothing: \(why); nothing was written")
        }
        return fields
    }

    private func registryChanges(_ db: Database, for intent: Intent, _ interner: inout Interner) throws -> [Change] {
        let collection = PolicyRules.registryCollection
        switch intent {
        case .approve(let node, let publicKey, let site, let role, let label):
            if let p = Names.problem(with: site, what: "site") ?? Names.problem(with: label, what: "label") { throw SyncNodeError.invalid(p) }
            // Replicas that enforced the revocation refused its later work; approving the node
            // again would make others accept that same work. A new identity is clean.
            if try Self.registryEntry(db, node)?.revokedAt != nil {
                throw SyncNodeError(
                    .forbidden, "node \(node.hex) was revoked and cannot be approved again; enrol the site as a new node"
                ).next(.enrolAnew)
            }
            let fields: [(String, Value)] = [
                ("public_key", .text(publicKey.hex)), ("site", .text(site)), ("role", .text(role.rawValue)), ("label", .text(label)),
                ("revoked", .int(0)),
            ]
            let winners = try winningVersions(db, collection: collection, recordID: node.hex, &interner)
            return try fields.map { name, value in .set(try write(collection, node.hex, name, value, base: winners[name]?.ts)) }
        case .revoke(let node):
            guard try Self.registryEntry(db, node) != nil else {
                throw SyncNodeError(.notFound, "node \(node.hex) is not in the registry").next(.listNodes)
            }
            // The cut is the last transaction of the node this node (HQ) accepted: something the
            // revoked node cannot choose, unlike the clocks it writes. Every receiver refuses what
            // the node made after it, and undoes it where it was applied before the news arrived.
            let winners = try winningVersions(db, collection: collection, recordID: node.hex, &interner)
            let cut = try heldSeq(db, origin: node)
            return [
                .set(try write(collection, node.hex, "revoked", .int(1), base: winners["revoked"]?.ts)),
                .set(try write(collection, node.hex, RegistryEntry.cutField, .int(Int64(cut)), base: winners[RegistryEntry.cutField]?.ts)),
            ]
        default:
            return []
        }
    }

    private func checkRecordNames(_ collection: String, _ recordID: String) throws {
        if let p = Names.problem(with: collection, what: "collection name") ?? Names.problem(with: recordID, what: "record id") {
            throw SyncNodeError.invalid(p)
        }
    }

    private func write(_ collection: String, _ recordID: String, _ field: String, _ value: Value, base: Timestamp?) throws -> FieldWrite {
        if value.byteCount > limits.maxValueBytes {
            throw SyncNodeError.invalid(
                "the value of \(field) is \(value.byteCount) bytes; the limit is \(limits.maxValueBytes). Store large documents elsewhere and record a reference"
            )
        }
        return FieldWrite(collection: collection, recordID: recordID, field: field, value: value, base: base)
    }
}

/// User-given collection and field names found acceptable so far in one commit: a batch of puts
/// repeats one collection and a few field names, which are then checked once. (Record ids are
/// checked every time; reserved names are refused here, as for any user-given name.)
struct CheckedNames {
    private var names: [String] = []

    mutating func check(_ name: String, what: String) throws(SyncNodeError) {
        if names.contains(where: { $0.sameBytes(as: name) }) { return }
        if let p = Names.problem(with: name, what: what) { throw SyncNodeError.invalid(p) }
        if names.count < 32 { names.append(name) }
    }
}

/// What makes a local transaction ready for the log: its check, its bytes, its signature and the
/// deflated form the log keeps. Large transactions are sealed on another thread while the caller
/// writes the records; `result()` waits for it.
final class Sealing: @unchecked Sendable {
    struct Sealed: Sendable {
        var problem: String?
        var signature: [UInt8] = []
        var logBody = LogBody.empty
    }

    /// Fewer changes than this are sealed in place: handing them over would cost more than it saves.
    static let backgroundChanges = 256

    private var sealed: Sealed?
    private let done: DispatchSemaphore?
    var inBackground: Bool { done != nil }

    init(_ transaction: Transaction, store: Store, inBackground: Bool) {
        let work = { @Sendable () -> Sealed in
            if let problem = transaction.problem(maxValueBytes: store.limits.maxValueBytes) { return Sealed(problem: problem) }
            let body = WireCodec.encode(transaction)
            return Sealed(signature: store.key.sign(SigningPayload.transaction(body)), logBody: LogBody(body, store.deflater))
        }
        guard inBackground else {
            sealed = work()
            done = nil
            return
        }
        let done = DispatchSemaphore(value: 0)
        self.done = done
        // A thread of its own, not a Dispatch queue: the caller blocks on it while holding the
        // write, and the global queues run only as many blocked items at once as there are cores.
        let thread = Thread {
            self.sealed = work()
            done.signal()
        }
        thread.qualityOfService = .userInitiated
        thread.start()
    }

    /// The sealed transaction, once ready. Call it before the work's inputs go away, and on every
    /// path (also errors), so the thread never outlives the write.
    func result() -> Sealed {
        if let done {
            done.wait()
            done.signal()  // later calls return at once
        }
        return sealed!
    }
}
