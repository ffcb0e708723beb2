import Foundation
import SyncNode
import SyncProtocol
import Testing

@Suite struct StoreTests {
    @Test func localWriteIsReadableAndLogged() throws {
        let node = try TestNode()
        defer { node.remove() }
        let t = try node.store.commit([
            .put(collection: "projects", recordID: "lt-1", fields: [.init("name", .text("东丽小学")), .init("funds", .int(5_000_000))])
        ])
        #expect(t.seq == 1)
        #expect(t.changes.count == 2)
        let record = try #require(try node.store.record("projects", "lt-1"))
        #expect(record.fields == ["name": .text("东丽小学"), "funds": .int(5_000_000)])
        #expect(try node.store.vector()[node.store.info.nodeID] == 1)
        let logged = try node.store.transactions(missingFrom: VersionVector()).transactions
        #expect(logged.map(\.transaction) == [t])
    }

    @Test func clockHighWaterMarkSurvivesReopenWithWallClockSetBack() throws {
        let node = try TestNode(millis: 1_800_000_000_000)
        defer { node.remove() }
        let first = try node.store.commit([.put(collection: "c", recordID: "r", fields: [.init("f", .text("a"))])])
        try node.store.close()
        // The laptop's clock is now a day behind.
        let earlier = ManualClock(millis: 1_800_000_000_000 - 86_400_000)
        let reopened = try Store.open(node.directory.path("node"), clock: earlier)
        defer { try? reopened.close() }
        #expect(try reopened.clockHighWater() == first.hlc)
        let second = try reopened.commit([.put(collection: "c", recordID: "r", fields: [.init("f", .text("b"))])])
        #expect(second.hlc > first.hlc)
        #expect(second.seq == 2)
        #expect(try reopened.record("c", "r")?.fields["f"] == .text("b"))
    }

    @Test func applyingTheSameTransactionsTwiceIsANoOp() throws {
        let a = try TestNode()
        let b = try TestNode(site: "hq")
        defer {
            a.remove()
            b.remove()
        }
        for i in 0..<5 { try a.store.commit([.put(collection: "c", recordID: "r\(i)", fields: [.init("f", .int(Int64(i)))])]) }
        let batch = try a.store.transactions(missingFrom: VersionVector()).transactions
        let first = try b.store.apply(batch)
        let digest = try b.store.stateDigest()
        let second = try b.store.apply(batch)
        #expect(first.applied == 5 && first.duplicates == 0)
        #expect(second.applied == 0 && second.duplicates == 5)
        #expect(try b.store.stateDigest() == digest)
        #expect(try b.store.stateDigest() == a.store.stateDigest())
    }

    @Test func batchWithAGapInSeqIsRefusedWholeAndWritesNothing() throws {
        let a = try TestNode()
        let b = try TestNode(site: "hq")
        defer {
            a.remove()
            b.remove()
        }
        for i in 0..<4 { try a.store.commit([.put(collection: "c", recordID: "r\(i)", fields: [.init("f", .int(1))])]) }
        var batch = try a.store.transactions(missingFrom: VersionVector()).transactions
        batch.remove(at: 2)
        let before = try b.store.storedDigest()
        do {
            _ = try b.store.apply(batch)
            Issue.record("a batch with a gap was applied")
        } catch {
            #expect(error.code == .protocolViolation)
            #expect(error.message.contains("gap"))
        }
        #expect(try b.store.storedDigest() == before)
    }

    @Test func malformedTransactionInABatchRefusesTheWholeBatch() throws {
        let a = try TestNode()
        let b = try TestNode(site: "hq")
        defer {
            a.remove()
            b.remove()
        }
        try a.store.commit([.put(collection: "c", recordID: "r", fields: [.init("f", .int(1))])])
        var batch = try a.store.transactions(missingFrom: VersionVector()).transactions
        let origin = a.store.info.nodeID
        let big = Transaction(
            origin: origin, seq: 2, hlc: Timestamp(millis: batch[0].transaction.hlc.millis + 1, counter: 0, node: origin),
            changes: [.set(FieldWrite(collection: "c", recordID: "r", field: "f", value: .text(String(repeating: "x", count: 70_000))))])
        batch.append(ReceivedTransaction(transaction: big, body: WireCodec.encode(big)))
        let before = try b.store.storedDigest()
        do {
            _ = try b.store.apply(batch)
            Issue.record("an oversized value was accepted")
        } catch {
            #expect(error.code == .protocolViolation)
        }
        #expect(try b.store.storedDigest() == before)
        #expect(try b.store.vector().entries.isEmpty)
    }

