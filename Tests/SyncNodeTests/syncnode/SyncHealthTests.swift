import Foundation
import SyncProtocol
import Testing

/// HQ's sync report and `node list` show, per registered node, what its last request told the
/// serving node: when it was heard from, its clock offset, its protocol, and how many of its own
/// transactions have not arrived yet. Counties pull from HQ, so HQ learns this as the server.
@Suite struct SyncHealthTests {
    @Test func hqSeesEachCallersContactSkewProtocolAndWhatItHasNotSentYet() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (hq, lintan) = try Federation.hqAndLintan(in: dir)
        let gangu = dir.path("gangu").path
        try Federation.member(gangu, site: "gangu", label: "gangu-1", hq: hq)

        // Gangu's clock is 3 minutes ahead (within the drift limit): it syncs fully.
        var server = try ServeProcess(data: hq)
        #expect(
            try await Binary.runAsync(["sync", "--data", gangu, "--peer", server.url], environment: ["SYNCNODE_CLOCK_OFFSET_MS": "180000"]).status
                == 0)
        #expect(server.stop() == 0)

        // Lintan records 30 transactions whose push HQ turns away (a body limit): its pull told HQ
        // how far it is, so HQ knows what has not arrived.
        for i in 1...30 {
            #expect(
                try await Binary.runAsync(["record", "put", "--data", lintan, "projects", "lt-\(i)", "note=\(String(repeating: "x", count: 400))"])
                    .status == 0)
        }
        server = try ServeProcess(data: hq, extra: ["--max-body-bytes", "4000"])
        let cut = try await Binary.runAsync(["sync", "--data", lintan, "--peer", server.url])
        #expect(cut.status != 0, "the push should have been turned away: \(cut.stdout)")
        #expect(server.stop() == 0)

        let report = try await Binary.runAsync(["report", "sync", "--data", hq, "--json"])
        #expect(report.status == 0, "\(report.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [[String: Any]])
        let bySite = Dictionary(rows.map { ($0["siteId"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        let g = try #require(bySite["gangu"], "\(report.stdout)")
        let l = try #require(bySite["lintan"], "\(report.stdout)")
        #expect(g["protocol"] as? Int == WireCodec.protocolVersion && l["protocol"] as? Int == WireCodec.protocolVersion)
        #expect((178...182).contains(g["clockSkewSeconds"] as? Int ?? 0), "\(g)")
        #expect((-2...2).contains(l["clockSkewSeconds"] as? Int ?? 99), "\(l)")
        #expect(g["notYetHere"] as? Int == 0, "\(g)")
        #expect(l["notYetHere"] as? Int == 30, "\(l)")
        let now = Date().timeIntervalSince1970 * 1000
        #expect(abs(Double(l["lastHeard"] as? Int ?? 0) - now) < 120_000, "\(l)")
        // The HQ row: it never calls itself.
        #expect(bySite["hq"]?["lastHeard"] is NSNull)
        // Chengde has no node yet: a row of its own says so, in words (issue 25), not a gap.
        let chengde = try #require(bySite["chengde"], "\(report.stdout)")
        #expect(chengde["stateId"] as? String == "no node" && chengde["state"] as? String == "尚无节点", "\(chengde)")
        #expect(chengde["site"] as? String == "承德县" && chengde["role"] as? String == "县" && chengde["lastHeard"] is NSNull, "\(chengde)")
        #expect(l["stateId"] as? String == "" && l["site"] as? String == "临潭县", "\(l)")

        // node list says the same in the operator's words.
        let list = try await Binary.runAsync(["node", "list", "--data", hq, "--json"])
        let nodes = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        let lintanNode = try #require(nodes.first { $0["site"] as? String == "lintan" }, "\(list.stdout)")
        #expect(lintanNode["notYetHere"] as? Int == 30, "\(lintanNode)")
        // And so does `status` at HQ, which has no peers of its own: the counties call it.
        let status = try await Binary.runAsync(["status", "--data", hq, "--json"])
        let statusObject = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        let callers = try #require(statusObject["nodes"] as? [[String: Any]], "\(status.stdout)")
        #expect(Set(callers.compactMap { $0["site"] as? String }) == ["lintan", "gangu"], "\(callers)")
        #expect(callers.first { $0["site"] as? String == "lintan" }?["notYetHere"] as? Int == 30, "\(callers)")
        #expect(callers.allSatisfy { ($0["lastHeard"] as? Int ?? 0) > 0 }, "\(callers)")
        let statusText = try await Binary.runAsync(["status", "--data", hq])
        #expect(statusText.stdout.contains("registered node") && statusText.stdout.contains("lintan-1"), "\(statusText.stdout)")

        // Once the push gets through, nothing is missing.
        server = try ServeProcess(data: hq)
        #expect(try await Binary.runAsync(["sync", "--data", lintan, "--peer", server.url]).status == 0)
        #expect(server.stop() == 0)
        let after = try await Binary.runAsync(["report", "sync", "--data", hq, "--json"])
        let afterRows = try #require(try JSONSerialization.jsonObject(with: Data(after.stdout.utf8)) as? [[String: Any]])
        #expect(afterRows.first { $0["siteId"] as? String == "lintan" }?["notYetHere"] as? Int == 0, "\(after.stdout)")
    }

    /// HQ typed the county's key wrong at approval (here: another node's key): the county's sync
    /// is refused with the fingerprint HQ holds and what to compare, and HQ's approval with the
    /// right key mends it.
    @Test func aKeyTypedWrongAtApprovalIsToldAsFingerprintsToCompare() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        let hqKey = try Federation.hq(hq)
        let lintan = dir.path("lintan").path
        #expect(try Binary.run(["init", "--data", lintan, "--site", "lintan", "--role", "county", "--trust", hqKey]).status == 0)
        let other = dir.path("other").path
        #expect(try Binary.run(["init", "--data", other, "--site", "lintan", "--role", "county", "--trust", hqKey]).status == 0)
        let id = try Binary.run(["identity", "--data", lintan, "--print", "id"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let wrongKey = try Binary.run(["identity", "--data", other, "--print", "public-key"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let printed = try Binary.run(["node", "approve", "--data", hq, id, "--key", wrongKey, "--site", "lintan", "--role", "county"])
        let wrongPrint = try Binary.run(["identity", "--data", other, "--print", "fingerprint"]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
        #expect(
            printed.status == 0 && (printed.stdout + printed.stderr).contains(wrongPrint),
            "approve prints the fingerprint to compare: \(printed.stderr)")

        let server = try ServeProcess(data: hq)
        defer { _ = server.stop() }
        let refused = try await Binary.runAsync(["sync", "--data", lintan, "--peer", server.url])
        #expect(refused.status == 78, "\(refused.stdout) \(refused.stderr)")
        #expect(refused.stderr.contains(wrongPrint) && refused.stderr.contains("syncnode identity"), "\(refused.stderr)")

        let rightKey = try Binary.run(["identity", "--data", lintan, "--print", "public-key"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let again = try Binary.run(["node", "approve", "--data", hq, id, "--key", rightKey, "--site", "lintan", "--role", "county"])
        #expect(again.status == 0, "\(again.stderr)")
        let synced = try await Binary.runAsync(["sync", "--data", lintan, "--peer", server.url])
        #expect(synced.status == 0, "after approval with the right key: \(synced.stderr)")
    }
}
