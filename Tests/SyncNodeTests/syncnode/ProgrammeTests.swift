import Foundation
import SyncNode
import SyncProtocol
import Testing

@Suite struct ProgrammeTests {
    @Test func theEmbeddedPlanHasTheExactTargets() async throws {
        let plan = Programme.embedded
        let wan: Int64 = 1_000_000
        for (county, yearly) in [("chengde", 2000 * wan), ("lintan", 1000 * wan), ("gangu", 1000 * wan)] {
            let c = try #require(plan.county(county))
            #expect((2016...2020).allSatisfy { c.yearlyAidFen[$0] == yearly }, "\(county)")
            #expect(c.yearlyAidFen.values.reduce(0, +) == yearly * 5)
        }
        #expect(plan.county("chengde")!.yearlyAidFen.values.reduce(0, +) == 10_000 * wan)  // 1亿元 = 10000万元
        #expect(plan.workAreas.count == 8)
        #expect(plan.problems().isEmpty)
    }

    @Test func amountsAreTypedInWanOrYuanAndKeptInWholeFen() async throws {
        #expect(try Money.parse("100万").get() == 100_000_000)
        #expect(try Money.parse("12.5万元").get() == 12_500_000)
        #expect(try Money.parse("50000元").get() == 5_000_000)
        #expect(try Money.parse("1,250.50元").get() == 125_050)
        for bad in ["100", "abc元", "1.234元", "1.0000001万", "万", "99999999999999999999万"] {
            #expect((try? Money.parse(bad).get()) == nil, "\(bad)")
        }
        #expect(Money.wan(12_345_678) == "12.35")
        #expect(Money.wan(-5_000_000) == "-5.00")
    }

    @Test func validationNamesTheNearestFieldAndEveryProblem() async throws {
        let check = ProgrammeCheck(Programme.embedded)
        let context = ProgrammeCheck.Context(site: "lintan", role: .county, today: "2017-05-01")
        let training = Programme.embedded.kind("training")!
        guard case .failure(let p) = check.check(kind: training, input: [("atendees", "40"), ("topic", "电商")], context: context) else {
            Issue.record("accepted a misspelt field")
            return
        }
        #expect(p.list.contains { $0.message.contains("did you mean attendees") })
        guard case .failure(let q) = check.check(kind: training, input: [("county", "gangu"), ("topic", "x"), ("attendees", "40")], context: context)
        else {
            Issue.record("a county wrote for another county")
            return
        }
        #expect(q.list.contains { $0.field == "county" })
        let ok = check.check(kind: training, input: [("topic", "电商"), ("attendees", "40"), ("date", "2017-02-28")], context: context)
        #expect((try? ok.get())?["attendees"] == .int(40))
        #expect((try? ok.get())?["county"] == .text("lintan"))
        #expect(ProgrammeCheck.isDate("2016-02-29") && !ProgrammeCheck.isDate("2017-02-29") && !ProgrammeCheck.isDate("2017-13-01"))
        // A value typed for a field the plan knows (a conflict's resolution) keeps the plan's type.
        #expect(try check.value(collection: "projects", field: "beneficiaries", text: "70", context: context)?.get() == .int(70))
        #expect((try? check.value(collection: "projects", field: "beneficiaries", text: "many", context: context)?.get()) == nil)
        #expect(check.value(collection: "projects", field: "unknown_field", text: "x", context: context) == nil)
    }

