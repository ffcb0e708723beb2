import Foundation
import SyncProtocol
import Synchronization
import Testing

@testable import SyncNode

/// The shortcuts of the local write path: a record created by one transaction is packed straight
/// from its writes, and a large transaction is sealed (checked, encoded, signed, deflated) on
/// another thread while its records are written.
struct LocalWritePathTests {
    @Test func aFreshRecordPacksToTheBytesOfTheGeneralPath() throws {
        let node = try TestNode()
        defer { node.remove() }
        let ts = Timestamp(millis: 1_700_000_000_123, counter: 9, node: node.store.info.nodeID)
        let cases: [[(name: Int64, value: Value)]] = [
            [(1, .text("东丽小学"))],
            [(1, .text("a")), (3, .int(-5)), (7, .real(1.5)), (9, .null), (300, .int(Int64.max)), (301, .text(String(repeating: "x", count: 200)))],
        ]
        try node.store.pool.write { db in
            var interner = Interner(node.store.interns)
            let nodeIx = try #require(try interner.nodeIx(ts.node, db))
            for fields in cases {
                var record = StoredRecord()
                for f in fields { record.fields[f.name] = [LiveVersion(ts: ts, seq: 42, value: f.value, isHead: true)] }
                let general = try RecordCodec.encode(record, &interner, db)
                #expect(RecordCodec.encodeFresh(fields, clock: ts.clock, node: nodeIx, seq: 42) == general)
                // And it reads back as that record.
                let decoded = try RecordCodec.decode(Data(general), &interner, db)
                #expect(decoded.fields.map(\.key) == record.fields.map(\.key))
                #expect(decoded.fields.map(\.value) == record.fields.map(\.value))
            }
        }
    }

    /// A record created locally and one created through the general merge (a second write to an
    /// existing record) read back the same way, and replicas that receive them agree.
    @Test func freshAndMergedRecordsReadTheSameOnEveryReplica() async throws {
        let a = try TestNode(site: "lintan")
        let b = try TestNode(site: "gangu")
        defer {
            a.remove()
            b.remove()
        }
        try a.store.commit([.put(collection: "projects", recordID: "p1", fields: [.init("name", .text("校")), .init("people", .int(3))])])
        try a.store.commit([.put(collection: "projects", recordID: "p1", fields: [.init("people", .int(4))])])
        try b.store.commit([.put(collection: "projects", recordID: "p2", fields: [.init("people", .int(4)), .init("name", .text("校"))])])
        _ = try b.store.apply(try a.store.transactions(missingFrom: try b.store.vector()).transactions)
        _ = try a.store.apply(try b.store.transactions(missingFrom: try a.store.vector()).transactions)
        for store in [a.store, b.store] {
            #expect(try store.record("projects", "p1")?.fields == ["name": .text("校"), "people": .int(4)])
            #expect(try store.record("projects", "p2")?.fields == ["name": .text("校"), "people": .int(4)])
        }
        #expect(try a.store.stateDigest() == b.store.stateDigest())
    }

    /// A transaction large enough to be sealed on another thread, with a problem only the full
    /// check finds (a real that is not finite; a field given twice): refused, and nothing of its
    /// records, log or vector is written.
    @Test(arguments: ["not finite", "field twice"])
    func aLargeMalformedCommitWritesNothing(defect: String) throws {
        let node = try TestNode()
        defer { node.remove() }
        try node.store.commit([.put(collection: "projects", recordID: "before", fields: [.init("name", .text("kept"))])])
        let before = try node.store.storedDigest()
        var intents: [Intent] = (0..<Sealing.backgroundChanges).map {
            .put(collection: "projects", recordID: "p\($0)", fields: [.init("name", .text("n\($0)")), .init("people", .int(Int64($0)))])
        }
        switch defect {
        case "not finite":
            intents.append(.put(collection: "projects", recordID: "bad", fields: [.init("progress", .real(.infinity))]))
        default:
            intents.append(.put(collection: "projects", recordID: "bad", fields: [.init("people", .int(1)), .init("people", .int(2))]))
        }
        do {
            try node.store.commit(intents)
            Issue.record("a malformed transaction was committed")
        } catch {
            #expect(error.code == .invalidInput, "\(error)")
        }
        #expect(try node.store.storedDigest() == before)
        #expect(try node.store.record("projects", "p0") == nil)
        #expect(try node.store.vector()[node.store.info.nodeID] == 1)
        #expect(try node.store.transactions(missingFrom: VersionVector()).transactions.count == 1)
        // The node still works.
        let next = try node.store.commit([.put(collection: "projects", recordID: "after", fields: [.init("name", .text("ok"))])])
        #expect(next.seq == 2)
    }

    /// More changes than a transaction may hold: refused before any record is written.
    @Test func aCommitOverTheChangeLimitIsRefusedWhole() throws {
        let node = try TestNode()
        defer { node.remove() }
        let intents: [Intent] = (0..<(Transaction.maxChanges / 2 + 1)).map {
            .put(collection: "projects", recordID: "p\($0)", fields: [.init("name", .text("n")), .init("people", .int(1))])
        }
        do {
            try node.store.commit(intents)
            Issue.record("a transaction over the limit was committed")
        } catch {
            #expect(error.code == .invalidInput)
            #expect(error.message.contains("at most \(Transaction.maxChanges) changes"))
        }
        #expect(try node.store.record("projects", "p0") == nil)
        #expect(try node.store.vector()[node.store.info.nodeID] == 0)
    }

    /// Large commits from as many threads as Dispatch's global queues will run at once (each holds
    /// its thread while it waits for its sealing): every one lands, none waits for another forever.
    @Test func largeCommitsFromManyThreadsAtOnceAllLand() throws {
        let node = try TestNode()
        defer { node.remove() }
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { k in
            let intents: [Intent] = (0..<Sealing.backgroundChanges).map {
                .put(collection: "projects", recordID: "t\(k)-\($0)", fields: [.init("name", .text("n\($0)"))])
            }
            do {
                try node.store.commit(intents)
            } catch {
                failures.withLock { $0.append("\(k): \(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        #expect(try node.store.vector()[node.store.info.nodeID] == 8)
        #expect(try node.store.record("projects", "t7-255")?.fields["name"] == .text("n255"))
    }

    /// A large commit sealed in the background carries a signature that verifies over its bytes.
    @Test func aLargeCommitIsSignedOverItsBytes() throws {
        let node = try TestNode()
        defer { node.remove() }
        let intents: [Intent] = (0..<Sealing.backgroundChanges).map {
            .put(collection: "projects", recordID: "p\($0)", fields: [.init("name", .text("n\($0)"))])
        }
        let made = try node.store.commit(intents)
        let logged = try #require(try node.store.transactions(missingFrom: VersionVector()).transactions.first)
        #expect(logged.transaction == made)
        #expect(logged.body == WireCodec.encode(made))
        #expect(node.store.info.publicKey.verifies(logged.signature, for: SigningPayload.transaction(logged.body)))
    }
}
