import ChildProcess
import Foundation
import PostgresTestServer
import SyncNode
import SyncProtocol
import Testing

/// The PostgreSQL mirror of HQ's merged view, through the real binary against a real PostgreSQL
/// server this suite starts on loopback (its rows read back with `psql`, an independent client).
@Suite(.serialized) struct PostgresMirrorTests {
    static func mirror(_ data: String, _ url: String, _ pg: PostgresServer, extra: [String] = [], exit: Int32 = 0) async throws -> [String: Any] {
        let r = try await Binary.runAsync(["mirror", "--data", data, "--postgres", url, "--json"] + extra, environment: pg.environment)
        #expect(r.status == exit, "mirror: \(r.status) \(r.stderr)")
        return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] ?? [:]
    }

    static func json(_ data: String, _ args: [String]) async throws -> Any {
        let r = try await Binary.runAsync(args + ["--data", data, "--json"])
        guard r.status == 0 else { throw TestFailure("\(args): \(r.stderr)") }
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    }

    /// HQ's data directory after `syncnode demo` in `dir` (four nodes, a conflict, money of each county).
    static func demoHQ(_ dir: TempDirectory) async throws -> String {
        let demo = try await Binary.runAsync(["demo", "--dir", dir.path("demo").path])
        guard demo.status == 0 else { throw TestFailure("demo failed: \(demo.stderr)") }
        return dir.path("demo/hq").path
    }

    /// The mirror's `funds` table equals `report funds --json`, row for row and figure for figure.
    static func expectFundsEqualTheReport(_ data: String, _ pg: PostgresServer, _ database: String) async throws {
        let report = try await Self.json(data, ["report", "funds"]) as? [[String: Any]] ?? []
        let rows = try pg.psql(
            database,
            "SELECT coalesce(county_id, ''), year, target_fen, allocated_fen, disbursed_fen, spent_fen, donated_fen, remaining_fen FROM funds ORDER BY 1, 2"
        )
        func figure(_ v: Any?) -> String { (v as? NSNumber).map { "\($0.int64Value)" } ?? "" }
        let expected = report.map { r in
            ([(r["countyId"] as? String) ?? "", r["year"] as? String ?? ""]
                + ["target", "allocated", "disbursed", "spent", "donated", "remaining"].map { figure(r[$0]) }).joined(separator: "|")
        }.sorted()
        #expect(rows.sorted() == expected, "mirror \(rows) report \(expected)")
        #expect(rows.count > 15)
        // And the entries' own decisions add up to the report's figures: what counts, in which
        // county and budget year, summed by PostgreSQL.
        var summed: [String: Int64] = [:]
        for line in try pg.psql(database, "SELECT county, year, kind, sum(amount_fen) FROM money_entries WHERE counts GROUP BY 1, 2, 3") {
            let f = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            summed["\(f[0])|\(f[1])|\(f[2])"] = Int64(f[3])
        }
        let columns = ["allocation": "allocated", "disbursement": "disbursed", "expenditure": "spent", "donation": "donated"]
        var compared = 0
        for r in report {
            guard let county = r["countyId"] as? String, county != "district", let year = Int(r["year"] as? String ?? "") else { continue }
            for (kind, column) in columns {
                let figure = (r[column] as? NSNumber)?.int64Value ?? -1
                #expect((summed["\(county)|\(year)|\(kind)"] ?? 0) == figure, "\(county) \(year) \(column)")
                compared += 1
            }
        }
        #expect(compared >= 60)
    }

    /// A first mirror of the demo's HQ carries every record, entry, conflict and review item; a
    /// second finds nothing to do; one more disbursement sends one transaction; its reversal
    /// takes it out of what counts; the conflict resolved leaves the conflicts table. The funds
    /// table equals the report after each step.
    @Test func theMirrorFollowsHQIncrementallyWithItsReportsFigures() async throws {
        let pg = try PostgresServer()
        defer { pg.remove() }
        let url = try pg.database("hq")
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = try await Self.demoHQ(dir)
        let status = try await Self.json(hq, ["status"]) as? [String: Any] ?? [:]
        let first = try await Self.mirror(hq, url, pg)
        #expect(first["transactions"] as? Int == status["transactions"] as? Int)
        #expect(first["current"] as? Bool == true && first["restarted"] as? Bool == false)
        #expect(try pg.psql("hq", "SELECT count(*) FROM ledger_entries") == ["\(status["ledgerEntries"] as? Int ?? -1)"])
        #expect(try pg.psql("hq", "SELECT count(*) FROM records WHERE NOT deleted") == ["\(status["records"] as? Int ?? -1)"])
        #expect(try pg.psql("hq", "SELECT sum(seq) FROM mirror_vector") == ["\(status["transactions"] as? Int ?? -1)"])
        let conflicts = try await Self.json(hq, ["conflicts"]) as? [[String: Any]] ?? []
        #expect(conflicts.count == 1)
        #expect(try pg.psql("hq", "SELECT collection, record_id, field FROM conflicts") == ["projects|lt-clinic|responsible"])
        #expect(try pg.psql("hq", "SELECT type_id, item FROM review WHERE type_id = 'conflict'") == ["conflict|projects/lt-clinic.responsible"])
        try await Self.expectFundsEqualTheReport(hq, pg, "hq")
        #expect(
            try pg.psql("hq", "SELECT n.label FROM records r JOIN nodes n ON n.node = r.updated_by WHERE r.record_id = 'lt-school'").first?
                .hasPrefix("lintan") == true)

        let again = try await Self.mirror(hq, url, pg)
        #expect(again["transactions"] as? Int == 0 && again["batches"] as? Int == 0)

        // One more disbursement: one transaction, one entry, counted.
        let appended = try await Binary.runAsync([
            "ledger", "append", "disbursements", "--data", hq, "county=gangu", "kind=disbursement", "amount_fen:=123400", "date=2017-06-01",
            "stage=advance",
        ])
        #expect(appended.status == 0, "\(appended.stderr)")
        let id = appended.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let more = try await Self.mirror(hq, url, pg)
        #expect(more["transactions"] as? Int == 1 && more["entries"] as? Int == 1)
        #expect(
            try pg.psql("hq", "SELECT kind, county, year, stage, amount_fen, counts, cancelled FROM money_entries WHERE id = '\(id)'") == [
                "disbursement|gangu|2017|advance|123400|t|f"
            ])
        try await Self.expectFundsEqualTheReport(hq, pg, "hq")

        // Its reversal: the entry no longer counts, nor does the reversal; the figures follow.
        let undone = try await Binary.runAsync(["correct", id, "--undo", "--data", hq])
        #expect(undone.status == 0, "\(undone.stderr)")
        let reversed = try await Self.mirror(hq, url, pg)
        #expect(reversed["transactions"] as? Int == 1)
        #expect(try pg.psql("hq", "SELECT counts, cancelled, reversal FROM money_entries WHERE id = '\(id)'") == ["f|t|f"])
        #expect(
            try pg.psql("hq", "SELECT counts, reversal, amount_fen FROM money_entries WHERE ledger = 'disbursements' AND reversal") == ["f|t|-123400"]
        )
        #expect(
            try pg.psql("hq", "SELECT sum(amount_fen) FROM money_entries WHERE counts AND county = 'gangu' AND kind = 'disbursement'") == [
                "500000000"
            ]
        )
        try await Self.expectFundsEqualTheReport(hq, pg, "hq")

        // The conflict resolved: gone from the conflicts table and from the record's fields.
        let resolved = try await Binary.runAsync(["conflicts", "resolve", "projects", "lt-clinic", "responsible", "--value", "临潭卫健局", "--data", hq])
        #expect(resolved.status == 0, "\(resolved.stderr)")
        _ = try await Self.mirror(hq, url, pg)
        #expect(try pg.psql("hq", "SELECT count(*) FROM conflicts") == ["0"])
        #expect(
            try pg.psql("hq", "SELECT fields->>'responsible', conflicted_fields FROM records WHERE record_id = 'lt-clinic'") == ["临潭卫健局|[]"])
    }

    /// A plan whose kinds write to other ledgers changes what the mirrored rows mean (which
    /// ledgers hold money, each entry's kind): the next pass says so and writes everything again,
    /// with the same figures; the pass after it has nothing to do.
    @Test func aPlanThatMovesLedgersRewritesTheMirror() async throws {
        let pg = try PostgresServer()
        defer { pg.remove() }
        let url = try pg.database("hq")
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = try await Self.demoHQ(dir)
        let first = try await Self.mirror(hq, url, pg)
        #expect(first["restarted"] as? Bool == false)
        let entries = try pg.psql("hq", "SELECT count(*) FROM money_entries")
        var plan = try await Self.json(hq, ["plan", "show"]) as? [String: Any] ?? [:]
        var kinds = plan["kinds"] as? [[String: Any]] ?? []
        var visit = try #require(kinds.first { $0["id"] as? String == "visit" })
        visit["id"] = "site_visit"
        visit["name"] = "现场查看"
        visit["ledger"] = "site_visits"
        kinds.append(visit)
        plan["kinds"] = kinds
        plan["version"] = (plan["version"] as? Int ?? 4) + 1
        let file = dir.path("plan.json")
        try JSONSerialization.data(withJSONObject: plan).write(to: file)
        let installed = try await Binary.runAsync(["plan", "install", file.path, "--data", hq])
        #expect(installed.status == 0, "\(installed.stderr)")
        let rewritten = try await Self.mirror(hq, url, pg)
        #expect(rewritten["restarted"] as? Bool == true, "\(rewritten)")
        #expect(try pg.psql("hq", "SELECT count(*) FROM money_entries") == entries)
        #expect(try pg.psql("hq", "SELECT sum(seq) FROM mirror_vector") == ["\(rewritten["mirrored"] as? Int ?? -1)"])
        try await Self.expectFundsEqualTheReport(hq, pg, "hq")
        let after = try await Self.mirror(hq, url, pg)
        #expect(after["restarted"] as? Bool == false && after["transactions"] as? Int == 0)
    }

    /// A reversal mirrored before the entry it cancels: HQ's own transactions come first in the
    /// log's order, so HQ's correction of a county's entry reaches the mirror a batch before the
    /// entry. The entry arrives cancelled; what counts equals the node's figures.
    @Test func aReversalMirroredBeforeItsEntryStillCancelsIt() async throws {
        let pg = try PostgresServer()
        defer { pg.remove() }
        let url = try pg.database("hq")
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (hq, lintan) = try Federation.hqAndLintan(in: dir)
        let appended = try await Binary.runAsync([
            "ledger", "append", "expenditures", "--data", lintan, "county=lintan", "kind=expenditure", "amount_fen:=4321", "date=2017-05-01",
        ])
        #expect(appended.status == 0, "\(appended.stderr)")
        let id = appended.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let server = try ServeProcess(data: hq)
        let synced = try await Binary.runAsync(["sync", "--data", lintan, "--peer", server.url])
        #expect(synced.status == 0, "\(synced.stderr)")
        server.stop()
        let undone = try await Binary.runAsync(["correct", id, "--undo", "--data", hq])
        #expect(undone.status == 0, "\(undone.stderr)")
        let mirrored = try await Self.mirror(hq, url, pg, extra: ["--batch-transactions", "1"])
        #expect(mirrored["current"] as? Bool == true)
        #expect(try pg.psql("hq", "SELECT cancelled, counts FROM money_entries WHERE id = '\(id)' AND NOT reversal") == ["t|f"])
        #expect(try pg.psql("hq", "SELECT counts FROM money_entries WHERE ledger = 'expenditures' AND reversal") == ["f"])
        #expect(try pg.psql("hq", "SELECT count(*) FROM money_entries WHERE counts AND ledger = 'expenditures'") == ["0"])
        try await Self.expectFundsEqualTheReport(hq, pg, "hq")
    }

    /// The server killed while a mirror waits inside a batch: the batches committed before stay,
    /// the one cut off is gone, and the next run sends exactly what the database lacks.
    @Test func aServerKilledMidMirrorLosesAndRepeatsNothing() async throws {
        let pg = try PostgresServer()
        defer { pg.remove() }
        let url = try pg.database("hq")
        let node = try TestNode(site: "hq", role: .hq)
        defer { node.remove() }
        let data = node.directory.path("node").path
        let origin = node.store.info.nodeID.hex
        try node.store.close()
        _ = try await Self.mirror(data, url, pg)
        let store = try Store.open(URL(fileURLWithPath: data), clock: node.clock)
        let total = 600
        for i in 0..<total {
            let fields: [FieldAssignment] = [
                .init("county", .text("lintan")), .init("kind", .text("disbursement")), .init("amount_fen", .int(Int64(1000 + i))),
                .init("date", .text("2017-05-01")), .init("stage", .text("advance")),
            ]
            try store.commit([.append(ledger: "disbursements", entryID: "e-\(i)", fields: fields)])
        }
        try store.close()
        // Another session holds the key of entry e-400 in an open transaction: the mirror's batch
        // that carries it waits there, after the batches before it have committed.
        var env = ProcessInfo.processInfo.environment
        env["PGPASSWORD"] = pg.password
        let blocker = try ChildProcess(
            "/usr/bin/psql",
            [
                "-X", "-h", "127.0.0.1", "-p", String(pg.port), "-U", pg.user, "-d", "hq", "-c",
                "BEGIN; INSERT INTO ledger_entries VALUES ('disbursements', 'e-400', '\(origin)', NULL, now(), NULL, '{}', false, false); SELECT pg_sleep(300);",
            ], environment: env, stdin: .null, stdout: .null, stderr: .null)
        defer { blocker.terminate() }
        let before = Int(try pg.psql("hq", "SELECT sum(seq) FROM mirror_vector").first ?? "") ?? -1
        // The blocker holds the key before the mirror starts.
        var holding = false
        for _ in 0..<100 where !holding {
            holding =
                try pg.psql(
                    "hq", "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(300)%' AND state = 'active' AND pid <> pg_backend_pid()")
                == ["1"]
            if !holding { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(holding, "the blocking session never started")
        let password = pg.environment
        async let cut = Binary.runAsync(["mirror", "--data", data, "--postgres", url, "--batch-transactions", "50"], environment: password)
        var waiting = false
        for _ in 0..<300 where !waiting {
            try await Task.sleep(for: .milliseconds(100))
            waiting = try pg.psql("hq", "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") == ["1"]
        }
        #expect(waiting, "the mirror never reached the held entry")
        let committed = Int(try pg.psql("hq", "SELECT sum(seq) FROM mirror_vector").first ?? "") ?? -1
        #expect(committed > before, "no batch committed before the held entry (\(committed), \(before) before this run)")
        try pg.kill()
        let killed = try await cut
        #expect(killed.status == 69, "\(killed.status) \(killed.stderr)")
        #expect(
            ["closed the connection", "cannot reach", "shutting down"].contains { killed.stderr.contains($0) }, "\(killed.stderr)")
        #expect(!killed.stderr.contains(pg.password))
        try pg.start()
        #expect(Int(try pg.psql("hq", "SELECT sum(seq) FROM mirror_vector").first ?? "") == committed)
        let entriesBefore = Int(try pg.psql("hq", "SELECT count(*) FROM money_entries").first ?? "") ?? -1
        #expect(entriesBefore > 0 && entriesBefore <= 400, "\(entriesBefore)")
        let rest = try await Self.mirror(data, url, pg)
        let held = try await Self.json(data, ["status"]) as? [String: Any] ?? [:]
        let all = held["transactions"] as? Int ?? -1
        #expect(rest["transactions"] as? Int == all - committed, "\(rest) of \(all), \(committed) committed before")
        #expect(rest["entries"] as? Int == total - entriesBefore)
        #expect(
            try pg.psql("hq", "SELECT count(*), sum(amount_fen), count(DISTINCT id) FROM money_entries") == [
                "\(total)|\(total * 1000 + total * (total - 1) / 2)|\(total)"
            ])
    }

    /// Values PostgreSQL's types cannot take as they are: a NUL in a text (jsonb and text refuse
    /// it; written as U+FFFD), a budget year far beyond 32 bits, and an id written in two Unicode
    /// forms that look alike (two records, two rows). None of them stops the mirror.
    @Test func awkwardValuesDoNotStopTheMirror() async throws {
        let pg = try PostgresServer()
        defer { pg.remove() }
        let url = try pg.database("hq")
        let node = try TestNode(site: "hq", role: .hq)
        defer { node.remove() }
        try node.store.commit([.put(collection: "notes", recordID: "n1", fields: [.init("text", .text("a\u{0}b"))])])
        try node.store.commit([.put(collection: "notes", recordID: "caf\u{E9}", fields: [.init("text", .text("composed"))])])
        try node.store.commit([.put(collection: "notes", recordID: "cafe\u{301}", fields: [.init("text", .text("decomposed"))])])
        try node.store.commit([
            .append(
                ledger: "disbursements", entryID: "far",
                fields: [.init("county", .text("lintan")), .init("budget_year", .int(20_170_601_000)), .init("amount_fen", .int(100))])
        ])
        try node.store.close()
        let data = node.directory.path("node").path
        let first = try await Self.mirror(data, url, pg)
        #expect(first["current"] as? Bool == true, "\(first)")
        #expect(try pg.psql("hq", "SELECT fields->>'text' FROM records WHERE record_id = 'n1'") == ["a\u{FFFD}b"])
        #expect(try pg.psql("hq", "SELECT count(*) FROM records WHERE collection = 'notes' AND record_id LIKE 'caf%'") == ["2"])
        #expect(try pg.psql("hq", "SELECT year, counts FROM money_entries WHERE id = 'far'") == ["20170601000|t"])
    }

    /// A URL that is not one, a wrong password, an unreachable server, a database another node
    /// mirrors into, another mirror writing: each a clear message and its exit code, the password
    /// never printed, nothing written.
    @Test func badTargetsAreRefusedPlainly() async throws {
        let pg = try PostgresServer()
        defer { pg.remove() }
        let url = try pg.database("hq")
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (hq, lintan) = try Federation.hqAndLintan(in: dir)
        func run(_ data: String, _ target: String, _ env: [String: String]) async throws -> Binary.Result {
            try await Binary.runAsync(["mirror", "--data", data, "--postgres", target], environment: env)
        }
        let notURL = try await run(hq, "mysql://x:hunter2@h/db", [:])
        #expect(notURL.status == 65 && notURL.stderr.contains("postgres://") && !notURL.stderr.contains("hunter2"), "\(notURL.stderr)")
        let badMode = try await run(hq, url + "?sslmode=sometimes", pg.environment)
        #expect(badMode.status == 65 && badMode.stderr.contains("sslmode"), "\(badMode.stderr)")
        let wrong = try await run(hq, "postgres://\(pg.user):not-the-password@127.0.0.1:\(pg.port)/hq", [:])
        #expect(wrong.status == 78 && wrong.stderr.contains("password is wrong") && !wrong.stderr.contains("not-the-password"), "\(wrong.stderr)")
        let noDatabase = try await run(hq, "postgres://\(pg.user)@127.0.0.1:\(pg.port)/nosuch", pg.environment)
        #expect(noDatabase.status == 3 && noDatabase.stderr.contains("createdb nosuch"), "\(noDatabase.stderr)")
        let closed = try await run(hq, "postgres://\(pg.user)@127.0.0.1:1/hq", pg.environment)
        #expect(closed.status == 69 && closed.stderr.contains("cannot reach"), "\(closed.stderr)")
        #expect(try pg.psql("hq", "SELECT count(*) FROM pg_tables WHERE tablename = 'records'") == ["0"])
        let slashInPassword = try await run(hq, "postgres://\(pg.user):ab/cd9@127.0.0.1:\(pg.port)/hq", [:])
        #expect(slashInPassword.status == 65 && !slashInPassword.stderr.contains("ab/cd9"), "\(slashInPassword.stderr)")
        // The password in the URL: used, and shown nowhere (output, status, log of a failure).
        let inURL = "postgres://\(pg.user):\(pg.password)@127.0.0.1:\(pg.port)/hq"
        let withPassword = try await Binary.runAsync(["mirror", "--data", hq, "--postgres", inURL, "--json"])
        #expect(withPassword.status == 0 && !withPassword.stdout.contains(pg.password) && !withPassword.stderr.contains(pg.password))
        let shown = try await Binary.runAsync(["status", "--data", hq, "--json"])
        #expect(shown.stdout.contains("\"mirror\"") && !shown.stdout.contains(pg.password))
        let badTable = try await run(hq, "postgres://\(pg.user):\(pg.password)@127.0.0.1:1/hq", [:])
        #expect(badTable.status == 69 && !badTable.stderr.contains(pg.password))
        // The mirror is HQ's; Lintan's node may not write into the same database.
        _ = try await Self.mirror(hq, url, pg)
        let other = try await run(lintan, url, pg.environment)
        #expect(other.status == 67 && other.stderr.contains("database of its own"), "\(other.stderr)")
        // A second writer waits its turn.
        var env = ProcessInfo.processInfo.environment
        env["PGPASSWORD"] = pg.password
        let holder = try ChildProcess(
            "/usr/bin/psql",
            [
                "-X", "-h", "127.0.0.1", "-p", String(pg.port), "-U", pg.user, "-d", "hq", "-c",
                "SELECT pg_advisory_lock(6005917629041693266), pg_sleep(60)",
            ],
            environment: env, stdin: .null, stdout: .null, stderr: .null)
        defer { holder.terminate() }
        var busy = Binary.Result(status: 0, stdout: "", stderr: "")
        for _ in 0..<50 {
            busy = try await run(hq, url, pg.environment)
            if busy.status != 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(busy.status == 75 && busy.stderr.contains("another mirror"), "\(busy.stderr)")
    }

    /// A server that takes only TLS connections: `sslmode=require` mirrors (so the mirror did use
    /// TLS), as does `verify-full` with the server's certificate as root; `disable` is refused by
    /// the server, and `verify-full` without that root refuses the certificate.
    @Test func theMirrorSpeaksTLSAndChecksTheCertificateWhenAsked() async throws {
        let pg = try PostgresServer(tls: true)
        defer { pg.remove() }
        let url = try pg.database("hq")
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        let plain = try await Binary.runAsync(["mirror", "--data", hq, "--postgres", url + "?sslmode=disable"], environment: pg.environment)
        #expect(plain.status == 78 && plain.stderr.contains("pg_hba.conf"), "\(plain.status) \(plain.stderr)")
        let unknownRoot = try await Binary.runAsync(
            ["mirror", "--data", hq, "--postgres", url + "?sslmode=verify-full"], environment: pg.environment)
        #expect(unknownRoot.status == 69 && unknownRoot.stderr.contains("TLS"), "\(unknownRoot.status) \(unknownRoot.stderr)")
        let required = try await Self.mirror(hq, url + "?sslmode=require", pg)
        #expect(required["current"] as? Bool == true && (required["target"] as? String ?? "").contains("sslmode=require"))
        let verified = try await Self.mirror(hq, url + "?sslmode=verify-full&sslrootcert=\(pg.certificate)", pg)
        #expect(verified["current"] as? Bool == true, "\(verified)")
        #expect(try pg.psql("hq", "SELECT count(*) FROM records") != ["0"])
    }

    /// `serve --mirror-postgres`: work pushed by a county is in PostgreSQL within seconds; with the
    /// server down, sync goes on, `status` and `/metrics` say how far behind the mirror is, and it
    /// catches up when the server is back.
    @Test func serveKeepsTheMirrorCurrentAndSaysWhenItFallsBehind() async throws {
        let pg = try PostgresServer()
        defer { pg.remove() }
        let url = try pg.database("hq")
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (hq, lintan) = try Federation.hqAndLintan(in: dir)
        let server = try ServeProcess(data: hq, extra: ["--mirror-postgres", url], environment: pg.environment)
        defer { server.stop() }
        func append(_ amount: Int) async throws {
            let r = try await Binary.runAsync([
                "ledger", "append", "expenditures", "--data", lintan, "county=lintan", "kind=expenditure", "amount_fen:=\(amount)", "date=2017-05-01",
            ])
            #expect(r.status == 0, "\(r.stderr)")
            let synced = try await Binary.runAsync(["sync", "--data", lintan, "--peer", server.url])
            #expect(synced.status == 0, "\(synced.stderr)")
        }
        func mirrored(_ amount: Int) async throws -> Bool {
            // Up to 30 s: after the server's return the next retry may be up to ~10 s away.
            for _ in 0..<300 {
                if try pg.psql("hq", "SELECT count(*) FROM money_entries WHERE amount_fen = \(amount)") == ["1"] { return true }
                try await Task.sleep(for: .milliseconds(100))
            }
            return false
        }
        try await append(777_001)
        #expect(try await mirrored(777_001))
        try pg.kill()
        try await append(777_002)
        var behind: [String: Any] = [:]
        for _ in 0..<150 {
            behind = (try await Self.json(hq, ["status"]) as? [String: Any])?["mirror"] as? [String: Any] ?? [:]
            // The first failure may be a pass the kill cut off ("closed the connection"); the
            // retries then find no server.
            if (behind["error"] as? String ?? "").contains("cannot reach") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect((behind["behind"] as? Int ?? 0) >= 1, "\(behind)")
        #expect((behind["error"] as? String ?? "").contains("cannot reach"), "\(behind)")
        #expect(!(behind["target"] as? String ?? "").contains(pg.password))
        let metrics = try Binary.shell("curl -s \(server.url)/metrics")
        #expect(metrics.stdout.contains("syncnode_mirror_failing 1"), "\(metrics.stdout)")
        #expect(metrics.stdout.contains(#/syncnode_mirror_behind_transactions [1-9]/#))
        try pg.start()
        #expect(try await mirrored(777_002))
        #expect(server.process.isRunning)
        var recovered = ""
        for _ in 0..<50 {
            recovered = try Binary.shell("curl -s \(server.url)/metrics").stdout
            if recovered.contains("syncnode_mirror_failing 0") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(recovered.contains("syncnode_mirror_failing 0"))
    }
}
