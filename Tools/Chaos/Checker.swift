import ChildProcess
import Crypto
import Foundation
import SyncProtocol

/// What the checker found in one run.
struct Verdict {
    var failures: [String] = []
    /// (acknowledged write, node) pairs verified present.
    var checks = 0
    /// Acknowledged writes missing on some node (each missing (write, node) pair counts once).
    var lost = 0
    var divergent = false
    var conflicts = 0
    var refusals = 0
}

extension ChaosRun {
    static let collections = ["projects", "counties", "visits", "registry", "policy", "attachments"]
    static let ledgers = ["trainings", "disbursements"]

    /// `s:TEXT` or `n:NUMBER`, the way the harness records what it wrote.
    static func valueKey(_ value: Any?) -> String {
        if let s = value as? String { return "s:" + s }
        if let n = value as? NSNumber { return "n:" + n.stringValue }
        return "null"
    }

    /// Compares every node after healing, with `serve` stopped:
    /// - records (with deleted ones), conflicts, vectors, refusals and held transactions are the
    ///   same on every node; ledgers too (entries the policy refused are on no node, their origin
    ///   included, once it has met HQ's verdict);
    /// - every acknowledged write is on every node (its exact version in `record history`, its
    ///   ledger entry id in `ledger list`);
    /// - no transaction applied twice (the log count equals the vector's sum, no version repeats
    ///   in any history, no ledger duplicates);
    /// - no refused transaction applied anywhere but at its origin.
    func check(converged: Bool) throws -> Verdict {
        var v = Verdict()
        func fail(_ s: String) { v.failures.append(s) }
        if !converged {
            v.divergent = true
            fail("the vectors did not become equal after healing")
        }

        // Identical state.
        var snapshots: [String: [String]] = [:]
        for node in nodes {
            var parts: [String] = []
            for c in Self.collections { parts.append("records \(c): " + (try cli.list(node, ["record", "list", c, "--json", "--deleted"]).stdout)) }
            parts.append("conflicts: " + (try cli.must(node, ["conflicts", "--json"]).stdout))
            parts.append("vector: " + (try cli.must(node, ["vector", "--json"]).stdout))
            snapshots[node.name] = parts
        }
        let reference = snapshots[hq.name]!
        for node in nodes where node !== hq {
            for (a, b) in zip(reference, snapshots[node.name]!) where a != b {
                v.divergent = true
                fail("\(node.name) differs from hq in \(a.prefix { $0 != ":" }):\n  hq:    \(a.prefix(600))\n  \(node.name): \(b.prefix(600))")
            }
        }
        v.conflicts = ((try cli.must(hq, ["conflicts", "--json"]).json() as? [Any]) ?? []).count

        // Refusals: the same set everywhere, nothing held, the expected ones present.
        var refusedSets: [String: Set<String>] = [:]
        for node in nodes {
            let r = try cli.must(node, ["rejections", "--json"]).json() as? [String: Any] ?? [:]
            let refused = (r["refused"] as? [[String: Any]] ?? []).filter { ($0["permanent"] as? Bool) ?? true }
            refusedSets[node.name] = Set(refused.map { "\($0["origin"] as? String ?? "")/\($0["seq"] as? Int ?? 0)" })
            if let held = r["held"] as? [Any], !held.isEmpty { fail("\(node.name) still holds \(held.count) transactions waiting for the registry") }
        }
        let allRefused = refusedSets.values.reduce(Set<String>()) { $0.union($1) }
        v.refusals = allRefused.count
        for node in nodes where refusedSets[node.name] != allRefused {
            v.divergent = true
            fail("\(node.name) lists refusals \(refusedSets[node.name]!.sorted()) but the union is \(allRefused.sorted())")
        }
        let expectedRefused = ackedEntries.filter(\.expectRefused).count
        if allRefused.filter({ $0.hasPrefix(relay.id + "/") }).count < expectedRefused {
            fail("the relay's \(expectedRefused) disbursements made as 'finance' before approval were not all refused: \(allRefused.sorted())")
        }

        // Ledgers: identical everywhere; refused entries are on no node.
        let refusedEntryIDs = Set(ackedEntries.filter(\.expectRefused).map(\.id))
        var ledgerIDs: [String: Set<String>] = [:]
        for ledger in Self.ledgers {
            var views: [String: String] = [:]
            for node in nodes {
                let entries = try cli.list(node, ["ledger", "list", ledger, "--json"]).json() as? [[String: Any]] ?? []
                for e in entries { ledgerIDs[node.name, default: []].insert("\(ledger)/\(e["id"] as? String ?? "")") }
                let kept = entries.filter { !refusedEntryIDs.contains($0["id"] as? String ?? "") }
                let data = try JSONSerialization.data(withJSONObject: kept, options: [.sortedKeys])
                views[node.name] = String(decoding: data, as: UTF8.self)
                for e in entries where refusedEntryIDs.contains(e["id"] as? String ?? "") && node !== relay {
                    fail("refused entry \(ledger)/\(e["id"] ?? "") was applied on \(node.name)")
                }
            }
            for node in nodes where views[node.name] != views[hq.name] {
                v.divergent = true
                fail("\(node.name)'s ledger \(ledger) differs from hq's")
            }
        }
        for entry in ackedEntries {
            for node in nodes {
                let present = ledgerIDs[node.name, default: []].contains("\(entry.ledger)/\(entry.id)")
                if entry.expectRefused {
                    // Work HQ refused is removed everywhere, its origin included, once the origin
                    // has met HQ's verdict (issue 23, item 8; as a revocation's cut does).
                    if present { fail("the refused entry \(entry.id) is still on \(node.name)") }
                    continue
                }
                v.checks += 1
                if !present {
                    v.lost += 1
                    fail("LOST: ledger entry \(entry.ledger)/\(entry.id) acknowledged by \(entry.node.name) is missing on \(node.name)")
                }
            }
        }

        // Every acknowledged field write, by its exact version, on every node; identical histories;
        // no version twice; no version of a refused transaction outside its origin.
        var records = Set<String>()
        for f in ackedFields { records.insert("\(f.collection)\u{1}\(f.id)") }
        var histories: [String: [String: [[String: Any]]]] = [:]
        for record in records.sorted() {
            let parts = record.split(separator: "\u{1}").map(String.init)
            var texts: [String: String] = [:]
            for node in nodes {
                let r = try cli.run(node, ["record", "history", parts[0], parts[1], "--json"])
                let versions = r.json() as? [[String: Any]] ?? []
                histories[node.name, default: [:]][record] = versions
                texts[node.name] = r.stdout
                var seen = Set<String>()
                for version in versions {
                    let key = "\(version["node"] as? String ?? "")/\(version["seq"] as? Int ?? 0)/\(version["field"] as? String ?? "")"
                    if !seen.insert(key).inserted { fail("\(node.name): version \(key) of \(parts[0])/\(parts[1]) appears twice") }
                    let origin = version["node"] as? String ?? ""
                    if allRefused.contains("\(origin)/\(version["seq"] as? Int ?? 0)") && origin != node.id {
                        fail("\(node.name) applied refused transaction \(origin)/\(version["seq"] ?? "")")
                    }
                }
            }
            for node in nodes where texts[node.name] != texts[hq.name] {
                v.divergent = true
                fail("\(node.name)'s history of \(parts[0])/\(parts[1]) differs from hq's")
            }
        }
        for f in ackedFields {
            for node in nodes {
                v.checks += 1
                let versions = histories[node.name]?["\(f.collection)\u{1}\(f.id)"] ?? []
                let renumbered = (f.node === lintan || f.node === lintanSecond) && lintanRewritten || f.node === gangu && ganguRewritten
                let found = versions.contains { version in
                    version["node"] as? String == f.node.id && (renumbered || version["seq"] as? Int == f.seq)
                        && version["field"] as? String == f.field
                        && Self.valueKey(version["value"]) == f.value
                }
                if !found {
                    v.lost += 1
                    fail("LOST: \(f.collection)/\(f.id).\(f.field) = \(f.value) (\(f.node.name) transaction \(f.seq)) is missing on \(node.name)")
                }
            }
        }

        // Every acknowledged attached file, on every node, byte for byte: copied out and hashed here.
        for a in ackedAttachments {
            for node in nodes {
                v.checks += 1
                let out = directory + "/check-\(node.name)-\(a.sha256.prefix(12))"
                let r = try cli.run(node, ["attachment", "get", a.sha256, "--out", out])
                let bytes = (try? Data(contentsOf: URL(fileURLWithPath: out))) ?? Data()
                try? FileManager.default.removeItem(atPath: out)
                if r.status != 0 || Hex.string(SHA256.hash(data: bytes)) != a.sha256 {
                    v.lost += 1
                    fail(
                        "LOST: file \(a.sha256.prefix(12)) attached to \(a.collection)/\(a.id) by \(a.node.name) is not on \(node.name) as it was (exit \(r.status.map(String.init) ?? "none"): \(r.stderr.prefix(200)))"
                    )
                }
            }
        }

        // HQ's funds report against a recount of the acknowledged disbursements: every one counted
        // once, under its county, and the relay's refused ones in no figure.
        v.failures += try fundsRecount()

        // Enough happened for the verdict to mean something.
        if ackedWrites < max(5, steps / 4) {
            fail("only \(ackedWrites) acknowledged writes in \(steps) steps: too few for this run to prove anything")
        }
        if v.checks < ackedWrites {
            fail("only \(v.checks) (write, node) checks for \(ackedWrites) acknowledged writes")
        }

        // The revoked rogue's back-dated work is nowhere.
        for node in nodes {
            let projects = try cli.list(node, ["record", "list", "projects", "--json"]).stdout
            if projects.contains("lt-rogue-late") { fail("\(node.name) applied the revoked rogue's back-dated work") }
        }

        // No transaction applied twice: the log holds exactly the vector's sum on every node.
        for node in nodes {
            let status = try cli.must(node, ["status", "--json"]).json() as? [String: Any] ?? [:]
            let vector = status["vector"] as? [String: Int] ?? [:]
            let sum = vector.values.reduce(0, +)
            if status["transactions"] as? Int != sum {
                fail("\(node.name) holds \(status["transactions"] ?? "?") log entries but its vector sums to \(sum)")
            }
            if let d = status["ledgerDuplicates"] as? Int, d != 0 { fail("\(node.name) has \(d) ledger duplicates (ids are random: none expected)") }
        }
        return v
    }

