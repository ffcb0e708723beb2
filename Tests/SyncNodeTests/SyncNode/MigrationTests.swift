import Foundation
import GRDB
import SyncNode
import SyncProtocol
import Testing

/// Nodes made by the previous storage layout (schema v3: one row per field version) are upgraded
/// in place when opened. `Fixtures/v3-nodes` holds two such nodes (an HQ and a Chengde county node
/// that exchanged bundles: records, a deletion, an unresolved conflict at HQ, a resolved one at
/// Chengde, ledger entries with a reversal) and what the v3 binary printed for them.
@Suite("Upgrade of v3 nodes")
struct MigrationTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/v3-nodes")

    /// Copies a fixture node into a fresh directory (the fixture itself is never opened).
    static func copy(_ name: String, into dir: TempDirectory) throws -> String {
        let target = dir.path(name).path
        try FileManager.default.copyItem(atPath: fixtures.appendingPathComponent(name).path, toPath: target)
        return target
    }

    static let outputs: [(file: String, args: [String])] =
        [
            ("records.json", ["record", "list", "projects", "--json", "--deleted"]),
            ("conflicts.json", ["conflicts", "--json"]),
            ("ledger.json", ["ledger", "list", "funds", "--json"]),
            ("vector.json", ["vector", "--json"]),
        ] + ["p1", "p2", "cd-1", "cd-2"].map { ("history-\($0).json", ["record", "history", "projects", $0, "--json"]) }

    @Test("an upgraded node answers exactly as it did before", arguments: ["hq", "cd"])
    func upgradedNodeAnswersAsBefore(node: String) throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let data = try Self.copy(node, into: dir)
        for (file, args) in Self.outputs {
            let expected = try String(contentsOf: Self.fixtures.appendingPathComponent("expect-\(node)/\(file)"), encoding: .utf8)
            let r = try Binary.run(args + ["--data", data])
            #expect(r.status == 0, "\(args): \(r.stderr)")
            #expect(r.stdout == expected, "\(args) differs after the upgrade")
        }
        // The old per-field tables are gone; the record table holds one row per record.
        let queue = try DatabaseQueue(path: data + "/node.sqlite")
        let tables = try queue.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") }
        #expect(!tables.contains("field_version") && !tables.contains("field_state") && !tables.contains("field_ref"))
        #expect(tables.contains("record") && tables.contains("field_history"))
        // Held work is counted and dropped by sender and by age through indexes (v12).
        let heldIndexes = try queue.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'held'")
        }
        #expect(Set(heldIndexes).isSuperset(of: ["held_via", "held_received"]))
        let records = try queue.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM record WHERE record_id LIKE 'cd-%' OR record_id LIKE 'p%'")
        }
        #expect(records == (node == "hq" ? 4 : 5))
    }

    @Test("a refused transaction and a dangling reference survive the upgrade")
    func refusedRowsAndDanglingReferencesAreCarriedOver() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let data = try Self.copy("hq", into: dir)
        // Add to the v3 tables what the fixture lacks: a refused transaction of another origin (kept
        // in the log and the vector, relayed as its signed original) and a replaced timestamp whose version
        // has not arrived (a v3 `field_ref` row with no `field_version`).
        let origin = NodeID(high: 0x0102_0304_0506_0708, low: 0x1112_1314_1516_1718)
        let clock = Timestamp(millis: 1_800_000_000_000, counter: 3, node: origin)
        let missing = Timestamp(millis: 1_700_000_000_000, counter: 1, node: origin)
        let body = WireCodec.encode(
            Transaction(
                origin: origin, seq: 1, hlc: clock,
                changes: [.set(FieldWrite(collection: "projects", recordID: "gg-1", field: "name", value: .text("x")))]))
        let queue = try DatabaseQueue(path: data + "/node.sqlite")
        try queue.write { db in
            try db.execute(
                sql: "INSERT INTO log (origin, seq, hlc, body, received, sig, refused) VALUES (?, 1, ?, ?, 0, ?, 'refused: a test refusal')",
                arguments: [Data(origin.bytes), Data(clock.bytes), Data(body), Data(repeating: 7, count: 64)])
            try db.execute(sql: "INSERT INTO vector (origin, seq) VALUES (?, 1)", arguments: [Data(origin.bytes)])
            try db.execute(
                sql: "INSERT INTO field_ref (collection, record_id, field, ts) VALUES ('projects', 'p1', 'stage', ?)",
                arguments: [Data(missing.bytes)])
        }
        try queue.close()

        let store = try Store.open(URL(fileURLWithPath: data))
        defer { try? store.close() }
        let sent = try store.transactions(missingFrom: VersionVector()).transactions
        // A refused transaction travels as its signed original, for every receiver to judge.
        let refused = sent.first { $0.transaction.origin == origin }
        #expect(refused?.refusal == nil)
        #expect(refused?.body == body)
        #expect(refused?.signature == [UInt8](repeating: 7, count: 64))
        #expect(refused?.transaction.hlc == clock)
        #expect(try store.vector()[origin] == 1)
        let migrated = try DatabaseQueue(path: data + "/node.sqlite")
        defer { try? migrated.close() }
        #expect(try migrated.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM dangling_ref") } == 1)
        #expect(try migrated.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM log WHERE refused IS NOT NULL") } == 1)
    }

    @Test("upgraded nodes still sync (their signed log is intact) and equal a node built from their transactions")
    func upgradedNodesSyncAndMatchAReplay() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = try Self.copy("hq", into: dir)
        let cd = try Self.copy("cd", into: dir)
        // Each side exports what the other lacks; the receiver verifies every signature.
        for (from, to) in [(cd, hq), (hq, cd)] {
            let vectorFile = dir.path("vector.json").path
            let v = try Binary.run(["vector", "--json", "--data", to])
            try v.stdout.write(toFile: vectorFile, atomically: true, encoding: .utf8)
            let bundle = dir.path("b.bundle").path
            try? FileManager.default.removeItem(atPath: bundle)
            let e = try Binary.run(["bundle", "export", "--data", from, "--out", bundle, "--since", vectorFile])
            #expect(e.status == 0, "\(e.stderr)")
            let i = try Binary.run(["bundle", "import", "--data", to, bundle])
            #expect(i.status == 0, "\(i.stderr)")
            #expect(!i.stdout.contains("refused"), "\(i.stdout)")
        }
        // Chengde's resolution reached HQ: no conflict is left anywhere.
        #expect(try Binary.run(["conflicts", "--json", "--data", hq]).stdout == "[]\n")
        let a = try Store.open(URL(fileURLWithPath: hq))
        let b = try Store.open(URL(fileURLWithPath: cd))
        #expect(try a.stateDigest() == b.stateDigest())
        // A fresh node that applies every transaction (in log order) reaches the same state.
        let fresh = try Store.create(in: dir.path("fresh"), site: "replay", label: nil, trust: .open)
        let all = try a.transactions(missingFrom: VersionVector()).transactions
        #expect(all.count >= 20)
        let report = try fresh.apply(all)
        #expect(report.applied == all.count)
        #expect(try fresh.stateDigest() == a.stateDigest())
        #expect(try fresh.records("projects", includeDeleted: true) == a.records("projects", includeDeleted: true))
        try a.close()
        try b.close()
        try fresh.close()
    }
}