    /// Through the real binary: targets and disbursements at HQ, a reversal, a bad input that
    /// writes nothing, and the funds report's figures.
    @Test func fundsReportSumsWithAReversalAndBadInputWritesNothing() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        #expect(try await Binary.runAsync(["init", "--data", hq, "--site", "hq", "--role", "hq"]).status == 0)
        func add(_ args: [String]) async throws -> Binary.Result { try await Binary.runAsync(["add", "--data", hq] + args) }
        #expect(try await add(["target", "county=lintan", "year=2017", "amount=1000万"]).status == 0)
        #expect(try await add(["disbursement", "county=lintan", "stage=advance", "amount=300万", "date=2017-03-01"]).status == 0)
        // Above what remains of the year's target: a warning that needs --confirm; nothing written without it.
        let over = try await add(["disbursement", "county=lintan", "stage=progress", "amount=800万", "date=2017-05-01"])
        #expect(
            over.status == 65 && over.stderr.contains("--confirm") && over.stderr.contains("临潭县2017年度拨付1100.00万元，超过年度目标1000.00万元"), "\(over.stderr)")
        let wrong = try await Binary.runAsync([
            "ledger", "append", "--data", hq, "disbursements", "--id", "d-wrong", "county=lintan", "kind=disbursement", "stage=progress",
            "amount_fen:=50000000", "date=2017-04-01",
        ])
        #expect(wrong.status == 0, "\(wrong.stderr)")
        #expect(
            try await Binary.runAsync(["ledger", "append", "--data", hq, "disbursements", "--reverses", "d-wrong", "date=2017-04-02"]).status == 0)
        let before = try await Binary.runAsync(["vector", "--data", hq, "--json"]).stdout
        let bad = try await add(["disbursement", "county=lintna", "stage=advance", "amount=3.1234567万"])
        #expect(bad.status == 65)
        #expect(bad.stderr.contains("did you mean lintan") && bad.stderr.contains("fraction of a fen"), "\(bad.stderr)")
        #expect(try await Binary.runAsync(["vector", "--data", hq, "--json"]).stdout == before)

        // A project with its events and money, shown in one place.
        #expect(try await add(["project", "lt-school", "name=东丽小学", "county=lintan", "work_area=education"]).status == 0)
        #expect(try await add(["allocation", "project=lt-school", "amount=200万", "date=2017-02-01"]).status == 0)
        #expect(try await add(["project_event", "project=lt-school", "stage=started", "progress_pct=30", "date=2017-06-01"]).status == 0)
        let back = try await add(["project_event", "project=lt-school", "stage=approved", "date=2017-06-02"])
        #expect(back.status == 65 && back.stderr.contains("--force"), "\(back.stderr)")
        let shown = try await Binary.runAsync(["project", "show", "--data", hq, "lt-school", "--json"])
        let project = try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any]
        #expect(project?["allocated"] as? Int == 200_000_000, "\(shown.stdout) \(shown.stderr)")
        #expect((project?["entries"] as? [Any])?.count == 2)
        #expect(try await Binary.runAsync(["project", "show", "--data", hq, "lt-none"]).status == 3)
        let report = try await Binary.runAsync(["report", "funds", "--data", hq, "--county", "lintan", "--year", "2017", "--json"])
        let rows = try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [[String: Any]]
        let row = try #require(rows?.first, "\(report.stdout) \(report.stderr)")
        #expect(row["target"] as? Int == 1_000_000_000)
        #expect(row["disbursed"] as? Int == 300_000_000)
        #expect(row["disbursedPct"] as? Int == 3000)
        // The review queue: a reversal is judged by the ledger rule, not flagged as an entry that
        // lacks the plan's fields; a ledger the plan does not name is listed, not dropped.
        #expect(try await Binary.runAsync(["ledger", "append", "--data", hq, "trainings", "county=lintan", "attendees:=3"]).status == 0)
        let review = try await ProgrammeFleetTests.json(hq, ["report", "review"])
        #expect(!review.contains { ($0["item"] as? String ?? "").hasPrefix("disbursements/") }, "\(review)")
        #expect(
            review.contains { $0["typeId"] as? String == "plan" && $0["type"] as? String == "不符合规划" && $0["item"] as? String == "trainings" },
            "\(review)")
        let csv = try await Binary.runAsync(["report", "funds", "--data", hq, "--csv"])
        #expect(csv.stdout.hasPrefix("\u{FEFF}"))
        #expect(csv.stdout.contains("临潭县,2017,1000.00,另定（同规划）,200.00,300.00"), "\(csv.stdout)")
    }

    /// Each class of bad input to the programme commands: a clear message, the documented exit
    /// code, and nothing written.
    @Test func badInputToTheProgrammeCommands() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        #expect(try await Binary.runAsync(["init", "--data", hq, "--site", "hq", "--role", "hq"]).status == 0)
        let before = try await Binary.runAsync(["vector", "--data", hq, "--json"]).stdout
        let cases: [([String], Int32, String)] = [
            (["add", "--data", hq, "trainin", "topic=x", "attendees=1", "county=lintan"], 65, "did you mean training"),
            (["add", "--data", hq, "training", "topic=x", "attendees=lots", "county=lintan"], 65, "not a whole number"),
            (["add", "--data", hq, "training", "topic=x", "county=lintan"], 65, "attendees: is required"),
            (["add", "--data", hq, "training", "topic=x", "attendees=3", "county=lintan", "date=2017-02-30"], 65, "not a date"),
            (["add", "--data", hq, "project_event", "project=nope", "progress_pct=101", "county=lintan"], 65, "above 100"),
            (["add", "--data", hq, "project", "name=x", "county=lintan", "work_area=education"], 65, "needs an id"),
            (["add", "--data", hq, "project", "lt-x", "name=x", "county=lintan", "work_area=eduction"], 65, "did you mean education"),
            (["add", "--data", hq, "training", "notanassignment"], 64, "FIELD=VALUE"),
            (["update", "--data", hq, "project", "lt-none", "name=x"], 3, "no project lt-none"),
            (["plan", "install", "--data", hq, dir.path("missing.json").path], 65, "cannot read"),
            (["report", "--data", hq, "fund"], 65, "did you mean funds"),
            (["report", "--data", hq, "funds", "--county", "lintna"], 65, "no county 'lintna'"),
            (["report", "--data", hq, "funds", "--json", "--csv"], 64, "not both"),
            (["export", "--data", hq, "--format", "pdf", "--out", dir.path("x").path], 64, "xlsx or csv"),
            (["export", "--data", hq, "--format", "csv", "--out", dir.path("x").path, "fundz"], 64, "no report 'fundz'"),
            (["export", "--data", hq, "--format", "xlsx", "--out", "/proc/nope/x.xlsx"], 74, "cannot"),
        ]
        for (args, code, message) in cases {
            let r = try await Binary.runAsync(args)
            #expect(r.status == code, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        #expect(try await Binary.runAsync(["vector", "--data", hq, "--json"]).stdout == before)
    }

    /// Aid of `wan` 万元 in 2016 and none in the plan's later years.
    static func aid(_ wan: Int) -> [String: Int] { ["2016": wan, "2017": 0, "2018": 0, "2019": 0, "2020": 0] }

    /// A plan for another programme (two other counties) drives validation and reports the same way.
    @Test func anotherProgrammesPlanDrivesValidationAndReports() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        var plan = try JSONSerialization.jsonObject(with: Programme.embeddedText) as! [String: Any]
        plan["programme"] = "other-2020"
        plan["counties"] = [
            ["id": "north", "name": "北县", "province": "某省", "carrier_unit": "甲街", "prefixes": ["no-"], "yearly_aid_wan": Self.aid(300)],
            ["id": "south", "name": "南县", "province": "某省", "carrier_unit": "乙街", "prefixes": ["so-"], "yearly_aid_wan": Self.aid(500)],
        ]
        plan["first_batch_projects"] = [[String: String]]()
        plan["groups"] = nil
        plan["sites"] = [["id": "hq", "role": "hq", "name": "HQ"], ["id": "north", "role": "county", "name": "北县"]]
        let file = dir.path("plan.json")
        try JSONSerialization.data(withJSONObject: plan).write(to: file)
        let hq = dir.path("hq").path
        let created = try await Binary.runAsync(["init", "--data", hq, "--site", "hq", "--role", "hq", "--plan", file.path])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(try await Binary.runAsync(["add", "--data", hq, "target", "county=north", "year=2016", "amount=300万"]).status == 0)
        let lintan = try await Binary.runAsync(["add", "--data", hq, "target", "county=lintan", "year=2016", "amount=300万"])
        #expect(lintan.status == 65 && lintan.stderr.contains("north"), "\(lintan.stderr)")
        let report = try await Binary.runAsync(["report", "funds", "--data", hq, "--json"])
        #expect(report.stdout.contains("北县") && report.stdout.contains("南县") && !report.stdout.contains("临潭县"))
        let broken = dir.path("broken.json")
        try Data("{\"programme\": \"x\"}".utf8).write(to: broken)
        let refused = try await Binary.runAsync(["init", "--data", dir.path("x").path, "--site", "hq", "--role", "hq", "--plan", broken.path])
        #expect(refused.status == 65 && !FileManager.default.fileExists(atPath: dir.path("x").path), "\(refused.stderr)")
    }
}