    /// Compares the disbursed column of HQ's `report funds` (each county's whole-plan row) with the
    /// sum of the disbursements the CLI acknowledged; returns one line per county that differs.
    func fundsRecount() throws -> [String] {
        var expected: [String: Int] = [:]
        for e in ackedEntries where !e.expectRefused {
            if let county = e.county, let fen = e.amountFen { expected[county, default: 0] += fen }
        }
        let rows = try cli.must(hq, ["report", "funds", "--json"]).json() as? [[String: Any]] ?? []
        // The report names counties as the plan in force at HQ does.
        let plan = try cli.must(hq, ["plan", "show", "--json"]).json() as? [String: Any] ?? [:]
        let names = (plan["counties"] as? [[String: Any]] ?? []).compactMap { c in (c["id"] as? String).map { ($0, c["name"] as? String ?? $0) } }
        var failures: [String] = names.isEmpty ? ["hq's plan names no county"] : []
        for (site, name) in names {
            let whole = rows.first { $0["county"] as? String == name && ($0["year"] as? String ?? "").contains("–") }
            guard let whole else {
                failures.append("hq's funds report has no whole-plan row for \(name)")
                continue
            }
            let reported = (whole["disbursed"] as? NSNumber)?.intValue
            if reported != expected[site, default: 0] {
                failures.append(
                    "hq's funds report shows \(reported.map(String.init) ?? "nothing") fen disbursed to \(name); the acknowledged disbursements sum to \(expected[site, default: 0])"
                )
            }
        }
        // The district's 合计 over the programme is every county's acknowledged money.
        let district = rows.first { $0["countyId"] as? String == "district" && ($0["year"] as? String ?? "").contains("–") }
        let districtDisbursed = (district?["disbursed"] as? NSNumber)?.intValue
        if districtDisbursed != expected.values.reduce(0, +) {
            failures.append(
                "hq's funds report shows \(districtDisbursed.map(String.init) ?? "nothing") fen disbursed in the district's 合计; the acknowledged disbursements sum to \(expected.values.reduce(0, +))"
            )
        }
        if rows.contains(where: { $0["county"] as? String == "未指明县" }) {
            failures.append("hq's funds report counts money of no county of the plan; the harness wrote none")
        }
        return failures
    }

