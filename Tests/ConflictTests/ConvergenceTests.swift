import Foundation
import SyncNode
import SyncProtocol
import Testing

/// Seeded random scripts on 2–5 real stores: local puts, deletes, ledger appends and resolutions,
/// with wall clocks that advance, stall and go back, interleaved with partial exchanges between
/// random pairs. After a full exchange every replica must hold the same state, and that state must
/// be what the pure rules (`FieldRegister`, `RecordRule`, `LedgerRule`) say.
///
/// `CONVERGENCE_SEED=n` runs one seed; `CONVERGENCE_SEEDS=n` runs seeds 1...n (default 500).
/// Node ids are random per store, so a seed reproduces the script exactly and the tie-breaks
/// between nodes up to the order of their ids.
@Suite("Convergence of real stores")
struct ConvergenceTests {
    static let defaultSeeds: UInt64 = 500

    static var seeds: [UInt64] {
        let env = ProcessInfo.processInfo.environment
        if let one = env["CONVERGENCE_SEED"].flatMap({ UInt64($0) }) { return [one] }
        let count = env["CONVERGENCE_SEEDS"].flatMap { UInt64($0) } ?? defaultSeeds
        return Array(1...max(1, count))
    }

    @Test func randomScriptsConvergeToIdenticalStateConflictsAndLedgers() async {
        let seeds = Self.seeds
        let width = max(2, ProcessInfo.processInfo.activeProcessorCount)
        var totals = ScriptStats()
        await withTaskGroup(of: (UInt64, [String], ScriptStats).self) { group in
            var next = seeds.makeIterator()
            func start() -> Bool {
                guard let seed = next.next() else { return false }
                group.addTask { ConvergenceScript.run(seed: seed) }
                return true
            }
            for _ in 0..<width where !start() { break }
            while let result = await group.next() {
                let (seed, problems, stats) = result
                #expect(problems.isEmpty, "seed \(seed) (rerun with CONVERGENCE_SEED=\(seed)): \(problems.joined(separator: "\n"))")
                totals.add(stats)
                _ = start()
            }
        }
        print("convergence stats over \(seeds.count) seeds: \(totals)")
        // The scripts must actually exercise the interesting cases, or convergence proves little.
        if seeds.count >= 100 {
            #expect(totals.conflictsSeen > seeds.count / 4, "\(totals)")
            #expect(totals.resolutions > 0, "\(totals)")
            #expect(totals.deletedRecords > 0, "\(totals)")
            #expect(totals.sharedEntryIDs > 0, "\(totals)")
            #expect(totals.partialExchanges > 0, "\(totals)")
        }
    }
}

struct ScriptStats: CustomStringConvertible {
    var commits = 0
    /// Every commit the script was told succeeded, as the store returned it: the model the final
    /// state is checked against (not any replica's own log).
    var acknowledged: [Transaction] = []
    var refused = 0
    var partialExchanges = 0
    var resolutions = 0
    var conflictsSeen = 0
    var deletedRecords = 0
    var ledgerDuplicates = 0
    /// Entry ids used by two origins in one ledger: kept as two entries (`LedgerRule`).
    var sharedEntryIDs = 0

    mutating func add(_ o: ScriptStats) {
        commits += o.commits
        refused += o.refused
        partialExchanges += o.partialExchanges
        resolutions += o.resolutions
        conflictsSeen += o.conflictsSeen
        deletedRecords += o.deletedRecords
        ledgerDuplicates += o.ledgerDuplicates
        sharedEntryIDs += o.sharedEntryIDs
    }

    var description: String {
        "commits \(commits), refused \(refused), partial exchanges \(partialExchanges), resolutions \(resolutions), "
            + "final conflicts \(conflictsSeen), deleted records \(deletedRecords), ledger duplicates \(ledgerDuplicates), "
            + "entry ids shared by origins \(sharedEntryIDs)"
    }
}

enum ConvergenceScript {
    static let collection = "c"
    static let recordIDs = ["r0", "r1", "r2"]
    static let fieldNames = ["a", "b"]
    static let ledgers = ["cash", "stock"]
    static let sharedEntryIDs = ["e0", "e1", "e2"]
    static let startMillis: UInt64 = 1_700_000_000_000