/// Real processes: HQ serving, three county nodes and a Dongli office record work in the plan's
/// words and sync over HTTP; HQ's reports hold their figures, and a refused write shows in HQ's
/// review queue and in its origin's `rejections`. The workbook opens in a real XLSX reader
/// (Debian's python3-openpyxl) with the same figures as the CSV and the JSON.
@Suite struct ProgrammeFleetTests {
    @Test func workAtThreeCountiesAndAnOfficeReachesHQsReports() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        let counties = ["chengde", "lintan", "gangu"]
        for c in counties { try Federation.member(dir.path(c).path, site: c, label: "\(c)-1", hq: hq) }
        let office = dir.path("office").path
        try Federation.member(office, site: "dongli", role: "office", label: "dongli-edu", hq: hq)
        let finance = dir.path("finance").path
        try Federation.member(finance, site: "finance", role: "finance", label: "finance-1", hq: hq)
        let server = try ServeProcess(data: hq)
        defer { _ = server.stop() }
        func run(_ node: String, _ args: [String], exit: Int32 = 0) async throws {
            let r = try await Binary.runAsync(args.prefix(1) + ["--data", node] + args.dropFirst())
            #expect(r.status == exit, "\(args): \(r.stderr)")
        }
        for (i, c) in counties.enumerated() {
            let node = dir.path(c).path
            try await run(node, ["sync", "--peer", server.url])
            try await run(node, ["add", "training", "topic=电商", "attendees=\(40 + i)", "date=2017-05-0\(i + 1)"])
            try await run(node, ["add", "labour_transfer", "destination=tianjin", "people=\(10 * (i + 1))", "poor=3", "date=2017-06-01"])
            try await run(node, ["add", "expenditure", "purpose=设备", "amount=\(i + 1)万", "date=2017-07-01"])
            // A county may not record another county's work: refused before anything is written.
            try await run(node, ["add", "training", "county=\(counties[(i + 1) % 3])", "topic=x", "attendees=1"], exit: 65)
            try await run(node, ["sync", "--peer", server.url])
        }
        try await run(office, ["sync", "--peer", server.url])
        try await run(office, ["add", "visit", "county=lintan", "direction=to_dongli", "people=12", "date=2017-08-08"])
        try await run(office, ["sync", "--peer", server.url])
        try await run(finance, ["sync", "--peer", server.url])
        try await run(finance, ["add", "disbursement", "county=gangu", "stage=advance", "amount=200万", "date=2017-03-15", "--confirm"])
        try await run(finance, ["sync", "--peer", server.url])
        // A county may not write a target (reference data): refused before anything is written.
        try await run(dir.path("gangu").path, ["add", "target", "county=gangu", "year=2017", "amount=1000万"], exit: 79)
        // A refused write: Lintan records a project offline under a prefix the plan allows;
        // meanwhile HQ installs a plan that no longer gives Lintan that prefix. Lintan's sync
        // pulls the new plan, its push is refused by it, and both sides show the refusal.
        let lintan = dir.path("lintan").path
        try await run(lintan, ["add", "project", "lintan-road", "name=村道", "county=lintan", "work_area=infrastructure"])
        var plan = try JSONSerialization.jsonObject(with: Programme.embeddedText) as! [String: Any]
        plan["version"] = (plan["version"] as! Int) + 1
        plan["counties"] = (plan["counties"] as! [[String: Any]]).map { c in
            var c = c
            if c["id"] as? String == "lintan" { c["prefixes"] = ["lt-"] }
            return c
        }
        let newPlan = dir.path("plan-v2.json")
        try JSONSerialization.data(withJSONObject: plan).write(to: newPlan)
        #expect(try await Binary.runAsync(["plan", "install", "--data", hq, newPlan.path]).status == 0)
        _ = try await Binary.runAsync(["sync", "--data", lintan, "--peer", server.url])
        let review = try await Self.json(hq, ["report", "review"])
        #expect(review.contains { $0["typeId"] as? String == "refused" }, "\(review)")
        let rejections = try await Binary.runAsync(["rejections", "--data", lintan, "--json"])
        #expect(rejections.stdout.contains("\"own\":true"), "\(rejections.stdout)")
        // As text: one line per node, refuser and reason, with the count; --each lists each.
        let grouped = try await Binary.runAsync(["rejections", "--data", lintan])
        let reason = try #require(grouped.stdout.split(separator: "\n").first { $0.contains("this node") }, "\(grouped.stdout)")
        #expect(reason.contains(" 1 ") && grouped.stdout.contains("refused by"), "\(grouped.stdout)")
        let each = try await Binary.runAsync(["rejections", "--data", lintan, "--each"])
        #expect(each.status == 0 && each.stdout.contains("transaction") && each.stdout.contains("/"), "\(each.stdout)")

