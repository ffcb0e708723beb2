import Foundation
import SyncNode
import SyncProtocol
import Testing

/// Issue 23, items 1 and 10: a node that signs two histories (a forged fork, or one identity on
/// two machines). Each test performs it through the real binary and real HTTP, with transactions
/// signed by the node's own key, and checks that every replica ends with the history HQ accepted
/// first and that the other one is kept and shown at HQ.
@Suite(.serialized) struct ForkTests {
    private func ownSeq(_ data: String, of node: NodeID) async throws -> UInt64 {
        let vector = try await jsonOutputAsync(["vector", "--data", data, "--json"]) as? [String: Any]
        return UInt64(vector?[node.hex] as? Int ?? 0)
    }

    private func trainings(_ data: String) async throws -> [Int] {
        let list = try await jsonOutputAsync(["ledger", "list", "--data", data, "trainings", "--json"]) as? [[String: Any]] ?? []
        return list.compactMap { ($0["fields"] as? [String: Any])?["attendees"] as? Int }.sorted()
    }

    private func forks(_ data: String) async throws -> [[String: Any]] {
        try await jsonOutputAsync(["forks", "--data", data, "--json"]) as? [[String: Any]] ?? []
    }

    /// Lintan syncs A/40 to HQ; its operator signs B/4000 under the same numbers with Lintan's
    /// key and hands them to Gangu in a bundle. Before: HQ kept A/40 and Gangu B/4000 for good,
    /// with nothing shown anywhere.
    @Test func aNodeThatSignsTwoHistoriesEndsEverywhereWithTheOneHQAcceptedFirst() async throws {
        let net = try ServedNetwork()
        defer { net.stop() }
        #expect(try await net.syncAsync("gangu").status == 0)
        try await Binary.runAsync(["record", "put", "--data", net["lintan"], "projects", "lt-eq", "name=A"])
        try await Binary.runAsync(["ledger", "append", "--data", net["lintan"], "trainings", "county=lintan", "attendees:=40"])
        #expect(try await net.syncAsync("lintan").status == 0)
        let lintan = try Forger(data: net["lintan"])
        let last = try await ownSeq(net["lintan"], of: lintan.node)
        #expect(last >= 2)

        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        let other = [
            try lintan.transaction(
                seq: last - 1, millis: now + 1000, [.set(FieldWrite(collection: "projects", recordID: "lt-eq", field: "name", value: .text("B")))]),
            try lintan.transaction(
                seq: last, millis: now + 1001,
                [.append(LedgerEntry(ledger: "trainings", entryID: "lt-eq-b", fields: ["county": .text("lintan"), "attendees": .int(4000)]))]),
        ]
        let file = net.dir.path("other-history.bundle")
        try Data(try Forger.bundle(frames: other.map(\.frame), claimedFrom: lintan.node, label: "lintan-office-1")).write(to: file)
        let imported = try await Binary.runAsync(["bundle", "import", "--data", net["gangu"], file.path])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(try await recordsAsync(net["gangu"], "projects")["lt-eq"]?["name"] as? String == "B")
        #expect(try await trainings(net["gangu"]) == [4000])

        for _ in 1...3 {
            for county in ["gangu", "lintan"] {
                let round = try await net.syncAsync(county)
                #expect(round.status == 0, "\(county): \(round.stderr)")
            }
        }
        for data in [net.hq, net["gangu"], net["lintan"]] {
            #expect(try await recordsAsync(data, "projects")["lt-eq"]?["name"] as? String == "A", "\(data)")
            #expect(try await trainings(data) == [40], "\(data)")
        }
        #expect(
            try await Binary.runAsync(["vector", "--data", net["gangu"], "--json"]).stdout
                == Binary.run(["vector", "--data", net.hq, "--json"]).stdout)