    @Test func localCommitWithOneBadIntentWritesNothing() throws {
        let node = try TestNode()
        defer { node.remove() }
        let before = try node.store.storedDigest()
        #expect(throws: SyncNodeError.self) {
            try node.store.commit([
                .put(collection: "c", recordID: "ok", fields: [.init("f", .int(1))]),
                .put(collection: "c", recordID: "bad", fields: [.init("_secret", .int(1))]),
            ])
        }
        #expect(try node.store.storedDigest() == before)
        #expect(try node.store.vector().entries.isEmpty)
        // The next good write still gets seq 1: no gap was left behind.
        #expect(try node.store.commit([.put(collection: "c", recordID: "ok", fields: [.init("f", .int(1))])]).seq == 1)
    }

    @Test func remoteApplyRunsInBoundedChunks() throws {
        var limits = StoreLimits()
        limits.applyChunkTransactions = 10
        let a = try TestNode()
        let b = try TestNode(site: "hq", limits: limits)
        defer {
            a.remove()
            b.remove()
        }
        for i in 0..<95 { try a.store.commit([.put(collection: "c", recordID: "r\(i)", fields: [.init("f", .int(Int64(i)))])]) }
        let report = try b.store.apply(try a.store.transactions(missingFrom: VersionVector()).transactions)
        #expect(report.applied == 95)
        #expect(report.chunks == 10)
        #expect(try b.store.stateDigest() == a.store.stateDigest())
    }

    @Test func remoteClockTooFarAheadIsRefusedNamingTheNode() throws {
        let a = try TestNode(millis: 1_700_000_000_000 + 3 * 86_400_000)
        let b = try TestNode(site: "hq")
        defer {
            a.remove()
            b.remove()
        }
        try a.store.commit([.put(collection: "c", recordID: "r", fields: [.init("f", .int(1))])])
        let before = try b.store.storedDigest()
        do {
            _ = try b.store.apply(try a.store.transactions(missingFrom: VersionVector()).transactions)
            Issue.record("a transaction 3 days ahead was accepted")
        } catch {
            #expect(error.code == .clockSkew)
            #expect(error.message.contains(a.store.info.nodeID.short))
            #expect(error.message.contains("3 days"))
        }
        #expect(try b.store.storedDigest() == before)
    }

    @Test func changesSinceRespectsLimitsAndNeverSplitsTransactions() throws {
        let a = try TestNode()
        defer { a.remove() }
        for i in 0..<7 {
            try a.store.commit([.put(collection: "c", recordID: "r\(i)", fields: [.init("f", .int(1)), .init("g", .int(2))])])
        }
        let first = try a.store.transactions(missingFrom: VersionVector(), maxTransactions: 3)
        #expect(first.transactions.map(\.transaction.seq) == [1, 2, 3])
        #expect(first.more)
        var vector = VersionVector()
        vector[a.store.info.nodeID] = 3
        let rest = try a.store.transactions(missingFrom: vector, maxBytes: 1)
        // A byte limit smaller than one transaction still returns one whole transaction.
        #expect(rest.transactions.map(\.transaction.seq) == [4])
        #expect(rest.transactions[0].transaction.changes.count == 2)
        #expect(rest.more)
        vector[a.store.info.nodeID] = 7
        #expect(try a.store.transactions(missingFrom: vector).transactions.isEmpty)
    }

    @Test func deleteThenPutBringsTheRecordBack() throws {
        let node = try TestNode()
        defer { node.remove() }
        try node.store.commit([.put(collection: "c", recordID: "r", fields: [.init("f", .text("a"))])])
        node.clock.advance(by: 1)
        try node.store.commit([.delete(collection: "c", recordID: "r")])
        #expect(try node.store.record("c", "r")?.deleted == true)
        #expect(try node.store.records("c").isEmpty)
        node.clock.advance(by: 1)
        try node.store.commit([.put(collection: "c", recordID: "r", fields: [.init("g", .text("b"))])])
        let record = try #require(try node.store.record("c", "r"))
        #expect(!record.deleted)
        #expect(record.fields == ["f": .text("a"), "g": .text("b")])
    }

    @Test func deletingAMissingRecordIsNotFound() throws {
        let node = try TestNode()
        defer { node.remove() }
        do {
            try node.store.commit([.delete(collection: "c", recordID: "nothing")])
            Issue.record("deleting a missing record succeeded")
        } catch {
            #expect(error.code == .notFound)
        }
    }

    @Test func ledgerReversalMustPointAtAnExistingEntry() throws {
        let node = try TestNode()
        defer { node.remove() }
        let t = try node.store.commit([.append(ledger: "funds", entryID: nil, fields: [.init("amount", .int(100))])])
        guard case .append(let entry) = t.changes[0] else { throw TestFailure("not an append") }
        try node.store.commit([
            .append(ledger: "funds", entryID: nil, fields: [.init("amount", .int(-100)), .init("_reverses", .text(entry.entryID))])
        ])
        let rows = try node.store.ledger("funds")
        #expect(rows.count == 2)
        #expect(rows.first { $0.entryID == entry.entryID }?.reversedBy.count == 1)
        #expect(throws: SyncNodeError.self) {
            try node.store.commit([.append(ledger: "funds", entryID: nil, fields: [.init("_reverses", .text("missing"))])])
        }
        #expect(throws: SyncNodeError.self) {
            try node.store.commit([.append(ledger: "funds", entryID: entry.entryID, fields: [.init("amount", .int(1))])])
        }
    }

    @Test func resolvingAConflictClearsItEverywhere() throws {
        let a = try TestNode()
        let b = try TestNode(site: "hq")
        defer {
            a.remove()
            b.remove()
        }
        try a.store.commit([.put(collection: "p", recordID: "1", fields: [.init("name", .text("from a"))])])
        b.clock.advance(by: 5)
        try b.store.commit([.put(collection: "p", recordID: "1", fields: [.init("name", .text("from b"))])])
        try exchange(a.store, b.store)
        #expect(try a.store.conflicts().count == 1)
        #expect(try b.store.conflicts() == a.store.conflicts())
        try a.store.commit([.resolve(collection: "p", recordID: "1", field: "name", value: .text("agreed"))])
        try exchange(a.store, b.store)
        #expect(try a.store.conflicts().isEmpty)
        #expect(try b.store.conflicts().isEmpty)
        #expect(try b.store.record("p", "1")?.fields["name"] == .text("agreed"))
    }

    @Test func corruptedDatabaseFileGivesAClearErrorAndIsNotOverwritten() throws {
        let node = try TestNode()
        try node.store.close()
        defer { node.directory.remove() }
        let file = node.directory.path("node").appendingPathComponent(Store.fileName)
        for name in ["node.sqlite-wal", "node.sqlite-shm"] {
            try? FileManager.default.removeItem(at: node.directory.path("node").appendingPathComponent(name))
        }
        let garbage = Data(repeating: 0x5A, count: 8192)
        try garbage.write(to: file)
        do {
            _ = try Store.open(node.directory.path("node"))
            Issue.record("a corrupted database was opened")
        } catch {
            #expect(error.code == .databaseCorrupt)
            #expect(error.exitCode == 74)
        }
        #expect(try Data(contentsOf: file) == garbage)
    }

    /// The library names the directory; the CLI adds how to create a node (CLIBadInputTests).
    @Test func openingADirectoryWithoutANodeNamesItAndCreatesNothing() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        do {
            _ = try Store.open(dir.path("nothing"))
            Issue.record("opened a missing node")
        } catch {
            #expect(error.code == .notANode)
            #expect(error.message.contains(dir.path("nothing").path))
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path("nothing").path))
    }
}

/// Full exchange both ways between two stores.
func exchange(_ a: Store, _ b: Store) throws {
    _ = try b.apply(try a.transactions(missingFrom: try b.vector()).transactions)
    _ = try a.apply(try b.transactions(missingFrom: try a.vector()).transactions)
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