        let activities = try await Self.json(hq, ["report", "activities", "--year", "2017"])
        let trainings = activities.filter { $0["kind"] as? String == "培训" }
        #expect(trainings.map { $0["attendees"] as? Int ?? 0 }.sorted() == [40, 41, 42], "\(activities)")
        let transfers = activities.filter { $0["kind"] as? String == "劳务输出" }
        #expect(transfers.map { $0["people"] as? Int ?? 0 }.reduce(0, +) == 60)
        #expect(activities.contains { $0["kind"] as? String == "考察互访" && $0["people"] as? Int == 12 })
        let funds = try await Self.json(hq, ["report", "funds", "--year", "2017"])
        let gangu = try #require(funds.first { $0["county"] as? String == "甘谷县" })
        #expect(gangu["disbursed"] as? Int == 200_000_000)
        #expect(gangu["remaining"] as? Int == gangu["target"] as! Int - 200_000_000, "what remains to disburse: \(gangu)")
        #expect(gangu["spent"] as? Int == 3_000_000)
        let sync = try await Self.json(hq, ["report", "sync"])
        #expect(Set(sync.compactMap { $0["siteId"] as? String }).isSuperset(of: ["chengde", "lintan", "gangu", "dongli", "finance"]))
        // Sites and roles as people read them; a site of the plan with no node yet is flagged.
        #expect(sync.contains { $0["site"] as? String == "临潭县" && $0["role"] as? String == "县" }, "\(sync)")
        #expect(!sync.contains { ($0["site"] as? String ?? "").allSatisfy(\.isASCII) }, "\(sync)")