        // Gangu gave up the other history; HQ holds it as evidence, and says so.
        let atGangu = try await forks(net["gangu"])
        #expect(atGangu.count == 1 && atGangu.first?["origin"] as? String == lintan.node.hex)
        #expect(atGangu.first?["withdrawn"] as? Int == 2)
        let shown = try await Binary.runAsync(["forks", "--data", net.hq, "--json"]).stdout
        #expect(try CLIJSONShapeTests.keys(shown) == CLIJSONShapeTests.documentedShapes()["forks"], "docs/CLI.md's shape of `forks --json`: \(shown)")
        let atHQ = try await forks(net.hq)
        #expect(atHQ.count == 1 && atHQ.first?["origin"] as? String == lintan.node.hex, "\(atHQ)")
        #expect(atHQ.first?["firstSeq"] as? Int == Int(last - 1))
        let copies = try await jsonOutputAsync(["forks", "--data", net.hq, "lintan-office-1", "--json"]) as? [[String: Any]] ?? []
        #expect(copies.count == 2)
        #expect(copies.contains { ($0["changes"] as? [String])?.contains("projects/lt-eq.name = B") == true }, "\(copies)")
        let nodes = try await jsonOutputAsync(["node", "list", "--data", net.hq, "--json"]) as? [[String: Any]] ?? []
        #expect(nodes.first { $0["node"] as? String == lintan.node.hex }?["forkedAt"] as? Int == Int(last - 1))
        #expect(nodes.filter { $0["forkedAt"] is Int }.count == 1)
        // Every replica's history chains agree with their signatures after Gangu gave up its copy.
        for data in [net.hq, net["gangu"], net["lintan"]] {
            let check = try await jsonOutputAsync(["check", "--data", data, "--json"]) as? [String: Any]
            #expect(check?["healthy"] as? Bool == true, "\(data): \(String(describing: check))")
        }
        #expect(
            (try await jsonOutputAsync(["check", "--data", net.hq, "--json"]) as? [String: Any])?["forkedNodes"] as? [String] == [lintan.node.hex])
        let review = try await Binary.runAsync(["report", "review", "--data", net.hq])
        #expect(review.stdout.contains("lintan-office-1") && review.stdout.contains("两份"), "\(review.stdout)")
        let metrics = try await CurlClient().send(method: "GET", url: net.server.url + "/metrics", headers: [:], body: [])
        #expect(String(decoding: metrics.body, as: UTF8.self).contains("syncnode_forked_nodes 1"))
    }

    /// A copy that differs from the held one but is not signed by its origin says nothing of the
    /// origin: turned away, no fork shown.
    @Test func anAlteredCopyOfAHeldTransactionIsNotAFork() async throws {
        let net = try ServedNetwork(counties: ["lintan"])
        defer { net.stop() }
        try await Binary.runAsync(["record", "put", "--data", net["lintan"], "projects", "lt-1", "name=one"])
        #expect(try await net.syncAsync("lintan").status == 0)
        let lintan = try Forger(data: net["lintan"])
        let seq = try await ownSeq(net.hq, of: lintan.node)
        var copy = try lintan.transaction(
            seq: seq, millis: UInt64(Date().timeIntervalSince1970 * 1000),
            [.set(FieldWrite(collection: "projects", recordID: "lt-1", field: "name", value: .text("altered")))])
        copy.signature[0] ^= 1
        let file = net.dir.path("altered.bundle")
        try Data(try Forger.bundle(frames: [copy.frame], claimedFrom: lintan.node, label: "lintan-office-1")).write(to: file)
        _ = try await Binary.runAsync(["bundle", "import", "--data", net.hq, file.path])
        #expect(try await forks(net.hq).isEmpty)
        #expect(try await recordsAsync(net.hq, "projects")["lt-1"]?["name"] as? String == "one")
    }

    /// Item 10: Lintan's data directory copied to a second machine (a stolen backup, or a restore
    /// while the first still runs). Both write under the same numbers and sync with HQ. Before:
    /// the real Lintan adopted the other machine's work as its own history, silently. Now both
    /// sides keep every piece of work, and Lintan and HQ both show the two histories.
    @Test func oneIdentityOnTwoMachinesIsShownAtHQAndAtTheNode() async throws {
        let net = try ServedNetwork(counties: ["lintan"])
        defer { net.stop() }
        try await Binary.runAsync(["record", "put", "--data", net["lintan"], "projects", "lt-1", "name=one"])
        #expect(try await net.syncAsync("lintan").status == 0)
        let second = net.dir.path("lintan-second-machine").path
        try FileManager.default.copyItem(atPath: net["lintan"], toPath: second)
        try await Binary.runAsync(["record", "put", "--data", second, "projects", "lt-2", "name=from the second machine"])
        #expect(try await Binary.runAsync(["sync", "--data", second]).status == 0)
        try await Binary.runAsync(["record", "put", "--data", net["lintan"], "projects", "lt-3", "name=from the first machine"])
        let round = try await net.syncAsync("lintan")
        #expect(round.status == 0, "\(round.stderr)")
        #expect(try await net.syncAsync("lintan").status == 0)

        let lintan = try Forger(data: net["lintan"])
        for data in [net.hq, net["lintan"]] {
            #expect(try await recordsAsync(data, "projects").keys.sorted() == ["lt-1", "lt-2", "lt-3"], "\(data)")
            let shown = try await forks(data)
            #expect(shown.count == 1 && shown.first?["origin"] as? String == lintan.node.hex, "\(data): \(shown)")
        }
        let copies = try await jsonOutputAsync(["forks", "--data", net.hq, lintan.node.hex, "--json"]) as? [[String: Any]] ?? []
        #expect(copies.contains { ($0["changes"] as? [String])?.contains("projects/lt-3.name = from the first machine") == true }, "\(copies)")
        let status = try await Binary.runAsync(["status", "--data", net["lintan"]])
        #expect(status.stdout.contains("two histories") || status.stderr.contains("two histories"), "\(status.stdout)\(status.stderr)")
    }
}

