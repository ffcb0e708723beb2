import Foundation
import Testing

/// Runs the real `syncnode` binary as separate processes on real data directories.
@Suite struct CLIEndToEndTests {
    @Test func concurrentEditsExchangedByBundlesConvergeWithOneConflictOnBoth() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let a = dir.path("a").path
        let b = dir.path("b").path
        try Federation.hq(b, label: "hq-1")
        try Federation.member(a, site: "lintan", label: "lintan-office-1", hq: b)
        #expect(try Binary.run(["record", "put", "--data", a, "projects", "lt-school", "name=东丽小学", "funds:=5000000"]).status == 0)
        #expect(try Binary.run(["record", "put", "--data", b, "projects", "lt-school", "name=临潭县东丽小学"]).status == 0)

        let ab = dir.path("a-to-b.bundle").path
        let ba = dir.path("b-to-a.bundle").path
        #expect(try Binary.run(["bundle", "export", "--data", a, "--out", ab]).status == 0)
        #expect(try Binary.run(["bundle", "export", "--data", b, "--out", ba]).status == 0)
        #expect(try Binary.run(["bundle", "import", "--data", b, ab]).status == 0)
        #expect(try Binary.run(["bundle", "import", "--data", a, ba]).status == 0)

        let getA = try Binary.run(["record", "get", "--data", a, "projects", "lt-school", "--json"])
        let getB = try Binary.run(["record", "get", "--data", b, "projects", "lt-school", "--json"])
        #expect(getA.status == 0)
        #expect(getA.stdout == getB.stdout)
        let fields = try JSONSerialization.jsonObject(with: Data(getA.stdout.utf8)) as? [String: Any]
        #expect(fields?["funds"] as? Int == 5_000_000)

        for node in [a, b] {
            let conflicts = try Binary.run(["conflicts", "--data", node, "--json"])
            let list = try JSONSerialization.jsonObject(with: Data(conflicts.stdout.utf8)) as? [[String: Any]]
            #expect(list?.count == 1, "node \(node): \(conflicts.stdout)")
            #expect(list?.first?["field"] as? String == "name")
        }
        let conflictsA = try Binary.run(["conflicts", "--data", a, "--json"]).stdout
        #expect(conflictsA == (try Binary.run(["conflicts", "--data", b, "--json"]).stdout))

        // Re-importing a bundle changes nothing.
        let statusBefore = try Binary.run(["status", "--data", b, "--json"]).stdout
        let again = try Binary.run(["bundle", "import", "--data", b, ab, "--json"])
        #expect(again.status == 0)
        #expect(again.stdout.contains("\"applied\":0"))
        #expect(try Binary.run(["status", "--data", b, "--json"]).stdout == statusBefore)
    }

    @Test func corruptedBundleExitsNonZeroAndChangesNothing() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let a = dir.path("a").path
        let b = dir.path("b").path
        try Federation.hq(b)
        try Federation.member(a, site: "gangu", hq: b)
        try Binary.run(["record", "put", "--data", a, "projects", "gg-dorm", "name=甘谷一中宿舍"])
        let file = dir.path("x.bundle")
        // A sealed bundle is refused by its sender's signature, a readable one by its checksum.
        for (flags, says) in [([], "its signature does not verify"), (["--unsealed"], "checksum")] {
            try Binary.run(["bundle", "export", "--data", a, "--out", file.path] + flags)
            var bytes = [UInt8](try Data(contentsOf: file))
            bytes[bytes.count - 10] ^= 0xFF
            try Data(bytes).write(to: file)
            let before = try Binary.run(["status", "--data", b, "--json"]).stdout
            let result = try Binary.run(["bundle", "import", "--data", b, file.path])
            #expect(result.status == 65)
            #expect(result.stderr.contains(says), "\(result.stderr)")
            #expect(try Binary.run(["status", "--data", b, "--json"]).stdout == before)
        }
    }

    @Test func ledgerAppendReversalAndHistoryWorkFromTheCommandLine() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let a = dir.path("a").path
        try Federation.hq(a)
        let id = try Binary.run(["ledger", "append", "--data", a, "disbursements", "county=临潭县", "amount:=2500000", "stage=advance"])
        #expect(id.status == 0)
        let entry = id.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let reversal = try Binary.run(["ledger", "append", "--data", a, "disbursements", "amount:=-2500000", "--reverses", entry])
        #expect(reversal.status == 0)
        let list = try Binary.run(["ledger", "list", "--data", a, "disbursements", "--json"])
        let rows = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]
        #expect(rows?.count == 2)
        #expect((rows?.first { $0["id"] as? String == entry }?["reversedBy"] as? [String])?.count == 1)

        try Binary.run(["record", "put", "--data", a, "projects", "p", "stage=approved"])
        try Binary.run(["record", "put", "--data", a, "projects", "p", "stage=started"])
        let history = try Binary.run(["record", "history", "--data", a, "projects", "p", "--json"])
        let versions = try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]]
        #expect(versions?.map { $0["value"] as? String } == ["approved", "started"])
        #expect(versions?.map { $0["current"] as? Bool } == [false, true])
    }
}