        // The same figures in the workbook, the CSV and the JSON.
        let book = dir.path("hq.xlsx").path
        #expect(try await Binary.runAsync(["export", "--data", hq, "--format", "xlsx", "--out", book, "funds", "activities"]).status == 0)
        let csvDir = dir.path("csv").path
        #expect(try await Binary.runAsync(["export", "--data", hq, "--format", "csv", "--out", csvDir, "funds"]).status == 0)
        let csv = try String(contentsOfFile: csvDir + "/funds.csv", encoding: .utf8)
        let read = try Binary.shell(
            """
            /usr/bin/python3 -c '
            import openpyxl, sys
            wb = openpyxl.load_workbook("\(book)")
            ws = wb["资金"]
            assert wb.sheetnames == ["资金", "交流与活动"], wb.sheetnames
            assert ws.freeze_panes == "A2", ws.freeze_panes
            for row in ws.iter_rows(min_row=2, values_only=True):
                if row[0] == "甘谷县" and row[1] == "2017":
                    assert isinstance(row[5], (int, float)), row
                    print("%.2f %.2f %s" % (row[5], row[6], row[3]))
            '
            """)
        #expect(read.status == 0, "\(read.stderr)")
        #expect(read.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "200.00 3.00 规划")
        #expect(csv.contains("甘谷县,2017,1000.00,规划,0.00,200.00,3.00"))
    }

    static func json(_ node: String, _ args: [String]) async throws -> [[String: Any]] {
        let r = try await Binary.runAsync(args.prefix(2) + ["--data", node, "--json"] + args.dropFirst(2))
        guard r.status == 0, let rows = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] else {
            throw TestFailure("\(args): \(r.status) \(r.stderr)")
        }
        return rows
    }
}