/// Issue 23, item 8: a policy change racing work in flight. Every receiver must reach HQ's verdict
/// on each transaction whatever the order policy and work arrive in (HTTP, relay or bundle).
@Suite(.serialized) struct VerdictRaceTests {
    /// (a) Lintan's record reached Gangu by bundle before HQ narrowed Lintan's prefixes; HQ then
    /// refused it. Before: it stayed at Gangu and Lintan for good, and Gangu's rejections were empty.
    @Test func workHQRefusedAfterItReachedAPeerIsRemovedEverywhere() async throws {
        let net = try ServedNetwork(counties: ["lintan", "gangu", "chengde"])
        defer { net.stop() }
        // Lintan's sync brings it the registry: its bundle is sealed for Gangu by name.
        for county in ["gangu", "chengde", "lintan"] { #expect(try await net.syncAsync(county).status == 0) }
        try await Binary.runAsync(["record", "put", "--data", net["lintan"], "projects", "lt-a", "name=before the change"])
        let file = net.dir.path("lintan.bundle").path
        #expect(try await Binary.runAsync(["bundle", "export", "--data", net["lintan"], "--out", file, "--to", "gangu"]).status == 0)
        #expect(try await Binary.runAsync(["bundle", "import", "--data", net["gangu"], file]).status == 0)
        #expect(try await recordsAsync(net["gangu"], "projects")["lt-a"] != nil)
        #expect(try await Binary.runAsync(["record", "put", "--data", net.hq, "policy", "county-lintan", "prefixes=lintan-"]).status == 0)
        _ = try await net.syncAsync("lintan")
        #expect(try await recordsAsync(net.hq, "projects")["lt-a"] == nil)
        for _ in 1...2 {
            for county in ["gangu", "chengde", "lintan"] { _ = try await net.syncAsync(county) }
        }
        for data in [net.hq, net["gangu"], net["chengde"], net["lintan"]] {
            #expect(try await recordsAsync(data, "projects")["lt-a"] == nil, "\(data)")
        }
        #expect(try await rejectionsAsync(net["gangu"]).refused.contains { ($0["reason"] as? String ?? "").contains("lintan-") })
        // Verdicts are part of what replicas compare: after it, every check agrees.
        for data in [net.hq, net["gangu"]] {
            #expect((try await jsonOutputAsync(["check", "--data", data, "--json"]) as? [String: Any])?["healthy"] as? Bool == true)
        }
        #expect(try await forks(net.hq).isEmpty)
        #expect(try await forks(net["gangu"]).isEmpty)
    }

    /// (b) HQ accepted Lintan's record, then narrowed the prefixes; HQ's own bundle carries the
    /// policy write before the record, so Chengde refused it. Before: three HTTP rounds later
    /// Chengde still lacked it.
    @Test func workHQAcceptedIsNeverRefusedDownstream() async throws {
        let net = try ServedNetwork(counties: ["lintan", "chengde"])
        defer { net.stop() }
        #expect(try await net.syncAsync("chengde").status == 0)
        try await Binary.runAsync(["record", "put", "--data", net["lintan"], "projects", "lt-b", "name=accepted by HQ"])
        #expect(try await net.syncAsync("lintan").status == 0)
        #expect(try await Binary.runAsync(["record", "put", "--data", net.hq, "policy", "county-lintan", "prefixes=lintan-"]).status == 0)
        let file = net.dir.path("hq.bundle").path
        #expect(try await Binary.runAsync(["bundle", "export", "--data", net.hq, "--out", file]).status == 0)
        _ = try await Binary.runAsync(["bundle", "import", "--data", net["chengde"], file])
        #expect(try await recordsAsync(net["chengde"], "projects")["lt-b"] == nil, "the bundle alone carries no verdict of HQ's")
        #expect(try await net.syncAsync("chengde").status == 0)
        #expect(try await recordsAsync(net["chengde"], "projects")["lt-b"]?["name"] as? String == "accepted by HQ")
        #expect(!(try await rejectionsAsync(net["chengde"]).refused.contains { ($0["reason"] as? String ?? "").contains("lintan-") }))
        #expect((try await jsonOutputAsync(["check", "--data", net["chengde"], "--json"]) as? [String: Any])?["healthy"] as? Bool == true)
    }

    private func forks(_ data: String) async throws -> [[String: Any]] {
        try await jsonOutputAsync(["forks", "--data", data, "--json"]) as? [[String: Any]] ?? []
    }
}
