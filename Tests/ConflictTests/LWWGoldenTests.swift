import Foundation
import SyncNode
import SyncProtocol
import Testing

private func version(_ t: Timestamp, _ value: Value, base: Timestamp? = nil, resolves: [Timestamp] = []) -> FieldVersion {
    FieldVersion(ts: t, base: base, resolves: resolves, value: value)
}

@Suite("Last-writer-wins golden vectors")
struct LWWGoldenTests {
    // MARK: - The field rule, on fixed timestamps and node ids

    @Test func equalMillisAndCounterAreBrokenByNodeID() {
        let low = version(ts(1_000, 0, 1), .text("from node 1"))
        let high = version(ts(1_000, 0, 2), .text("from node 2"))
        for order in [[low, high], [high, low]] {
            let r = FieldRegister(order)
            #expect(r.winner == high)
            #expect(r.heads == [low, high])
            #expect(r.conflicts == [low])
        }
    }

    @Test func counterOutranksNodeAndMillisOutrankCounter() {
        let a = version(ts(1_000, 1, 1), .int(1))
        let b = version(ts(1_000, 0, 9), .int(2))
        #expect(FieldRegister([a, b]).winner == a)
        let c = version(ts(1_001, 0, 1), .int(3))
        let d = version(ts(1_000, 0xFFFF, 9), .int(4))
        #expect(FieldRegister([d, c]).winner == c)
    }

    @Test func winnerIsByTimestampNeverByValueOrEditCount() {
        // Node 1 edits three times in a row; node 2 once, later. Node 2 wins, and node 1's last
        // edit is the single conflicting version.
        let v1 = version(ts(100, 0, 1), .int(999))
        let v2 = version(ts(101, 0, 1), .int(998), base: v1.ts)
        let v3 = version(ts(102, 0, 1), .int(997), base: v2.ts)
        let other = version(ts(103, 0, 2), .int(0))
        let r = FieldRegister([v1, v2, v3, other])
        #expect(r.winner == other)
        #expect(r.heads == [v3, other])
        #expect(r.conflicts == [v3])
    }

    @Test func sequentialEditsLeaveNoConflict() {
        let v1 = version(ts(100, 0, 1), .text("a"))
        let v2 = version(ts(200, 0, 2), .text("b"), base: v1.ts)
        let v3 = version(ts(150, 0, 3), .text("c"), base: nil)  // made without knowing v1 or v2
        #expect(FieldRegister([v1, v2]).conflicts.isEmpty)
        let r = FieldRegister([v1, v2, v3])
        #expect(r.winner == v2)
        #expect(r.conflicts == [v3], "an older concurrent write still shows as a conflict")
    }

    @Test func resolvingWriteClearsTheConflict() {
        let a = version(ts(1_000, 0, 1), .text("a"))
        let b = version(ts(1_000, 0, 2), .text("b"))
        let fix = version(ts(1_005, 0, 1), .text("b"), base: b.ts, resolves: [a.ts])
        let r = FieldRegister([fix, a, b])
        #expect(r.winner == fix)
        #expect(r.heads == [fix])
        #expect(r.conflicts.isEmpty)
        // A resolution that did not know of a third concurrent write leaves that one in conflict.
        let late = version(ts(1_003, 0, 3), .text("c"))
        #expect(FieldRegister([fix, a, b, late]).conflicts == [late])
    }

    // MARK: - The delete rule

    @Test func deleteRuleOnFixedWinners() {
        let name = "name"
        let deleted = Names.deletedField
        func isDeleted(_ winners: [String: FieldVersion]) -> Bool { RecordRule.isDeleted(winners: winners) }

        // Delete newer than every other field: deleted.
        #expect(isDeleted([name: version(ts(1_000), .text("x")), deleted: version(ts(2_000), .int(1))]))
        // A concurrent edit with a later timestamp brings the record back.
        #expect(!isDeleted([name: version(ts(3_000, 0, 2), .text("y")), deleted: version(ts(2_000), .int(1))]))
        // A concurrent edit with an earlier timestamp does not.
        #expect(isDeleted([name: version(ts(1_500, 0, 2), .text("y")), deleted: version(ts(2_000), .int(1))]))
        // Same millis and counter: the node id decides which is later.
        #expect(isDeleted([name: version(ts(2_000, 0, 1), .text("y")), deleted: version(ts(2_000, 0, 2), .int(1))]))
        #expect(!isDeleted([name: version(ts(2_000, 0, 2), .text("y")), deleted: version(ts(2_000, 0, 1), .int(1))]))
        // Written in the same transaction (same timestamp): not deleted, the delete must be newer.
        #expect(!isDeleted([name: version(ts(2_000), .text("y")), deleted: version(ts(2_000), .int(1))]))
        // A deliberate undelete: `_deleted` = 0 is the newest write.
        #expect(!isDeleted([name: version(ts(1_000), .text("x")), deleted: version(ts(4_000), .int(0))]))
        // Only `_deleted` is there: deleted.
        #expect(isDeleted([deleted: version(ts(1), .int(1))]))
        // Truthiness: non-zero integers only.
        #expect(isDeleted([deleted: version(ts(1), .int(-2))]))
        #expect(!isDeleted([deleted: version(ts(1), .text("1"))]))
        #expect(!isDeleted([deleted: version(ts(1), .null)]))
        #expect(!isDeleted([deleted: version(ts(1), .real(1))]))
        #expect(!isDeleted([name: version(ts(1), .text("x"))]))
        #expect(!isDeleted([:]))
    }