/// The funds report at HQ counts a disbursement recorded offline at a county's finance desk that
/// arrives a day later on a USB stick, and the work of a node whose plan is one version behind.
@Suite struct ProgrammeOfflineTests {
    @Test func aBundleCarriedDisbursementAndAnOlderPlansEntriesAreCounted() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        let finance = dir.path("finance").path
        try Federation.member(finance, site: "finance", role: "finance", label: "finance-lintan-desk", hq: hq)
        let lintan = dir.path("lintan").path
        try Federation.member(lintan, site: "lintan", label: "lintan-1", hq: hq)
        // Both get the registry and HQ's plan (version 1) by bundle.
        let toAll = dir.path("hq.bundle").path
        #expect(try await Binary.runAsync(["bundle", "export", "--data", hq, "--out", toAll]).status == 0)
        for node in [finance, lintan] { #expect(try await Binary.runAsync(["bundle", "import", "--data", node, toAll]).status == 0) }

        // HQ moves to plan version 2 (one more donation field); Lintan still has version 1.
        var plan = try JSONSerialization.jsonObject(with: Programme.embeddedText) as! [String: Any]
        plan["version"] = (plan["version"] as! Int) + 1
        plan["kinds"] = (plan["kinds"] as! [[String: Any]]).map { k in
            var k = k
            if k["id"] as? String == "donation" {
                k["fields"] = (k["fields"] as! [[String: Any]]) + [["name": "purpose", "type": "text"]]
            }
            return k
        }
        let v2 = dir.path("v2.json")
        try JSONSerialization.data(withJSONObject: plan).write(to: v2)
        #expect(try await Binary.runAsync(["plan", "install", "--data", hq, v2.path]).status == 0)

        #expect(
            try await Binary.runAsync([
                "add", "--data", finance, "disbursement", "county=lintan", "stage=advance", "amount=120万", "date=2017-04-10", "--confirm",
            ]).status == 0
        )
        #expect(try await Binary.runAsync(["add", "--data", lintan, "expenditure", "purpose=课桌", "amount=8万", "date=2017-04-11"]).status == 0)
        #expect(try await Binary.runAsync(["add", "--data", lintan, "donation", "donor=某企业", "amount=3万", "date=2017-04-12"]).status == 0)
        for (node, name) in [(finance, "finance"), (lintan, "lintan")] {
            let file = dir.path("\(name).bundle").path
            #expect(try await Binary.runAsync(["bundle", "export", "--data", node, "--out", file]).status == 0)
            let imported = try await Binary.runAsync(["bundle", "import", "--data", hq, file])
            #expect(imported.status == 0, "\(imported.stderr)")
        }
        let report = try await ProgrammeFleetTests.json(hq, ["report", "funds", "--county", "lintan", "--year", "2017"])
        let row = try #require(report.first)
        #expect(row["disbursed"] as? Int == 120_000_000)
        #expect(row["spent"] as? Int == 8_000_000)
        #expect(row["donated"] as? Int == 3_000_000)
        let shown = try await Binary.runAsync(["plan", "show", "--data", hq, "--json"])
        #expect(shown.stdout.contains("\"version\":\(Programme.embedded.version + 1)"))
        let lintanPlan = try await Binary.runAsync(["plan", "show", "--data", lintan, "--json"])
        #expect(lintanPlan.stdout.contains("\"version\":\(Programme.embedded.version)"))
        // node approve takes only the plan's sites.
        let wrong = try await Binary.runAsync([
            "node", "approve", "--data", hq, "0123456789abcdef0123456789abcdef", "--key", String(repeating: "ab", count: 32), "--site", "lintna",
            "--role", "county",
        ])
        #expect(wrong.status == 65 && wrong.stderr.contains("not in the plan"), "\(wrong.stderr)")
    }
}

/// The task decomposition table imported from CSV, all or nothing; supervision events drive the
/// tasks report (overdue computed, never stored).
@Suite struct TaskImportTests {
    @Test func theDecompositionTableImportsAllOrNothingAndTasksReportComputesOverdue() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        #expect(try await Binary.runAsync(["init", "--data", hq, "--site", "hq", "--role", "hq"]).status == 0)
        let bad = dir.path("bad.csv")
        try Data(
            "\u{FEFF}id,title,work_area,lead_unit,due\r\nt-1,学校结对,education,区教育局,2017-12-31\r\nt-2,\"医疗队, 第一批\",helth,区卫生计生委,2017-13-01\r\n".utf8
        )
        .write(to: bad)
        let before = try await Binary.runAsync(["vector", "--data", hq, "--json"]).stdout
        let refused = try await Binary.runAsync(["import", "--data", hq, "task", bad.path])
        #expect(refused.status == 65, "\(refused.stderr)")
        #expect(refused.stderr.contains("line 3 (t-2)") && refused.stderr.contains("did you mean health") && refused.stderr.contains("not a date"))
        #expect(try await Binary.runAsync(["vector", "--data", hq, "--json"]).stdout == before)

