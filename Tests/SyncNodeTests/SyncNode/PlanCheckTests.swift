import Foundation
import SyncNode
import SyncProtocol
import Testing

/// Issue 25: plans that should be refused were installed without a word (negative or missing aid,
/// aid outside the plan's years, duplicate ids, first-batch projects no county could record, two
/// counties sharing a prefix, no HQ site, a bogus money column, a changed plan under the same
/// version, a plan dropping counties that hold data). Each is refused with what is wrong.
@Suite struct PlanCheckTests {
    typealias JSON = [String: Any]

    static func embedded() throws -> JSON { try JSONSerialization.jsonObject(with: Programme.embeddedText) as! JSON }

    static func mapping(_ key: String, _ change: @escaping (inout JSON) -> Void, where match: @escaping (JSON) -> Bool) -> (inout JSON) -> Void {
        { plan in
            plan[key] = (plan[key] as! [JSON]).map { item in
                var item = item
                if match(item) { change(&item) }
                return item
            }
        }
    }

    static func county(_ id: String, _ change: @escaping (inout JSON) -> Void) -> (inout JSON) -> Void {
        mapping("counties", change) { $0["id"] as? String == id }
    }

    static func firstBatch(_ id: String, _ change: @escaping (inout JSON) -> Void) -> (inout JSON) -> Void {
        mapping("first_batch_projects", change) { $0["id"] as? String == id }
    }

    // Read-only after it is made; the closures hold no state.
    nonisolated(unsafe) static let cases: [(String, (inout JSON) -> Void, String)] = [
        (
            "negative aid", county("lintan") { $0["yearly_aid_wan"] = ["2016": -5, "2017": 1000, "2018": 1000, "2019": 1000, "2020": 1000] },
            "not between 0"
        ),
        (
            "aid outside the years",
            county("lintan") { c in
                var a = c["yearly_aid_wan"] as! JSON
                a["2031"] = 10
                c["yearly_aid_wan"] = a
            }, "outside the plan's years"
        ),
        (
            "a year without aid",
            county("gangu") { c in
                var a = c["yearly_aid_wan"] as! JSON
                a["2018"] = nil
                c["yearly_aid_wan"] = a
            }, "no yearly aid for 2018"
        ),
        ("a work area twice", { p in p["work_areas"] = (p["work_areas"] as! [JSON]) + [(p["work_areas"] as! [JSON])[0]] }, "appears twice"),
        ("a county twice", { p in p["counties"] = (p["counties"] as! [JSON]) + [(p["counties"] as! [JSON])[0]] }, "county chengde appears twice"),
        (
            "a first-batch project twice",
            { p in p["first_batch_projects"] = (p["first_batch_projects"] as! [JSON]) + [(p["first_batch_projects"] as! [JSON])[0]] }, "appears twice"
        ),
        ("first-batch: unknown county", firstBatch("cd-school") { $0["county"] = "beijing" }, "names no county"),
        ("first-batch: unknown work area", firstBatch("cd-school") { $0["work_area"] = "space" }, "no work area 'space'"),
        ("first-batch: unknown category", firstBatch("cd-school") { $0["category"] = "castle" }, "no category 'castle'"),
        ("first-batch: unknown stage", firstBatch("cd-school") { $0["stage"] = "dreamt" }, "no stage 'dreamt'"),
        ("first-batch: another county's prefix", firstBatch("cd-school") { $0["county"] = "lintan" }, "none of lintan's prefixes"),
        ("two counties sharing a prefix", county("gangu") { $0["prefixes"] = ["gg-", "lt-"] }, "share record ids"),
        ("an empty county name", county("gangu") { $0["name"] = " " }, "county gangu has no name"),
        ("no stages", { p in p["stages"] = [String]() }, "lists no stage"),
        ("no hq site", mapping("sites", { $0["role"] = "office" }, where: { $0["id"] as? String == "hq" }), "no site with role hq"),
        (
            "a county site without its county", mapping("sites", { $0["id"] = "minxian" }, where: { $0["id"] as? String == "gangu" }),
            "no county has the id minxian"
        ),
        (
            "a bogus money column", mapping("kinds", { $0["money"] = "pocketed" }, where: { $0["id"] as? String == "donation" }),
            "no column of the funds report"
        ),
        ("the missing key is named as the file spells it", { p in p["work_areas"] = nil }, "lacks `work_areas`"),
        ("a group twice", { p in p["groups"] = (p["groups"] as! [JSON]) + [(p["groups"] as! [JSON])[0]] }, "group carriers appears twice"),
        (
            "a unit neither lead nor partner",
            mapping("groups", { $0["units"] = [["unit": "区科委", "role": "boss"]] }, where: { $0["id"] as? String == "special" }),
            "neither lead nor partner"
        ),
    ]