    /// Runs one seed; returns what went wrong (empty when the replicas converged correctly).
    static func run(seed: UInt64) -> (UInt64, [String], ScriptStats) {
        var rng = SplitMix64(seed: seed)
        var stats = ScriptStats()
        var problems: [String] = []
        let dir = TempDir("conv-\(seed)")
        defer { dir.remove() }
        var replicas: [Replica] = []
        defer { for r in replicas { try? r.store.close() } }
        do {
            for i in 0..<rng.int(2...5) {
                replicas.append(try Replica.make(in: dir, "n\(i)", millis: startMillis + UInt64(rng.int(0...20))))
            }
            for step in 0..<rng.int(10...30) {
                if rng.chance(60) {
                    let r = rng.pick(replicas)
                    moveClock(r.clock, &rng)
                    do {
                        let t = try localWrite(r.store, seed: seed, step: step, &rng, &stats)
                        stats.commits += 1
                        stats.acknowledged.append(t)
                    } catch let e as SyncNodeError where e.code == .notFound || e.code == .invalidInput {
                        stats.refused += 1  // deleting a deleted record, reusing a taken entry id: refused, nothing written
                    }
                } else {
                    let from = rng.int(0...(replicas.count - 1))
                    var to = rng.int(0...(replicas.count - 2))
                    if to >= from { to += 1 }
                    try partialExchange(from: replicas[from].store, to: replicas[to].store, &rng, &stats, &problems)
                }
            }
            try fullExchange(replicas.map(\.store))
            problems += try check(replicas.map(\.store), &stats)
        } catch {
            problems.append("unexpected error: \(error)")
        }
        return (seed, problems, stats)
    }

    /// Mostly forward by a few ms, often not at all, sometimes back a little, and now and then a
    /// jump (either way) to anywhere in a window of six minutes, so that the wall clocks of two
    /// replicas may disagree by minutes but never by more than the drift limit.
    static func moveClock(_ clock: ManualClock, _ rng: inout SplitMix64) {
        switch rng.int(0...19) {
        case 0...5: break
        case 6...15: clock.advance(by: UInt64(rng.int(1...20)))
        case 16...18: clock.set(clock.nowMillis() - UInt64(rng.int(1...15)))
        default: clock.set(UInt64(Int64(startMillis) + Int64(rng.int(-120_000...240_000))))
        }
    }

    static func randomValue(_ rng: inout SplitMix64) -> Value {
        switch rng.int(0...5) {
        case 0, 1: .int(Int64(rng.int(0...3)))
        case 2, 3: .text(rng.pick(["x", "y", "z", ""]))
        case 4: .real(1.5)
        default: .null
        }
    }

    static func putIntent(_ rng: inout SplitMix64) -> Intent {
        let fields = Array(fieldNames.shuffled(using: &rng).prefix(rng.int(1...2)))
        return .put(collection: collection, recordID: rng.pick(recordIDs), fields: fields.map { FieldAssignment($0, randomValue(&rng)) })
    }

    /// One local commit; false when there was nothing to do.
    static func localWrite(_ store: Store, seed: UInt64, step: Int, _ rng: inout SplitMix64, _ stats: inout ScriptStats) throws -> Transaction {
        let roll = rng.int(0...99)
        var intents: [Intent]
        switch roll {
        case 0..<45:
            intents = [putIntent(&rng)]
        case 45..<60:
            intents = [.delete(collection: collection, recordID: rng.pick(recordIDs))]
        case 60..<80:
            let ledger = rng.pick(ledgers)
            let id = rng.chance(50) ? rng.pick(sharedEntryIDs) : "u\(seed)-\(step)"
            var fields = [FieldAssignment("amount", .int(Int64(rng.int(-9...9))))]
            if rng.chance(25), let target = try store.ledger(ledger).randomElement(using: &rng), target.entryID != id {
                fields.append(FieldAssignment(Names.reversesField, .text(target.entryID)))
            }
            intents = [.append(ledger: ledger, entryID: id, fields: fields)]
        case 80..<95:
            let conflicts = try store.conflicts()
            if let c = conflicts.randomElement(using: &rng) {
                intents = [.resolve(collection: c.collection, recordID: c.recordID, field: c.field, value: rng.chance(50) ? nil : randomValue(&rng))]
                stats.resolutions += 1
            } else {
                intents = [putIntent(&rng)]
            }
        default:
            // Several intents in one transaction, on different records.
            let ids = recordIDs.shuffled(using: &rng)
            intents = [
                .put(collection: collection, recordID: ids[0], fields: [FieldAssignment(rng.pick(fieldNames), randomValue(&rng))]),
                .put(collection: collection, recordID: ids[1], fields: [FieldAssignment(rng.pick(fieldNames), randomValue(&rng))]),
                .append(ledger: rng.pick(ledgers), entryID: "m\(seed)-\(step)", fields: [FieldAssignment("amount", .int(1))]),
            ]
        }
        return try store.commit(intents)
    }