        let good = dir.path("good.csv")
        try Data("id,title,work_area,lead_unit,due\nt-1,学校结对,education,区教育局,2017-06-30\nt-2,\"医疗队, 第一批\",health,区卫生计生委,2099-01-01\n".utf8)
            .write(to: good)
        let imported = try await Binary.runAsync(["import", "--data", hq, "task", good.path])
        #expect(imported.status == 0 && imported.stdout.contains("imported 2"), "\(imported.stderr)")
        #expect(
            try await Binary.runAsync(["add", "--data", hq, "supervision", "sv-1", "title=主体完工", "lead_unit=区教育局", "due=2017-05-01"]).status == 0)
        #expect(
            try await Binary.runAsync([
                "add", "--data", hq, "supervision_event", "item=sv-1", "event=extension", "new_due=2099-06-30", "county=lintan", "date=2017-04-20",
            ]).status
                == 0)
        let tasks = try await ProgrammeFleetTests.json(hq, ["report", "tasks"])
        let state = Dictionary(uniqueKeysWithValues: tasks.map { ($0["id"] as? String ?? "", $0["stateId"] as? String ?? "") })
        #expect(state == ["t-1": "overdue", "t-2": "open", "sv-1": "open"], "\(tasks)")
        // People read words: the state and the kind, never their codes.
        #expect(tasks.first { $0["id"] as? String == "t-1" }?["state"] as? String == "逾期")
        #expect(tasks.first { $0["id"] as? String == "sv-1" }?["kind"] as? String == "督办事项")
        let text = try await Binary.runAsync(["report", "--data", hq, "tasks"])
        #expect(text.stdout.contains("逾期") && text.stdout.contains("办理中") && !text.stdout.contains("overdue"), "\(text.stdout)")
        #expect(tasks.first { $0["id"] as? String == "sv-1" }?["extendedTo"] as? String == "2099-06-30")
        #expect(tasks.contains { $0["title"] as? String == "医疗队, 第一批" })

        // Issue 25: the seed's task tables are per county, with a responsible leader and person.
        let perCounty = dir.path("per-county.csv")
        try Data(
            "id,title,work_area,lead_unit,county,leader,person,due\nt-lt,临潭劳务培训,labour,区人力社保局,临潭县,王副区长,李科长,2099-12-31\nt-gg,甘谷劳务培训,labour,区人力社保局,gangu,王副区长,张科长,2099-12-31\n"
                .utf8
        ).write(to: perCounty)
        let byCounty = try await Binary.runAsync(["import", "--data", hq, "task", perCounty.path])
        #expect(byCounty.status == 0, "\(byCounty.stderr)")
        let lintanTasks = try await ProgrammeFleetTests.json(hq, ["report", "tasks", "--county", "临潭县"])
        let ids = Set(lintanTasks.map { $0["id"] as? String ?? "" })
        #expect(ids.contains("t-lt") && !ids.contains("t-gg") && ids.contains("t-1"), "a district-wide task is every county's: \(ids)")
        let lt = lintanTasks.first { $0["id"] as? String == "t-lt" }
        #expect(lt?["county"] as? String == "临潭县" && lt?["countyId"] as? String == "lintan")
        #expect(lt?["leader"] as? String == "王副区长" && lt?["person"] as? String == "李科长")
        #expect(lintanTasks.first { $0["id"] as? String == "t-1" }?["county"] as? String == "各县")
        let tasksText = try await Binary.runAsync(["report", "--data", hq, "tasks"])
        #expect(tasksText.stdout.contains("责任领导") && tasksText.stdout.contains("责任人") && tasksText.stdout.contains("王副区长"))

        // A supervision event naming no task or item here is refused (the money model's cross-check); nothing is written.
        let vector = try await Binary.runAsync(["vector", "--data", hq, "--json"]).stdout
        let stray = try await Binary.runAsync([
            "add", "--data", hq, "supervision_event", "item=sv-2", "event=feedback", "county=lintan", "date=2017-05-02",
        ])
        #expect(stray.status == 65 && stray.stderr.contains("没有督办事项或任务sv-2"), "\(stray.stderr)")
        #expect(try await Binary.runAsync(["vector", "--data", hq, "--json"]).stdout == vector)
        let onTask = try await Binary.runAsync([
            "add", "--data", hq, "supervision_event", "item=t-lt", "event=feedback", "county=lintan", "date=2017-05-02",
        ])
        #expect(onTask.status == 0, "an event on a task of the decomposition table: \(onTask.stderr)")
    }
}
