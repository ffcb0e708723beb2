import Foundation
import SyncNode
import SyncProtocol
import Testing

/// Regressions found in review of storage v4: decisions about which field a write lands in, and
/// whether a transaction is acceptable, must not depend on what a process has cached or on the
/// order versions arrive in.
@Suite struct ExactNamesTests {
    static let precomposed = "caf\u{E9}"  // é as one scalar (NFC)
    static let decomposed = "cafe\u{301}"  // e + combining acute (NFD)

    static func received(_ t: Transaction) -> ReceivedTransaction {
        ReceivedTransaction(transaction: t, body: WireCodec.encode(t))
    }

    /// Swift's `==` calls the two spellings equal; SQLite and the wire do not. Before the fix, the
    /// process that had interned one spelling filed the other under it (one field), while a freshly
    /// opened replica kept two: the replicas diverged for good.
    @Test func namesThatDifferOnlyInNormalisationAreTwoFieldsOnEveryReplica() throws {
        #expect(Self.precomposed == Self.decomposed)
        let a = try TestNode(site: "lintan")
        let b = try TestNode(site: "gangu")
        defer {
            a.remove()
            b.remove()
        }
        try a.store.commit([.put(collection: "projects", recordID: "p1", fields: [FieldAssignment(Self.precomposed, .int(1))])])
        try a.store.commit([.put(collection: "projects", recordID: "p1", fields: [FieldAssignment(Self.decomposed, .int(2))])])
        let all = try a.store.transactions(missingFrom: VersionVector()).transactions
        #expect(all.count == 2)

        // b applies the first, is reopened (empty caches), then applies the second.
        _ = try b.store.apply([all[0]])
        let dir = URL(fileURLWithPath: b.store.path).deletingLastPathComponent()
        try b.store.close()
        let reopened = try Store.open(dir)
        defer { try? reopened.close() }
        _ = try reopened.apply([all[1]])

        let digest = try a.store.stateDigest()
        #expect(digest == (try reopened.stateDigest()))
        #expect(digest.components(separatedBy: "\n").filter { $0.hasPrefix("s projects/p1.caf") }.count == 2)
        let history = try a.store.history("projects", "p1").filter { $0.field.hasPrefix("caf") }
        #expect(history.count == 2 && history.allSatisfy(\.isHead))
        #expect(history.contains { $0.field.utf8.elementsEqual(Self.precomposed.utf8) })
        #expect(history.contains { $0.field.utf8.elementsEqual(Self.decomposed.utf8) })
    }

    /// `sameBytes` compares UTF-8 bytes, whatever the strings' storage: inline short strings,
    /// heap strings made separately, one string and its copy.
    @Test func sameBytesComparesBytesWhateverTheStorage() {
        let long = String(repeating: "长", count: 40)
        let longAgain = String(decoding: Array(long.utf8), as: UTF8.self)
        let cases: [(String, String, Bool)] = [
            ("", "", true), ("name", "name", true), ("name", "nams", false), ("name", "names", false),
            (Self.precomposed, Self.decomposed, false), (Self.precomposed, "caf\u{E9}", true), (long, longAgain, true), (long, long, true),
            (long, String(long.dropLast()) + "短", false), (long + "x", long + "y", false), ("项目-1", "项目-1", true),
        ]
        for (a, b, same) in cases {
            #expect(a.sameBytes(as: b) == same, "\(a) vs \(b)")
            #expect(b.sameBytes(as: a) == same, "\(b) vs \(a)")
            #expect(same == a.utf8.elementsEqual(b.utf8))
        }
        #expect(Self.precomposed == Self.decomposed, "Swift's == calls these equal; the bytes differ")
    }

    @Test func aTransactionWritingBothSpellingsIsNotADuplicate() {
        let origin = NodeID(high: 7, low: 7)
        let t = Transaction(
            origin: origin, seq: 1, hlc: Timestamp(millis: 1_000, counter: 0, node: origin),
            changes: [
                .set(FieldWrite(collection: "projects", recordID: "p1", field: Self.precomposed, value: .int(1))),
                .set(FieldWrite(collection: "projects", recordID: "p1", field: Self.decomposed, value: .int(2))),
            ])
        #expect(t.problem(maxValueBytes: 100) == nil)
    }

    /// Before the fix a second transaction reusing its origin's clock was refused on a replica that
    /// still held the first version live, and kept as a conflicting head on one where a later write
    /// had replaced it: the same transactions, different states. Now it is refused everywhere.
    @Test func anOriginReusingItsClockIsRefusedWhateverArrivedBefore() throws {
        let origin = NodeID(high: 9, low: 1)
        let x = Timestamp(millis: 1_700_000_000_000, counter: 0, node: origin)
        func write(_ seq: UInt64, _ value: String) -> ReceivedTransaction {
            Self.received(
                Transaction(
                    origin: origin, seq: seq, hlc: x,
                    changes: [.set(FieldWrite(collection: "projects", recordID: "p1", field: "stage", value: .text(value)))]))
        }
        let other = NodeID(high: 9, low: 2)
        let replacing = Self.received(
            Transaction(
                origin: other, seq: 1, hlc: Timestamp(millis: 1_700_000_000_500, counter: 0, node: other),
                changes: [.set(FieldWrite(collection: "projects", recordID: "p1", field: "stage", value: .text("c"), base: x))]))

        // Replica 1: the two transactions in one batch; replica 2: the clock's first version is
        // replaced before the second arrives.
        let one = try TestNode(site: "lintan")
        let two = try TestNode(site: "gangu")
        defer {
            one.remove()
            two.remove()
        }
        let first = #expect(throws: SyncNodeError.self) { try one.store.apply([write(1, "a"), write(2, "b")]) }
        #expect(first?.code == .protocolViolation)
        _ = try two.store.apply([write(1, "a")])
        _ = try two.store.apply([replacing])
        let before = try two.store.storedDigest()
        let second = #expect(throws: SyncNodeError.self) { try two.store.apply([write(2, "b")]) }
        #expect(second?.code == .protocolViolation)
        #expect(second?.message.contains("not later than") == true)
        #expect(try two.store.storedDigest() == before)
        #expect(try two.store.conflicts().isEmpty)
    }
}