    /// Proves the checker is not vacuous: each of four damages must make it fail.
    func checkTheChecker() throws -> [String] {
        var proven: [String] = []
        ackedFields.append(AckedField(node: chengde, collection: "projects", id: "cd-proj-0", field: "stage", value: "s:never-written", seq: 999_999))
        guard try check(converged: true).lost == nodes.count else { throw HarnessError("the checker missed a fabricated acknowledged write") }
        ackedFields.removeLast()
        proven.append("a fabricated acknowledged write")
        try cli.must(gangu, ["record", "put", "projects", "gg-proj-0", "stage=only-here"])
        guard try check(converged: true).divergent else { throw HarnessError("the checker missed a write present on one node only") }
        proven.append("a write present on one node only")
        guard let entry = ackedEntries.first(where: { !$0.expectRefused }) else { return proven }
        let database = lintan.data + "/node.sqlite"
        let sql = "DELETE FROM ledger_entry WHERE entry_id = '\(entry.id)';"
        let sqlite = try ChildProcess.run(
            "/bin/sh",
            [
                "-c",
                "command -v sqlite3 >/dev/null && sqlite3 \"$0\" \"$1\" || python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()' \"$0\" \"$1\"",
                database, sql,
            ])
        guard sqlite.status == 0 else {
            throw HarnessError(
                "could not damage lintan's database for the third check (needs sqlite3 or python3): \(String(decoding: sqlite.stderr.prefix(300), as: UTF8.self))"
            )
        }
        guard try check(converged: true).lost >= 1 else { throw HarnessError("the checker missed a ledger entry removed from one node") }
        proven.append("a ledger entry deleted from one node's database")
        ackedEntries.append(AckedEntry(node: hq, ledger: "disbursements", id: "none", expectRefused: false, county: "gangu", amountFen: 1))
        guard try fundsRecount().contains(where: { $0.contains("甘谷县") }) else {
            throw HarnessError("the recount of hq's funds report missed one fen")
        }
        ackedEntries.removeLast()
        proven.append("a funds report one fen short of the acknowledged disbursements")
        return proven
    }
}
