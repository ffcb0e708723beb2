import SyncProtocol
import Testing

/// `Transaction.problem` checks each distinct name once and finds a field written twice per record
/// (falling back to a full check when a record comes back after others); these pin what it finds.
@Suite("Transaction checks")
struct TransactionCheckTests {
    static let node = NodeID(high: 1, low: 2)
    static let hlc = Timestamp(millis: 1_000, counter: 0, node: node)

    static func transaction(_ writes: [(String, String, String)]) -> Transaction {
        Transaction(
            origin: node, seq: 1, hlc: hlc,
            changes: writes.map { .set(FieldWrite(collection: $0.0, recordID: $0.1, field: $0.2, value: .int(1))) })
    }

    @Test func aFieldWrittenTwiceSideBySideIsFound() {
        let p = Self.transaction([("projects", "p1", "name"), ("projects", "p1", "name")]).problem(maxValueBytes: 100)
        #expect(p == "field projects/p1.name is written twice in one transaction")
    }

    @Test func aFieldWrittenTwiceWithOtherRecordsBetweenIsFound() {
        let t = Self.transaction([("projects", "p1", "name"), ("projects", "p2", "name"), ("projects", "p1", "stage"), ("projects", "p1", "name")])
        #expect(t.problem(maxValueBytes: 100) == "field projects/p1.name is written twice in one transaction")
    }

    @Test func theSameFieldOfOtherRecordsOrCollectionsIsFine() {
        let t = Self.transaction([
            ("projects", "p1", "name"), ("projects", "p2", "name"), ("funds", "p1", "name"), ("projects", "p1", "stage"), ("funds", "p2", "name"),
        ])
        #expect(t.problem(maxValueBytes: 100) == nil)
    }

    @Test func everyDistinctNameIsStillChecked() {
        #expect(Self.transaction([("projects", "p1", "name"), ("projects", "p2", "_x")]).problem(maxValueBytes: 100)?.contains("reserved") == true)
        #expect(Self.transaction([("projects", "p1", "name"), ("bad\u{1}", "p2", "x")]).problem(maxValueBytes: 100)?.contains("control") == true)
        #expect(Self.transaction([("projects", "p1", "name"), ("projects", "", "x")]).problem(maxValueBytes: 100)?.contains("empty") == true)
        // More distinct field names than the check remembers.
        let many = (0..<100).map { ("projects", "p1", "f\($0)") } + [("projects", "p1", "_bad")]
        #expect(Self.transaction(many).problem(maxValueBytes: 100)?.contains("reserved") == true)
    }
}
