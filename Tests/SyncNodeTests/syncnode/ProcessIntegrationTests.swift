import Foundation
import Testing

/// HQ (`serve`) and three county nodes as real processes on loopback, synced over HTTP.
@Suite struct ProcessIntegrationTests {
    private func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) }

    /// Everything a node holds that must be identical on every node.
    private func snapshot(_ data: String) throws -> String {
        var parts: [String] = []
        for collection in ["projects", "counties"] {
            parts.append(try Binary.run(["record", "list", "--data", data, collection, "--json", "--deleted"]).stdout)
        }
        parts.append(try Binary.run(["ledger", "list", "--data", data, "trainings", "--json"]).stdout)
        parts.append(try Binary.run(["conflicts", "--data", data, "--json"]).stdout)
        parts.append(try Binary.run(["vector", "--data", data, "--json"]).stdout)
        return parts.joined(separator: "\n")
    }

    @Test func hqAndThreeCountiesConvergeOverHTTPAfterWorkingOffline() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        let counties = ["chengde", "lintan", "gangu"]
        let data = Dictionary(uniqueKeysWithValues: counties.map { ($0, dir.path($0).path) })
        try Federation.hq(hq)
        for c in counties { try Federation.member(data[c]!, site: c, label: "\(c)-office-1", hq: hq) }

        // Learn a free port for HQ, then stop it: the counties work while HQ is down.
        let first = try ServeProcess(data: hq)
        let port = first.port
        #expect(first.stop() == 0)
        try Binary.run(["record", "put", "--data", hq, "counties", "lintan", "name=临潭县", "yearly_aid_fen:=10000000000"])

        for c in counties {
            #expect(try Binary.run(["record", "put", "--data", data[c]!, "projects", "\(c)-school", "name=东丽小学", "county=\(c)"]).status == 0)
            #expect(try Binary.run(["ledger", "append", "--data", data[c]!, "trainings", "county=\(c)", "attendees:=40"]).status == 0)
            try Binary.run(["peer", "add", "--data", data[c]!, "http://127.0.0.1:\(port)"])
        }
        // Lintan and HQ edit the same field without seeing each other: a conflict.
        try Binary.run(["record", "put", "--data", data["lintan"]!, "projects", "lt-trade-centre", "lead_unit=区商务委"])
        try Binary.run(["record", "put", "--data", hq, "projects", "lt-trade-centre", "lead_unit=区农经委"])

        let offline = try Binary.run(["sync", "--data", data["lintan"]!, "--connect-timeout", "2"])
        #expect(offline.status == 69)
        #expect(offline.stderr.contains("cannot connect"))
        #expect(try Binary.run(["record", "get", "--data", data["lintan"]!, "projects", "lintan-school"]).status == 0)
        let status = try json(try Binary.run(["status", "--data", data["lintan"]!, "--json"]).stdout) as? [String: Any]
        let peers = status?["peers"] as? [[String: Any]]
        #expect(peers?.first?["unsent"] as? Int == 3)
        // HQ's registry (with Lintan's approval) has not reached Lintan yet: nothing lost meanwhile.
        #expect((peers?.first?["lastError"] as? String)?.contains("cannot connect") == true)

        let server = try ServeProcess(data: hq, port: port)
        defer { server.stop() }
        for _ in 0..<2 {
            for c in counties {
                let result = try Binary.run(["sync", "--data", data[c]!])
                #expect(result.status == 0, "\(c): \(result.stderr)")
            }
        }
        let reference = try snapshot(hq)
        for c in counties { #expect(try snapshot(data[c]!) == reference, "\(c) differs from HQ") }

        // Chengde's school reached Gangu only through HQ.
        let relayed = try Binary.run(["record", "get", "--data", data["gangu"]!, "projects", "chengde-school", "--json"])
        #expect(relayed.status == 0)
        #expect(relayed.stdout.contains("东丽小学"))
        for node in [hq] + counties.map({ data[$0]! }) {
            let conflicts = try json(try Binary.run(["conflicts", "--data", node, "--json"]).stdout) as? [[String: Any]]
            #expect(conflicts?.count == 1)
            #expect(conflicts?.first?["id"] as? String == "lt-trade-centre")
        }
        let after = try json(try Binary.run(["status", "--data", data["lintan"]!, "--json"]).stdout) as? [String: Any]
        let peer = (after?["peers"] as? [[String: Any]])?.first
        #expect(peer?["unsent"] as? Int == 0)
        #expect(peer?["lastSuccess"] != nil)
        #expect(peer?["label"] as? String == "dongli-hq")
        #expect(server.stop() == 0)
    }

    @Test func serveSyncsWithRememberedPeersOnItsOwn() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        let county = dir.path("lintan").path
        try Federation.hq(hq)
        try Federation.member(county, site: "lintan", hq: hq)
        let hqServer = try ServeProcess(data: hq)
        defer { hqServer.stop() }
        try Binary.run(["peer", "add", "--data", county, hqServer.url])
        let countyServer = try ServeProcess(data: county, extra: ["--every", "1h"])
        defer { countyServer.stop() }
        // A local write while the peer is reachable is pushed at once, not after an hour.
        Thread.sleep(forTimeInterval: 1.5)
        try Binary.run(["record", "put", "--data", county, "projects", "lt-clinic", "name=东丽卫生院"])
        var arrived = false
        for _ in 0..<100 where !arrived {
            Thread.sleep(forTimeInterval: 0.1)
            arrived = (try Binary.run(["record", "get", "--data", hq, "projects", "lt-clinic"])).status == 0
        }
        #expect(arrived)
        #expect(countyServer.stop() == 0)
    }
}
