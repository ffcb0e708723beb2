import Foundation
import SyncNode
import SyncProtocol
import Testing

/// Money HQ can trust, through the real binary: what a county's typo or a hostile county's entry
/// does to HQ's figures (nothing traps, everything is listed), targets from the plan, budget
/// years, the plausibility and cross-checks at entry and in review, and corrections that move
/// every figure together.
@Suite struct MoneyTrustTests {
    static func run(_ node: String, _ args: [String], exit: Int32 = 0) async throws -> Binary.Result {
        let r = try await Binary.runAsync(args + ["--data", node])
        #expect(r.status == exit, "\(args): \(r.status) \(r.stderr)")
        return r
    }

    static func json(_ node: String, _ args: [String]) async throws -> [[String: Any]] {
        try await ProgrammeFleetTests.json(node, args)
    }

    /// A county appends two expenditures of 5×10^18 fen with the raw ledger command (its own
    /// county: the policy allows it); they reach HQ's serving process. Before, the next funds
    /// report or dashboard view died of an overflow and took `serve` with it. Now the figure is
    /// shown as beyond range, the entries and the total are in the review, and `serve` answers.
    @Test func aCountysOverflowingEntriesNeitherStopHQNorHideInTheFigures() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (hq, lintan) = try Federation.hqAndLintan(in: dir)
        let password = "money-trust-2017"
        let added = try Binary.shell("printf '\(password)\\n' | \"$SYNCNODE\" user add --data '\(hq)' admin --role admin")
        #expect(added.status == 0, "\(added.stderr)")
        let server = try ServeProcess(data: hq)
        defer { server.stop() }
        for _ in 0..<2 {
            _ = try await Self.run(
                lintan,
                ["ledger", "append", "expenditures", "county=lintan", "kind=expenditure", "amount_fen:=5000000000000000000", "date=2017-05-01"])
        }
        _ = try await Self.run(lintan, ["sync", "--peer", server.url])
        let funds = try await Self.json(hq, ["report", "funds", "--county", "lintan"])
        let row2017 = try #require(funds.first { $0["year"] as? String == "2017" })
        #expect(row2017["spent"] as? String == "超出范围", "\(row2017)")
        let review = try await Self.json(hq, ["report", "review"])
        let listed = review.filter { ($0["item"] as? String ?? "").hasPrefix("expenditures") }
        #expect(listed.count == 3, "two entries and the total: \(review)")
        #expect(
            listed.contains {
                ($0["detail"] as? String ?? "").contains("超过临潭县整个帮扶期的援助总额5000.00万元") && ($0["recordedBy"] as? String ?? "").hasPrefix("lintan-1")
            })
        // The dashboard, the XLSX export and the sync API of the serving HQ: all answer.
        let cookies = dir.path("cookies").path
        let pages = try Binary.shell(
            """
            set -e
            curl -s -o /dev/null -c '\(cookies)' -H 'Origin: \(server.url)' --data-urlencode 'user=admin' --data-urlencode 'password=\(password)' \(server.url)/login
            curl -s -b '\(cookies)' -o '\(dir.path("dash.html").path)' -w '%{http_code} ' \(server.url)/
            curl -s -b '\(cookies)' -o '\(dir.path("book.xlsx").path)' -w '%{http_code} ' \(server.url)/export/reports.xlsx
            curl -s -o /dev/null -w '%{http_code}' \(server.url)/health
            """)
        #expect(pages.stdout == "200 200 200", "\(pages.stdout) \(pages.stderr)")
        let dashboard = try String(contentsOf: dir.path("dash.html"), encoding: .utf8)
        #expect(dashboard.contains("超出范围") && dashboard.contains("超过临潭县整个帮扶期的援助总额"))
        _ = try await Self.run(lintan, ["sync", "--peer", server.url])
        #expect(server.process.isRunning)
    }

    /// A fresh HQ reports the plan's yearly aid as every target; setting one replaces it (twice
    /// does not double it); a target apart from the plan is said so in the funds report and
    /// listed in review.
    @Test func targetsComeFromThePlanAndSettingOneTwiceReplacesIt() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        let fresh = try await Self.json(hq, ["report", "funds"])
        let targets = fresh.filter { Int($0["year"] as? String ?? "") != nil && $0["countyId"] as? String != "district" }
        #expect(targets.count == 15)
        // The district's 合计: a row per year and one over the programme, the counties' sums; what
        // remains to disburse is the whole target before anything is disbursed.
        let district = fresh.filter { $0["countyId"] as? String == "district" }
        #expect(district.count == 6 && district.allSatisfy { $0["county"] as? String == "全区合计" }, "\(district)")
        #expect(district.first { $0["year"] as? String == "2017" }?["target"] as? Int == 4_000_000_000)
        #expect(district.first { $0["year"] as? String == "2016–2020" }?["remaining"] as? Int == 20_000_000_000)
        #expect(
            targets.filter { $0["county"] as? String == "承德县" }.allSatisfy {
                $0["target"] as? Int == 2_000_000_000 && $0["targetBasis"] as? String == "规划"
            })
        #expect(targets.filter { $0["county"] as? String != "承德县" }.allSatisfy { $0["target"] as? Int == 1_000_000_000 })
        #expect(fresh.first { $0["county"] as? String == "承德县" && $0["year"] as? String == "2016–2020" }?["target"] as? Int == 10_000_000_000)
        _ = try await Self.run(hq, ["add", "target", "county=lintan", "year=2017", "amount=1200万"])
        _ = try await Self.run(hq, ["add", "target", "county=lintan", "year=2017", "amount=1200万"])
        let twice = try await Self.json(hq, ["report", "funds", "--county", "lintan", "--year", "2017"])
        #expect(twice.first?["target"] as? Int == 1_200_000_000 && twice.first?["targetBasis"] as? String == "另定（规划1000.00万元）", "\(twice)")
        let review = try await Self.json(hq, ["report", "review"])
        #expect(review.contains { ($0["detail"] as? String ?? "").contains("临潭县2017年度目标另定为1200.00万元，规划为1000.00万元") }, "\(review)")
        // Set back to the plan's figure: no longer listed.
        _ = try await Self.run(hq, ["add", "target", "county=lintan", "year=2017", "amount=1000万"])
        let back = try await Self.json(hq, ["report", "review"])
        #expect(!back.contains { ($0["detail"] as? String ?? "").contains("目标另定") }, "\(back)")
    }

    /// An entry's budget year: from its date inside the plan's years (said so), refused outside
    /// unless given; money appended outside the plan's years, or of no county, still has a row.
    @Test func budgetYearsAndNoAmountAbsentFromEveryRow() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        let dated = try await Self.run(
            hq, ["add", "disbursement", "county=lintan", "stage=advance", "amount=100万", "date=2018-01-15", "budget_year=2017"])
        #expect(!dated.stdout.isEmpty)
        let defaulted = try await Self.run(hq, ["add", "disbursement", "county=lintan", "stage=advance", "amount=50万", "date=2018-02-01"])
        #expect(defaulted.stderr.contains("资金年度2018（按日期2018-02-01）"), "\(defaulted.stderr)")
        // No date: today is outside the plan's years, so the entry needs a budget year and a confirmation.
        let undated = try await Self.run(hq, ["add", "disbursement", "county=lintan", "stage=advance", "amount=50万"], exit: 65)
        #expect(undated.stderr.contains("请写明资金年度（budget_year，2016–2020）") && undated.stderr.contains("nothing was written"), "\(undated.stderr)")
        let late = try await Self.run(
            hq, ["add", "disbursement", "county=lintan", "stage=advance", "amount=5万", "date=2021-03-01", "budget_year=2020"], exit: 65)
        #expect(late.stderr.contains("日期2021-03-01不在规划年度2016–2020内") && late.stderr.contains("--confirm"), "\(late.stderr)")
        _ = try await Self.run(
            hq, ["add", "disbursement", "county=lintan", "stage=advance", "amount=5万", "date=2021-03-01", "budget_year=2020", "--confirm"])
        // Raw entries another version could send: a 2021 budget year, a county outside the plan.
        _ = try await Self.run(
            hq,
            ["ledger", "append", "disbursements", "county=lintan", "kind=disbursement", "stage=advance", "amount_fen:=7000000", "date=2021-05-01"])
        _ = try await Self.run(
            hq,
            ["ledger", "append", "disbursements", "county=lintna", "kind=disbursement", "stage=advance", "amount_fen:=3000000", "date=2017-05-01"])
        let funds = try await Self.json(hq, ["report", "funds"])
        func disbursed(_ county: String, _ year: String) -> Int? {
            funds.first { $0["county"] as? String == county && $0["year"] as? String == year }?["disbursed"] as? Int
        }
        #expect(disbursed("临潭县", "2017") == 100_000_000 && disbursed("临潭县", "2018") == 50_000_000 && disbursed("临潭县", "2020") == 5_000_000)
        #expect(disbursed("临潭县", Store.outsideYears) == 7_000_000, "\(funds)")
        #expect(disbursed("临潭县", "2016–2020") == 162_000_000)
        #expect(disbursed(Store.noCounty, Store.outsideYears) == 3_000_000)
        let review = try await Self.json(hq, ["report", "review"])
        #expect(review.contains { ($0["detail"] as? String ?? "").contains("资金年度2021不在规划年度2016–2020内") }, "\(review)")
        #expect(review.contains { ($0["detail"] as? String ?? "").contains("县“lintna”不在规划中") })
    }

    /// Each class of implausible entry at entry: refused, or recorded only when confirmed; nothing
    /// written otherwise. The same checks list entries that arrive without them (the raw ledger
    /// command) in HQ's review.
    @Test func plausibilityAndCrossChecksAtEntryAndInReview() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        _ = try await Self.run(hq, ["add", "project", "lt-school", "name=东丽小学", "county=lintan", "work_area=education"])
        _ = try await Self.run(hq, ["add", "supervision", "sv-1", "title=主体完工", "lead_unit=区教育局", "due=2017-10-31"])
        _ = try await Self.run(hq, ["add", "allocation", "project=lt-school", "amount=300万", "date=2017-03-01"])
        let before = try await Self.run(hq, ["vector", "--json"]).stdout
        let cases: [([String], String, Bool)] = [
            (["expenditure", "county=lintan", "amount=-12万", "date=2017-05-01"], "不是正数", false),
            (["expenditure", "county=lintan", "amount=120000000万", "date=2017-05-01"], "超过临潭县整个帮扶期的援助总额5000.00万元", true),
            (["training", "county=lintan", "topic=电商", "attendees=4000000", "date=2017-05-01"], "参训人数4000000超过合理上限2000", true),
            (["training", "county=lintan", "topic=电商", "attendees=40", "date=2027-05-01"], "日期2027-05-01不在规划年度2016–2020内", true),
            (["labour_transfer", "county=gangu", "destination=tianjin", "people=30", "poor=40", "date=2017-05-01"], "其中贫困人口40多于人数30", false),
            (["allocation", "county=gangu", "project=lt-school", "amount=30万", "date=2017-03-01"], "项目lt-school属于临潭县，款项却记在甘谷县", false),
            (
                ["disbursement", "project=lt-school", "stage=advance", "amount=1000万", "date=2017-03-05"], "项目lt-school拨付1000.00万元，超过安排的300.00万元",
                true
            ),
            (["disbursement", "county=lintan", "stage=advance", "amount=1050万", "date=2017-03-05"], "临潭县2017年度拨付1050.00万元，超过年度目标1000.00万元", true),
            (["disbursement", "project=lt-school", "stage=acceptance", "amount=10万", "date=2017-03-05"], "项目lt-school尚在计划阶段，不应拨付验收款", true),
            (["disbursement", "project=lt-school", "stage=retention", "amount=10万", "date=2017-03-05"], "不应拨付质保金（须验收后）", true),
            (["expenditure", "county=chengde", "project=cd-none", "amount=1万", "date=2017-03-05"], "no project 'cd-none' here", false),
            (["supervision_event", "county=lintan", "item=sv-none", "event=feedback", "date=2017-03-05"], "没有督办事项或任务sv-none", false),
        ]
        for (args, message, confirmable) in cases {
            let r = try await Self.run(hq, ["add"] + args, exit: 65)
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(r.stderr.contains("--confirm") == confirmable, "\(args): \(r.stderr)")
        }
        #expect(try await Self.run(hq, ["vector", "--json"]).stdout == before, "nothing was written")
        // A refused entry stays refused when confirmed; a confirmable one is recorded.
        _ = try await Self.run(hq, ["add", "expenditure", "county=lintan", "amount=-12万", "date=2017-05-01", "--confirm"], exit: 65)
        _ = try await Self.run(hq, ["add", "training", "county=lintan", "topic=电商", "attendees=4000", "date=2017-05-01", "--confirm"])

        // The same faults arriving without the entry checks: listed in review with who recorded them.
        for fields in [
            ["expenditures", "county=lintan", "kind=expenditure", "amount_fen:=-12000000", "date=2017-05-01"],
            ["activities", "county=gangu", "kind=labour_transfer", "destination=tianjin", "people:=30", "poor:=40", "date=2017-05-01"],
            ["allocations", "county=gangu", "kind=allocation", "project=lt-school", "amount_fen:=300000", "date=2017-03-01"],
            [
                "disbursements", "county=lintan", "kind=disbursement", "project=lt-school", "stage=acceptance", "amount_fen:=9000000000",
                "date=2017-03-05",
            ],
            ["expenditures", "county=lintan", "kind=expenditure", "project=lt-empty", "amount_fen:=100", "date=2017-03-05"],
            ["supervision_events", "county=lintan", "kind=supervision_event", "item=sv-none", "event=feedback", "date=2017-03-05"],
        ] {
            _ = try await Self.run(hq, ["ledger", "append"] + fields)
        }
        _ = try await Self.run(hq, ["add", "project", "lt-empty", "name=空项目", "county=lintan", "work_area=education"])
        let review = try await Self.json(hq, ["report", "review"])
        let details = review.map { $0["detail"] as? String ?? "" }
        for expected in [
            "金额-12.00万元不是正数", "其中贫困人口40多于人数30", "项目lt-school属于临潭县，款项却记在甘谷县", "项目lt-school拨付9000.00万元，超过安排的300.30万元",
            "临潭县2017年度拨付9000.00万元，超过年度目标1000.00万元", "项目lt-school尚在计划阶段，不应拨付验收款", "项目lt-empty尚无资金安排或拨付，却有支出",
            "没有督办事项或任务sv-none", "参训人数4000超过合理上限2000",
        ] {
            #expect(details.contains { $0.contains(expected) }, "\(expected) not in \(details)")
        }
        #expect(review.filter { $0["typeId"] as? String == "money" || $0["typeId"] as? String == "plan" }.allSatisfy { $0["recordedBy"] != nil })
    }

    /// A reversed disbursement (the raw command's reversal names no project) moves `project
    /// show`, the projects report, the funds report and the XLSX export alike; `correct` records
    /// the reversal and the corrected entry in one transaction.
    @Test func aCorrectionMovesEveryFigureTogether() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        _ = try await Self.run(hq, ["add", "project", "lt-school", "name=东丽小学", "county=lintan", "work_area=education"])
        let allocation = try await Self.run(hq, ["add", "allocation", "project=lt-school", "amount=300万", "date=2017-03-01"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let disbursement = try await Self.run(hq, ["add", "disbursement", "project=lt-school", "stage=advance", "amount=100万", "date=2017-03-05"])
            .stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // The raw reversal (carries county and amount, not the project).
        _ = try await Self.run(hq, ["ledger", "append", "disbursements", "--reverses", disbursement, "date=2017-03-06"])
        func figures() async throws -> [Int?] {
            let shown = try await Self.run(hq, ["project", "show", "lt-school", "--json"]).stdout
            let project = try JSONSerialization.jsonObject(with: Data(shown.utf8)) as? [String: Any]
            let projects = try await Self.json(hq, ["report", "projects"])
            let funds = try await Self.json(hq, ["report", "funds", "--county", "lintan", "--year", "2017"])
            let book = dir.path("book.xlsx").path
            _ = try await Self.run(hq, ["export", "--format", "xlsx", "--out", book, "funds", "projects"])
            let read = try Binary.shell(
                """
                /usr/bin/python3 -c '
                import openpyxl
                wb = openpyxl.load_workbook("\(book)")
                head = [c.value for c in wb["项目"][1]]
                for row in wb["项目"].iter_rows(min_row=2, values_only=True):
                    if row[0] == "lt-school": print(int(round(row[head.index("拨付(万元)")] * 100)), int(round(row[head.index("安排(万元)")] * 100)))
                '
                """)
            let sheet = read.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            return [
                project?["disbursed"] as? Int, projects.first?["disbursed"] as? Int, funds.first?["disbursed"] as? Int,
                sheet.first.map { $0 * 10_000 },
                project?["allocated"] as? Int, projects.first?["allocated"] as? Int, funds.first?["allocated"] as? Int,
                sheet.last.map { $0 * 10_000 },
            ]
        }
        #expect(try await figures() == [0, 0, 0, 0, 300_000_000, 300_000_000, 300_000_000, 300_000_000])
        // A typo mended: 300万 was 350万.
        let corrected = try await Self.run(hq, ["correct", allocation, "amount=350万"])
        #expect(
            corrected.stdout.contains("withdrew allocations/\(allocation)") && corrected.stdout.contains("corrected entry"), "\(corrected.stdout)")
        #expect(try await figures() == [0, 0, 0, 0, 350_000_000, 350_000_000, 350_000_000, 350_000_000])
        let ledger = try await Self.json(hq, ["ledger", "list", "allocations"])
        #expect(ledger.count == 3)
        let reversal = try #require(ledger.first { ($0["fields"] as? [String: Any])?[Names.reversesField] != nil })
        #expect((reversal["fields"] as? [String: Any])?["project"] as? String == "lt-school", "the reversal carries what the original counted under")
        // Corrected twice, withdrawn twice, nothing to change: refused, nothing written.
        let before = try await Self.run(hq, ["vector", "--json"]).stdout
        _ = try await Self.run(hq, ["correct", allocation, "amount=400万"], exit: 65)
        _ = try await Self.run(hq, ["correct", disbursement, "--undo"], exit: 65)
        _ = try await Self.run(hq, ["correct", "no-such-entry", "--undo"], exit: 3)
        _ = try await Self.run(hq, ["correct", allocation], exit: 64)
        #expect(try await Self.run(hq, ["vector", "--json"]).stdout == before)
    }

    /// Who recorded it: each transaction carries, signed with it, the person who made it at its
    /// node (the OS user of a command, the person behind sudo), and HQ shows it in the history,
    /// the ledger, `project show` and the review.
    @Test func authorshipTravelsSignedAndIsShownAtHQ() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (hq, lintan) = try Federation.hqAndLintan(in: dir)
        let server = try ServeProcess(data: hq)
        defer { server.stop() }
        func asClerk(_ args: [String], _ name: String) async throws {
            let r = try await Binary.runAsync(args + ["--data", lintan], environment: ["SUDO_USER": name])
            #expect(r.status == 0, "\(args): \(r.stderr)")
        }
        try await asClerk(["add", "project", "lt-clinic", "name=东丽卫生院", "county=lintan", "work_area=health"], "wangfang")
        try await asClerk(["update", "project", "lt-clinic", "name=东丽卫生院（新址）"], "lijun")
        try await asClerk(["add", "training", "topic=乡村医生", "attendees=40", "date=2017-05-01"], "wangfang")
        try await asClerk(["ledger", "append", "expenditures", "county=lintan", "kind=expenditure", "amount_fen:=-500", "date=2017-05-01"], "lijun")
        _ = try await Self.run(lintan, ["sync", "--peer", server.url])
        let history = try await Self.run(hq, ["record", "history", "projects", "lt-clinic", "--json"]).stdout
        let versions = try JSONSerialization.jsonObject(with: Data(history.utf8)) as? [[String: Any]] ?? []
        #expect(
            Set(versions.filter { $0["field"] as? String == "name" }.compactMap { $0["author"] as? String }) == ["wangfang", "lijun"], "\(history)")
        let table = try await Self.run(hq, ["record", "history", "projects", "lt-clinic"]).stdout
        #expect(table.contains("lintan-1（lijun）"), "\(table)")
        let activities = try await Self.json(hq, ["ledger", "list", "activities"])
        #expect(activities.first?["author"] as? String == "wangfang")
        let shown = try await Self.run(hq, ["project", "show", "lt-clinic"]).stdout
        #expect(shown.contains("lintan-1（wangfang）"), "\(shown)")
        let review = try await Self.json(hq, ["report", "review"])
        #expect(review.contains { ($0["detail"] as? String ?? "").contains("不是正数") && $0["recordedBy"] as? String == "lintan-1（lijun）" }, "\(review)")
        // HQ's own command names its OS user.
        _ = try await Self.run(hq, ["add", "target", "county=lintan", "year=2019", "amount=900万"])
        let targets = try await Self.json(hq, ["ledger", "list", "fund_targets"])
        #expect((targets.first?["author"] as? String ?? "").isEmpty == false)
    }
}