    /// Sends `to` a prefix of what it lacks from `from` (sometimes via the sender's own limit),
    /// sometimes delivering part of it twice.
    static func partialExchange(from: Store, to: Store, _ rng: inout SplitMix64, _ stats: inout ScriptStats, _ problems: inout [String]) throws {
        let batch: [ReceivedTransaction]
        if rng.chance(30) {
            batch = try from.transactions(missingFrom: to.vector(), maxTransactions: rng.int(1...3)).transactions
        } else {
            let missing = try from.transactions(missingFrom: to.vector()).transactions
            batch = Array(missing.prefix(rng.int(0...missing.count)))
        }
        let report = try to.apply(batch)
        if report.applied != batch.count { problems.append("apply of \(batch.count) new transactions applied \(report.applied)") }
        stats.partialExchanges += 1
        if rng.chance(15) {
            let digest = try to.stateDigest()
            let again = try to.apply(batch)
            if again.applied != 0 || again.duplicates != batch.count { problems.append("re-delivery applied \(again.applied) of \(batch.count)") }
            if try to.stateDigest() != digest { problems.append("re-delivery changed the state") }
        }
    }

    /// Everything that must hold once every replica has everything.
    static func check(_ stores: [Store], _ stats: inout ScriptStats) throws -> [String] {
        var problems: [String] = []
        let first = stores[0]
        let all = try first.transactions(missingFrom: VersionVector()).transactions
        // Every acknowledged commit is held, exactly as acknowledged, and nothing else is.
        let held = Dictionary(all.map { (NodeKeySeq(origin: $0.transaction.origin, seq: $0.transaction.seq), $0.transaction) }) { a, _ in a }
        for t in stats.acknowledged where held[NodeKeySeq(origin: t.origin, seq: t.seq)] != t {
            problems.append("acknowledged commit \(t.origin.short)/\(t.seq) is missing or altered")
        }
        if all.count != stats.acknowledged.count {
            problems.append("the replicas hold \(all.count) transactions; the script acknowledged \(stats.acknowledged.count)")
        }
        let digest = try first.stateDigest()
        let conflicts = try first.conflictList()
        let records = try first.records(collection, includeDeleted: true)
        let ledgerRows = try ledgers.map { try first.ledger($0) }
        let duplicates = try first.ledgerDuplicates()
        let vector = try first.vector()

        // Identical replicas.
        for (i, s) in stores.enumerated().dropFirst() {
            if try s.vector() != vector { problems.append("n\(i) vector \(try s.vector()) differs from n0's \(vector)") }
            let d = try s.stateDigest()
            if d != digest { problems.append("n\(i) state differs from n0's:\n--- n0\n\(digest)\n--- n\(i)\n\(d)") }
            let c = try s.conflictList()
            if c != conflicts || Set(c) != Set(conflicts) { problems.append("n\(i) conflicts \(c) differ from n0's \(conflicts)") }
            if try s.records(collection, includeDeleted: true) != records { problems.append("n\(i) records differ from n0's") }
            if try ledgers.map({ try s.ledger($0) }) != ledgerRows { problems.append("n\(i) ledgers differ from n0's") }
            if try s.ledgerDuplicates() != duplicates { problems.append("n\(i) ledger duplicates differ from n0's") }
        }

        // The vector counts every transaction of every origin, and the log holds them all.
        let committed = Dictionary(grouping: all.map(\.transaction), by: \.origin).mapValues { UInt64($0.count) }
        if VersionVector(committed) != vector { problems.append("vector \(vector) does not match the log \(committed)") }

        // The state is what the pure rules compute from the union of all transactions.
        var registers: [FieldKey: FieldRegister] = [:]
        var ledgerModel = LedgerModel()
        for t in all.map(\.transaction) {
            for change in t.changes {
                switch change {
                case .set(let w):
                    registers[FieldKey(collection: w.collection, recordID: w.recordID, field: w.field), default: FieldRegister()]
                        .insert(FieldVersion(ts: t.hlc, base: w.base, resolves: w.resolves, value: w.value))
                case .append(let e):
                    ledgerModel.add(e, ts: t.hlc)
                case .author, .unknown:
                    break
                }
            }
        }
        var expectedConflicts: [Conflict] = []
        var winnersByRecord: [String: [String: FieldVersion]] = [:]
        for (key, register) in registers.sorted(by: { $0.key < $1.key }) {
            guard let w = register.winner else { continue }
            winnersByRecord[key.recordID, default: [:]][key.field] = w
            for other in register.conflicts {
                expectedConflicts.append(
                    Conflict(
                        collection: key.collection, recordID: key.recordID, field: key.field, winnerValue: w.value, winnerTs: w.ts,
                        otherValue: other.value, otherTs: other.ts))
            }
        }
        if conflicts != expectedConflicts { problems.append("conflicts \(conflicts) differ from the rule's \(expectedConflicts)") }
        let expectedRecords = winnersByRecord.keys.sorted().map { id in
            let winners = winnersByRecord[id]!
            return "\(id) deleted=\(RecordRule.isDeleted(winners: winners)) "
                + winners.filter { $0.key != Names.deletedField }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.value)" }.joined(
                    separator: ",")
        }
        let actualRecords = records.map { r in
            "\(r.recordID) deleted=\(r.deleted) " + r.fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
        if actualRecords != expectedRecords { problems.append("records \(actualRecords) differ from the rule's \(expectedRecords)") }
        for r in records {
            let expected = expectedConflicts.filter { $0.recordID == r.recordID }.map(\.field)
            if r.conflictedFields != Array(Set(expected)).sorted() { problems.append("\(r.recordID) conflicted fields \(r.conflictedFields)") }
        }

        var storeLedger = LedgerModel()
        for rows in ledgerRows {
            for row in rows { storeLedger.add(LedgerEntry(ledger: row.ledger, entryID: row.entryID, fields: row.fields), ts: row.ts) }
        }
        let keptOnly = ledgerModel.kept.mapValues(\.ts)
        if storeLedger.kept.mapValues(\.ts) != keptOnly || storeLedger.kept != ledgerModel.kept {
            problems.append("ledger entries differ from the union rule")
        }
        let expectedDuplicates = ledgerModel.duplicates.flatMap { key, set in set.map { "\(key.ledger)/\(key.entryID)@\($0.ts)" } }.sorted()
        let actualDuplicates = duplicates.map { "\($0.ledger)/\($0.entryID)@\($0.ts)" }.sorted()
        if actualDuplicates != expectedDuplicates {
            problems.append("ledger duplicates \(actualDuplicates) differ from the rule's \(expectedDuplicates)")
        }

        // Applying everything again changes nothing.
        let again = try first.apply(all)
        if again.applied != 0 || again.duplicates != all.count { problems.append("re-applying the whole log applied \(again.applied)") }
        if try first.stateDigest() != digest { problems.append("re-applying the whole log changed the state") }

        stats.conflictsSeen += conflicts.count
        stats.deletedRecords += records.filter(\.deleted).count
        stats.ledgerDuplicates += duplicates.count
        stats.sharedEntryIDs += Dictionary(grouping: ledgerRows.joined(), by: { "\($0.ledger)/\($0.entryID)" }).values.filter { $0.count > 1 }.count
        return problems
    }
}

struct NodeKeySeq: Hashable {
    var origin: NodeID
    var seq: UInt64
}