    @Test func ledgerKeepsTheEarliestWriteOfAnID() {
        #expect(LedgerRule.keeps(existing: ts(1_000, 0, 1), over: ts(1_000, 0, 2)))
        #expect(!LedgerRule.keeps(existing: ts(1_000, 0, 2), over: ts(1_000, 0, 1)))
        #expect(LedgerRule.keeps(existing: ts(999, 9, 9), over: ts(1_000, 0, 1)))
        #expect(LedgerRule.keeps(existing: ts(5), over: ts(5)), "re-delivery keeps what is there")
    }

    // MARK: - The same rules through real stores

    /// Two replicas holding `c/r` with `name = "start"`, both clocks at `millis`.
    private func pair(_ dir: TempDir, millis: UInt64) throws -> (Replica, Replica) {
        let a = try Replica.make(in: dir, "a", millis: millis)
        let b = try Replica.make(in: dir, "b", millis: millis)
        try a.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("name", .text("start")), FieldAssignment("qty", .int(1))])])
        try exchange(from: a.store, to: b.store)
        a.clock.advance(by: 1_000)
        b.clock.advance(by: 1_000)
        return (a, b)
    }

    @Test func concurrentEditsKeepBothValuesInConflictLog() throws {
        let dir = TempDir("lww")
        defer { dir.remove() }
        let (a, b) = try pair(dir, millis: 1_000_000)
        // Same wall clock on both: equal millis, equal counter, so the node id decides.
        let ta = try a.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("name", .text("from a"))])]).hlc
        let tb = try b.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("name", .text("from b"))])]).hlc
        #expect(ta.millis == tb.millis && ta.counter == tb.counter)
        try exchange(from: a.store, to: b.store)
        try exchange(from: b.store, to: a.store)

        let (winner, loser): ((Timestamp, String), (Timestamp, String)) =
            a.store.info.nodeID > b.store.info.nodeID ? ((ta, "from a"), (tb, "from b")) : ((tb, "from b"), (ta, "from a"))
        let expected = [
            Conflict(
                collection: "c", recordID: "r", field: "name", winnerValue: .text(winner.1), winnerTs: winner.0, otherValue: .text(loser.1),
                otherTs: loser.0)
        ]
        for r in [a, b] {
            #expect(try r.store.conflictList() == expected, "\(r.name)")
            let view = try #require(try r.store.record("c", "r"))
            #expect(view.fields == ["name": .text(winner.1), "qty": .int(1)], "\(r.name)")
            #expect(view.conflictedFields == ["name"], "\(r.name)")
            #expect(view.deleted == false)
            // Both values are in the history; both are heads, only the winner is current.
            let history = try r.store.history("c", "r").filter { $0.field == "name" }
            #expect(history.map(\.value) == [.text("start")] + [ta, tb].sorted().map { $0 == ta ? .text("from a") : .text("from b") })
            #expect(history.filter(\.isHead).count == 2)
            #expect(history.filter(\.isCurrent).map(\.ts) == [winner.0])
        }
        #expect(try a.store.stateDigest() == b.store.stateDigest())

        // Resolving on one node, choosing the losing value, clears the conflict everywhere.
        b.clock.advance(by: 10)
        let fix = try b.store.commit([.resolve(collection: "c", recordID: "r", field: "name", value: .text(loser.1))])
        guard case .set(let w) = fix.changes.first else {
            Issue.record("a resolution is one field write")
            return
        }
        #expect(w.base == winner.0)
        #expect(w.resolves == [loser.0])
        try exchange(from: b.store, to: a.store)
        for r in [a, b] {
            #expect(try r.store.conflicts().isEmpty, "\(r.name)")
            #expect(try r.store.record("c", "r")?.fields["name"] == .text(loser.1), "\(r.name)")
            #expect(try r.store.record("c", "r")?.conflictedFields == [], "\(r.name)")
        }
        // Nothing left to resolve.
        let error = #expect(throws: SyncNodeError.self) {
            try a.store.commit([.resolve(collection: "c", recordID: "r", field: "name", value: nil)])
        }
        #expect(error?.code == .notFound)
    }

    @Test func resolveWithoutValueKeepsTheWinner() throws {
        let dir = TempDir("lww")
        defer { dir.remove() }
        let (a, b) = try pair(dir, millis: 2_000_000)
        b.clock.advance(by: 5)  // b's edit is later: it wins
        try a.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("qty", .int(10))])])
        try b.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("qty", .int(20))])])
        try exchange(from: b.store, to: a.store)
        #expect(try a.store.conflicts().map(\.otherValue) == [.int(10)])
        try a.store.commit([.resolve(collection: "c", recordID: "r", field: "qty", value: nil)])
        try exchange(from: a.store, to: b.store)
        for r in [a, b] {
            #expect(try r.store.record("c", "r")?.fields["qty"] == .int(20), "\(r.name)")
            #expect(try r.store.conflicts().isEmpty, "\(r.name)")
        }
        #expect(try a.store.stateDigest() == b.store.stateDigest())
    }

    @Test func deleteLosesToAConcurrentLaterEditSoTheRecordComesBack() throws {
        let dir = TempDir("lww")
        defer { dir.remove() }
        let (a, b) = try pair(dir, millis: 3_000_000)
        try a.store.commit([.delete(collection: "c", recordID: "r")])
        b.clock.advance(by: 50)
        try b.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("qty", .int(7))])])
        try exchange(from: a.store, to: b.store)
        try exchange(from: b.store, to: a.store)
        for r in [a, b] {
            let view = try #require(try r.store.record("c", "r"))
            #expect(view.deleted == false, "\(r.name)")
            #expect(view.fields == ["name": .text("start"), "qty": .int(7)], "\(r.name)")
            #expect(try r.store.records("c").map(\.recordID) == ["r"], "\(r.name)")
        }
        #expect(try a.store.stateDigest() == b.store.stateDigest())
    }

    @Test func deleteBeatsAConcurrentEarlierEditSoTheRecordStaysDeleted() throws {
        let dir = TempDir("lww")
        defer { dir.remove() }
        let (a, b) = try pair(dir, millis: 4_000_000)
        a.clock.advance(by: 50)
        try b.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("qty", .int(7))])])
        try a.store.commit([.delete(collection: "c", recordID: "r")])
        try exchange(from: a.store, to: b.store)
        try exchange(from: b.store, to: a.store)
        for r in [a, b] {
            let view = try #require(try r.store.record("c", "r"))
            #expect(view.deleted, "\(r.name)")
            #expect(view.fields["qty"] == .int(7), "\(r.name): the edit is kept as the field's value")
            #expect(try r.store.records("c").isEmpty, "\(r.name)")
            #expect(try r.store.records("c", includeDeleted: true).map(\.recordID) == ["r"], "\(r.name)")
            #expect(try r.store.conflicts().isEmpty, "\(r.name): different fields never conflict")
        }
        #expect(try a.store.stateDigest() == b.store.stateDigest())
    }

    @Test func deliberateUndeleteWritesDeletedZeroAndBringsTheRecordBack() throws {
        let dir = TempDir("lww")
        defer { dir.remove() }
        let (a, b) = try pair(dir, millis: 5_000_000)
        let del = try a.store.commit([.delete(collection: "c", recordID: "r")])
        #expect(del.changes.count == 1)
        guard case .set(let delete) = del.changes.first else { return }
        #expect(delete.field == Names.deletedField && delete.value == .int(1) && delete.base == nil)
        #expect(try a.store.record("c", "r")?.deleted == true)
        // Deleting again is refused: there is nothing to delete.
        let again = #expect(throws: SyncNodeError.self) { try a.store.commit([.delete(collection: "c", recordID: "r")]) }
        #expect(again?.code == .notFound)

        a.clock.advance(by: 1)
        let put = try a.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("qty", .int(2))])])
        let undelete = put.changes.compactMap { change -> FieldWrite? in
            if case .set(let w) = change, w.field == Names.deletedField { return w }
            return nil
        }
        #expect(undelete.count == 1)
        #expect(undelete.first?.value == .int(0))
        #expect(undelete.first?.base == del.hlc, "the undelete replaces the delete knowingly")
        try exchange(from: a.store, to: b.store)
        for r in [a, b] {
            let view = try #require(try r.store.record("c", "r"))
            #expect(!view.deleted, "\(r.name)")
            #expect(view.fields == ["name": .text("start"), "qty": .int(2)], "\(r.name)")
            #expect(try r.store.conflicts().isEmpty, "\(r.name)")
        }
        // A put on a live record writes no `_deleted` field.
        a.clock.advance(by: 1)
        let plain = try a.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("qty", .int(3))])])
        #expect(plain.changes.count == 1)
        // And the record can be deleted again.
        a.clock.advance(by: 1)
        try a.store.commit([.delete(collection: "c", recordID: "r")])
        #expect(try a.store.record("c", "r")?.deleted == true)
    }

    /// Two origins that use one entry id make two entries: neither can replace or hide the other,
    /// whatever their clocks (a county reusing another county's id with an earlier clock used to
    /// take the entry over everywhere).
    @Test func ledgerEntriesOfTwoOriginsWithTheSameIDAreBothKept() throws {
        let dir = TempDir("lww")
        defer { dir.remove() }
        let (a, b) = try pair(dir, millis: 6_000_000)
        b.clock.advance(by: 3)
        let ta = try a.store.commit([.append(ledger: "cash", entryID: "e1", fields: [FieldAssignment("amount", .int(100))])]).hlc
        let tb = try b.store.commit([.append(ledger: "cash", entryID: "e1", fields: [FieldAssignment("amount", .int(200))])]).hlc
        #expect(ta < tb)
        try exchange(from: b.store, to: a.store)
        try exchange(from: a.store, to: b.store)
        for r in [a, b] {
            let ledger = try r.store.ledger("cash")
            #expect(ledger.map(\.entryID) == ["e1", "e1"], "\(r.name)")
            #expect(ledger.map(\.ts) == [ta, tb], "\(r.name)")
            #expect(ledger.map(\.fields) == [["amount": .int(100)], ["amount": .int(200)]], "\(r.name)")
            #expect(try r.store.ledgerDuplicates().isEmpty, "\(r.name)")
        }
        #expect(try a.store.stateDigest() == b.store.stateDigest())
        // The id names two entries now: a reversal must say whose it cancels.
        let ambiguous = #expect(throws: SyncNodeError.self) {
            try a.store.commit([
                .append(ledger: "cash", entryID: "e2", fields: [FieldAssignment("amount", .int(-100)), FieldAssignment("_reverses", .text("e1"))])
            ])
        }
        #expect(ambiguous?.message.contains("several nodes") == true)
        try a.store.commit([
            .append(
                ledger: "cash", entryID: "e2",
                fields: [
                    FieldAssignment("amount", .int(-100)), FieldAssignment("_reverses", .text("e1")),
                    FieldAssignment("_reverses_origin", .text(a.store.info.nodeID.hex)),
                ])
        ])
        #expect(try a.store.ledger("cash").filter { $0.entryID == "e1" }.map(\.reversedBy) == [["e2"], []])
    }

    @Test func applyingTheSameTransactionsAgainChangesNothing() throws {
        let dir = TempDir("lww")
        defer { dir.remove() }
        let (a, b) = try pair(dir, millis: 7_000_000)
        try a.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("qty", .int(5))])])
        try b.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("qty", .int(6))])])
        try exchange(from: a.store, to: b.store)
        let everything = try a.store.transactions(missingFrom: VersionVector()).transactions
        let digest = try b.store.stateDigest()
        let conflicts = try b.store.conflicts()
        let report = try b.store.apply(everything)
        #expect(report.applied == 0)
        #expect(report.duplicates == everything.count)
        #expect(try b.store.stateDigest() == digest)
        #expect(try b.store.conflicts() == conflicts)
        // Twice in one batch, too.
        let again = try b.store.apply(everything + everything)
        #expect(again.applied == 0 && again.duplicates == 2 * everything.count)
        #expect(try b.store.stateDigest() == digest)
    }

    @Test func batchWithAGapIsRefusedWhole() throws {
        let dir = TempDir("lww")
        defer { dir.remove() }
        let (a, b) = try pair(dir, millis: 8_000_000)
        for i in 0..<3 {
            try a.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("qty", .int(Int64(i)))])])
        }
        let missing = try a.store.transactions(missingFrom: b.store.vector()).transactions
        #expect(missing.count == 3)
        let digest = try b.store.stateDigest()
        let error = #expect(throws: SyncNodeError.self) { try b.store.apply([missing[0], missing[2]]) }
        #expect(error?.code == .protocolViolation)
        #expect(try b.store.stateDigest() == digest, "nothing was applied")
        #expect(try b.store.apply(missing).applied == 3)
    }
}
