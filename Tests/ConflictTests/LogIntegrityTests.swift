import Foundation
import SyncNode
import SyncProtocol
import Testing

/// Whatever a local write is given, what reaches the change log must be relayable: every body
/// decodes, and every ledger entry written is either kept or listed as a duplicate.
///
/// These tests caught real defects (see the Regression notes); they guard the fixes.
@Suite("Log integrity")
struct LogIntegrityTests {
    /// Regression (found by this suite, fixed in Sources/SyncProtocol/WireCodec.swift `encode`, Sources/SyncProtocol/Transaction.swift
    /// `problem`): a non-finite real is accepted by `commit`; `WireCodec.encode` swallows the JSON
    /// encoding error and returns `[]`, and that empty body is stored in the log. From then on
    /// `transactions(missingFrom:)` throws for every peer that lacks it, so the node can never sync
    /// again. (NaN is also stored as NULL, so the local value differs from the committed one.)
    @Test(arguments: [Double.infinity, -Double.infinity, Double.nan])
    func nonFiniteRealsAreRefusedBeforeTheyReachTheLog(_ bad: Double) throws {
        let dir = TempDir("integrity")
        defer { dir.remove() }
        let a = try Replica.make(in: dir, "a", millis: 1_000_000)
        let b = try Replica.make(in: dir, "b", millis: 1_000_000)
        try a.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("x", .real(2.5))])])

        let put = #expect(throws: SyncNodeError.self) {
            try a.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("x", .real(bad))])])
        }
        #expect(put?.code == .invalidInput)
        let append = #expect(throws: SyncNodeError.self) {
            try a.store.commit([.append(ledger: "cash", entryID: "e1", fields: [FieldAssignment("amount", .real(bad))])])
        }
        #expect(append?.code == .invalidInput)

        // Whatever happened above, the log still relays.
        let held = try a.store.transactions(missingFrom: VersionVector()).transactions
        #expect(held.allSatisfy { !$0.body.isEmpty })
        try exchange(from: a.store, to: b.store)
        #expect(try b.store.stateDigest() == a.store.stateDigest())
    }

    /// The wire codec must never produce an empty body for a transaction it was given.
    @Test func encodingANonFiniteRealNeverYieldsAnEmptyBody() {
        let t = Transaction(
            origin: node(1), seq: 1, hlc: ts(5, 0, 1),
            changes: [.set(FieldWrite(collection: "c", recordID: "r", field: "x", value: .real(.infinity)))])
        #expect(
            t.problem(maxValueBytes: 1024) != nil || !WireCodec.encode(t).isEmpty,
            "either the transaction is malformed, or it encodes to bytes that decode again")
    }

    /// Regression (found by this suite, fixed in Sources/SyncNode/Store+LocalWrite.swift, `changes(for:)` case `.append`; and
    /// Sources/SyncProtocol/Transaction.swift `problem`): the "id already taken" check only looks
    /// at the database, so one commit may append the same explicit entry id several times. The
    /// second becomes a ledger duplicate and the third is silently lost (`ledger_duplicate` is keyed
    /// by (ledger, entry_id, ts) and all three share the transaction's timestamp).
    @Test func sameEntryIDTwiceInOneCommitIsRefused() throws {
        let dir = TempDir("integrity")
        defer { dir.remove() }
        let a = try Replica.make(in: dir, "a", millis: 1_000_000)
        let intents: [Intent] = (1...3).map { .append(ledger: "cash", entryID: "e1", fields: [FieldAssignment("amount", .int(Int64($0)))]) }
        let error = #expect(throws: SyncNodeError.self) { try a.store.commit(intents) }
        #expect(error?.code == .invalidInput)
        #expect(try a.store.ledger("cash").count + a.store.ledgerDuplicates().count <= 1, "no entry is written, and none is lost")
    }

    /// What a ledger holds after the same id was written by three nodes: three entries, one per
    /// origin; nothing is a duplicate and nothing is lost.
    @Test func everyLedgerWriteIsKeptOrListedAsDuplicate() throws {
        let dir = TempDir("integrity")
        defer { dir.remove() }
        let nodes = try (0..<3).map { try Replica.make(in: dir, "n\($0)", millis: 1_000_000 + UInt64($0)) }
        var stamps: [Timestamp] = []
        for (i, r) in nodes.enumerated() {
            stamps.append(try r.store.commit([.append(ledger: "cash", entryID: "e1", fields: [FieldAssignment("amount", .int(Int64(i)))])]).hlc)
        }
        try fullExchange(nodes.map(\.store))
        for r in nodes {
            #expect(try r.store.ledger("cash").map(\.ts) == stamps.sorted(), "\(r.name)")
            #expect(try r.store.ledgerDuplicates().isEmpty, "\(r.name)")
        }
    }
}