    @Test(arguments: cases.indices) func aBadPlanIsRefusedSayingWhatIsWrong(_ index: Int) throws {
        let (what, change, says) = Self.cases[index]
        var plan = try Self.embedded()
        change(&plan)
        let data = try JSONSerialization.data(withJSONObject: plan)
        do {
            _ = try Programme.decode(data)
            Issue.record("\(what): installed")
        } catch {
            #expect(error.code == .invalidInput)
            #expect(error.message.contains(says), "\(what): \(error.message)")
        }
    }

    /// The seed's 23 first-batch items (承德 8, 临潭 9, 甘谷 6), each a first-batch project of its
    /// county (甘谷's dormitories are one item in two buildings), and nothing the seed does not list.
    @Test func theEmbeddedPlanHoldsEveryFirstBatchItemOfTheSeed() {
        let shared = ["资助教育卫生基础用具及设备", "农产品展示交易中心", "农超对接或农社对接", "干部交流、培训"]
        let seed: [String: [String]] = [
            "chengde": ["东丽小镇", "东丽小学", "东丽卫生院", "劳动力培训就业"] + shared,
            "lintan": ["东丽小镇", "东丽小学", "东丽卫生院", "临潭县疾控培训基地", "劳动力培训就业"] + shared,
            "gangu": ["学生公寓楼", "与甘谷腾达职业技术学校合作培训、落实就业"] + shared,
        ]
        #expect(seed.values.map(\.count).reduce(0, +) == 23)
        let projects = Programme.embedded.firstBatchProjects ?? []
        for (county, items) in seed {
            let names = projects.filter { $0["county"] == county }.compactMap { $0["name"] }
            for item in items { #expect(names.contains { $0.contains(item) }, "\(county): the seed's item \(item) is missing") }
            for name in names { #expect(items.contains { name.contains($0) }, "\(county): \(name) is no first-batch item of the seed") }
        }
        // The trade centres stand in Dongli (the seed's 产业经贸合作).
        #expect(projects.filter { $0["category"] == "trade-centre" }.allSatisfy { $0["township"] == "东丽区" })
    }

    /// Lead and partner units as the seed gives them, and its three groups of member units.
    @Test func theEmbeddedPlanNamesTheSeedsUnitsAndGroups() throws {
        let plan = Programme.embedded
        #expect(plan.workArea("overall")?.leadUnit.hasPrefix("帮扶载体单位") == true)
        #expect(plan.workArea("trade")?.partnerUnits == ["区农经委"])
        #expect(plan.workArea("infrastructure")?.partnerUnits == ["滨丽公司"])
        let groups = Dictionary(uniqueKeysWithValues: (plan.groups ?? []).map { ($0.name, $0) })
        #expect(Set(groups.keys) == ["帮扶载体单位", "专项工作组", "帮扶保障组"])
        #expect(groups["帮扶载体单位"]?.units.map(\.unit) == plan.counties.map(\.carrierUnit))
        let special = try #require(groups["专项工作组"]).units
        #expect(special.filter { $0.role == "lead" }.count == 6 && special.filter { $0.role == "partner" }.count == 5)
        #expect(groups["帮扶保障组"]?.units.map(\.unit) == ["区委宣传部", "区督查室", "区财政局"])
    }

    /// What a Chinese keyboard types: full-width digits and dashes, and counties and work areas by
    /// the names people read, are taken as the values they mean.
    @Test func fullWidthNumbersAndNamesPeopleReadAreAccepted() throws {
        let check = ProgrammeCheck(.embedded)
        let context = ProgrammeCheck.Context(site: "hq", role: .hq, today: "2017-06-30")
        let training = try #require(Programme.embedded.kind("training"))
        let typed = try check.check(
            kind: training, input: [("topic", "电商培训"), ("attendees", "４０"), ("county", "临潭县"), ("date", "２０１７－０６－３０"), ("work_area", "劳务培训就业")],
            context: context
        ).get()
        #expect(typed["attendees"] == .int(40))
        #expect(typed["county"] == .text("lintan"))
        #expect(typed["date"] == .text("2017-06-30"))
        #expect(typed["work_area"] == .text("labour"))
        // Still refused: words for numbers, and a county of no plan.
        for (field, text) in [("attendees", "四十"), ("county", "岷县")] {
            guard
                case .failure(let problems) = check.check(
                    kind: training, input: [("topic", "x"), ("attendees", "1")].filter { $0.0 != field } + [(field, text)], context: context)
            else {
                Issue.record("\(field)=\(text) was accepted")
                continue
            }
            #expect(problems.list.contains { $0.field == field }, "\(problems.list)")
            // Said in Chinese for the pages, with the names people read.
            let zh = problems.list.first { $0.field == field }?.zh ?? ""
            #expect(zh == (field == "county" ? "规划中没有县“岷县”；可选：承德县、临潭县、甘谷县" : "“四十”不是整数，请用阿拉伯数字"), "\(zh)")
        }
    }

    /// Report filters take the names people read, and a typo is answered with the nearest name.
    @Test func reportFiltersTakeNamesAndSuggestOnATypo() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        #expect(
            try await Binary.runAsync(["add", "--data", hq, "training", "county=临潭县", "topic=电商", "attendees=４０", "date=2017-05-10"]).status == 0)
        let byID = try await Binary.runAsync(["report", "--data", hq, "activities", "--county", "lintan", "--json"])
        let byName = try await Binary.runAsync(["report", "--data", hq, "activities", "--county", "临潭县", "--work-area", "劳务培训就业", "--json"])
        #expect(byID.status == 0 && byName.status == 0, "\(byName.stderr)")
        #expect(
            byName.stdout
                == (try await Binary.runAsync(["report", "--data", hq, "activities", "--county", "lintan", "--work-area", "labour", "--json"])).stdout
        )
        #expect(byID.stdout.contains("40"))
        let typo = try await Binary.runAsync(["report", "--data", hq, "funds", "--county", "临谭县"])
        #expect(typo.status == 65 && typo.stderr.contains("did you mean 临潭县?"), "\(typo.stderr)")
        let help = try await Binary.runAsync(["report", "--help"])
        #expect(help.stdout.contains("tasks"))
    }

    /// A table of 3,000 projects (15,000 changes, more than one transaction may hold) imports
    /// whole, in several transactions, once every row has passed; importing it again updates the
    /// same records; one bad row among them writes nothing. Before, the file was refused by the
    /// change limit, and every import read the whole table (1.2–1.4 s for 100 rows beside 20,000
    /// projects against 0.12–0.18 s beside 100, debug build; docs/PERFORMANCE.md).
    @Test func aLargeTableImportsWholeInSeveralTransactionsAndABadRowWritesNothing() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        var lines = ["id,name,county,work_area"]
        for i in 0..<3_000 { lines.append("lt-p\(i),项目\(i),临潭县,education") }
        let file = dir.path("projects.csv")
        try Data(lines.joined(separator: "\n").utf8).write(to: file)
        let before = try await jsonOutputAsync(["status", "--data", hq, "--json"]) as? [String: Any] ?? [:]
        let imported = try await Binary.runAsync(["import", "--data", hq, "project", file.path])
        #expect(imported.status == 0 && imported.stdout.contains("imported 3000 project records"), "\(imported.stderr)")
        let after = try await jsonOutputAsync(["status", "--data", hq, "--json"]) as? [String: Any] ?? [:]
        #expect((after["records"] as? Int ?? 0) - (before["records"] as? Int ?? 0) == 3_000)
        let transactions = (after["transactions"] as? Int ?? 0) - (before["transactions"] as? Int ?? 0)
        #expect(transactions >= 2 && transactions <= 3, "3,000 rows of 5 changes in transactions of at most 10,000: \(transactions)")
        let again = try await Binary.runAsync(["import", "--data", hq, "project", file.path])
        #expect(again.status == 0, "\(again.stderr)")
        let third = try await jsonOutputAsync(["status", "--data", hq, "--json"]) as? [String: Any] ?? [:]
        #expect(third["records"] as? Int == after["records"] as? Int, "importing again updates the same records")

        lines[2_500] = "lt-p2499,项目,临潭县,no-such-area"
        try Data(lines.joined(separator: "\n").utf8).write(to: file)
        let bad = try await Binary.runAsync(["import", "--data", hq, "project", file.path])
        #expect(bad.status == 65 && bad.stderr.contains("line 2501") && bad.stderr.contains("nothing was imported"), "\(bad.stderr)")
        let fourth = try await jsonOutputAsync(["status", "--data", hq, "--json"]) as? [String: Any] ?? [:]
        #expect(fourth["transactions"] as? Int == third["transactions"] as? Int, "a bad row wrote nothing")
    }

    /// `add --help` marks a field required only when it must be typed: an entry's date defaults to
    /// today, a kind's own work area to that area; a county's node fills in its county.
    @Test func addHelpDoesNotMarkDefaultedFieldsRequired() async throws {
        let help = try await Binary.runAsync(["add", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("date (default: today)"), "\(help.stdout.prefix(2000))")
        #expect(!help.stdout.contains("date (required)"))
        #expect(help.stdout.contains("work_area (default: labour)"))
        #expect(help.stdout.contains("county (required; a county's node fills in its own county)"))
        #expect(help.stdout.contains("project (required)"), "a field with no default stays required")
    }

    /// A project finished after its planned end is flagged (延期完工), as one past its end and not
    /// finished is (逾期); one finished in time is not.
    @Test func lateCompletionIsFlaggedAfterTheProjectIsFinished() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        for (id, end) in [("lt-late", "2017-06-30"), ("lt-ontime", "2017-06-30"), ("lt-overdue", "2017-01-31")] {
            let made = try await Binary.runAsync([
                "add", "--data", hq, "project", id, "name=\(id)", "county=lintan", "work_area=education", "planned_end=\(end)",
            ])
            #expect(made.status == 0, "\(made.stderr)")
        }
        for (id, date) in [("lt-late", "2017-08-01"), ("lt-ontime", "2017-06-20")] {
            let done = try await Binary.runAsync(["add", "--data", hq, "project_event", "project=\(id)", "stage=completed", "date=\(date)"])
            #expect(done.status == 0, "\(done.stderr)")
        }
        let report = try await Binary.runAsync(["report", "--data", hq, "projects", "--json"])
        let rows = try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [[String: Any]] ?? []
        let late = Dictionary(uniqueKeysWithValues: rows.map { ($0["id"] as? String ?? "", $0["late"] as? String ?? "") })
        #expect(late["lt-late"] == "延期完工", "\(report.stdout)")
        #expect(late["lt-ontime"] == "")
        #expect(late["lt-overdue"] == "逾期")
        // The stage in words, its id beside it for machines; the table people read has no ids.
        let finished = try #require(rows.first { $0["id"] as? String == "lt-late" })
        #expect(finished["stage"] as? String == "已完工" && finished["stageId"] as? String == "completed", "\(finished)")
        #expect(finished["countyId"] as? String == "lintan" && finished["county"] as? String == "临潭县")
        let text = try await Binary.runAsync(["report", "--data", hq, "projects"])
        #expect(text.stdout.contains("已完工") && !text.stdout.contains("completed") && !text.stdout.contains("lintan "), "\(text.stdout)")
    }

    @Test func theEmbeddedPlanPassesEveryCheck() throws {
        #expect(Programme.embedded.problems().isEmpty, "\(Programme.embedded.problems())")
    }

    /// Through the binary: a changed plan under the version in use, and a plan that leaves out a
    /// county holding data, are refused and change nothing; a higher version installs.
    @Test func aChangedPlanNeedsANewVersionAndKeepsCountiesThatHoldData() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        #expect(
            try await Binary.runAsync(["add", "--data", hq, "project", "gg-well", "name=水井", "county=gangu", "work_area=infrastructure"]).status == 0)
        func install(_ plan: JSON) async throws -> Binary.Result {
            let file = dir.path("plan.json")
            try JSONSerialization.data(withJSONObject: plan).write(to: file)
            return try await Binary.runAsync(["plan", "install", "--data", hq, file.path])
        }
        var sameVersion = try Self.embedded()
        sameVersion["title"] = "another title"
        let refused = try await install(sameVersion)
        #expect(refused.status == 65 && refused.stderr.contains("give it a higher version"), "\(refused.stderr)")
        var withoutGangu = try Self.embedded()
        withoutGangu["version"] = (withoutGangu["version"] as! Int) + 1
        withoutGangu["counties"] = (withoutGangu["counties"] as! [JSON]).filter { $0["id"] as? String != "gangu" }
        withoutGangu["sites"] = (withoutGangu["sites"] as! [JSON]).filter { $0["id"] as? String != "gangu" }
        withoutGangu["first_batch_projects"] = (withoutGangu["first_batch_projects"] as! [JSON]).filter { $0["county"] as? String != "gangu" }
        let dropped = try await install(withoutGangu)
        #expect(dropped.status == 65 && dropped.stderr.contains("甘谷县 (gangu: 1 records"), "\(dropped.stderr)")
        #expect(try await Binary.runAsync(["plan", "show", "--data", hq]).stdout.contains("甘谷"))
        var next = try Self.embedded()
        next["version"] = (next["version"] as! Int) + 1
        next["title"] = "another title"
        #expect(try await install(next).status == 0)
        #expect(try await install(next).status == 0, "installing the same plan again is no change")
    }
}
