import Foundation
import SyncNode
import SyncProtocol
import Testing

/// The leading group's views through the real binary: the activities split, the assessment view
/// (the plan's headings and indicators, a column per county and 合计) and the supervision notice
/// (overdue and finished-late items by lead unit, with 合计 rows).
@Suite struct ViewsTests {
    /// Work of every kind the views count, at HQ, in 2017 (and one entry in 2018 the year filter leaves out).
    static func recordWork(_ hq: String) async throws {
        let entries: [[String]] = [
            ["secondment", "county=lintan", "direction=to_county", "type=teacher", "status=arrived", "people=2"],
            ["secondment", "county=lintan", "direction=to_county", "type=cadre", "status=arrived", "people=1"],
            ["secondment", "county=lintan", "direction=to_county", "type=teacher", "status=planned", "people=5"],
            ["secondment", "county=lintan", "direction=to_dongli", "type=cadre", "status=arrived", "people=3"],
            ["labour_transfer", "county=gangu", "destination=tianjin", "people=30", "poor=12"],
            ["labour_transfer", "county=gangu", "destination=local", "people=20", "poor=4"],
            ["training", "county=chengde", "topic=电商", "attendees=40", "group=labour", "held_in=local"],
            ["training", "county=chengde", "topic=管理", "attendees=15", "group=cadre", "held_in=tianjin"],
            ["medical", "county=lintan", "service=rounds", "people=8", "patients=420"],
            ["pairing", "county=chengde", "level=village", "dongli_party=某社区", "county_party=某村"],
            ["pairing", "county=gangu", "level=enterprise", "dongli_party=某公司", "county_party=某合作社"],
            ["school_pairing", "county=lintan", "dongli_school=东丽中学", "county_school=临潭一中"],
            ["leader_visit", "county=lintan", "event=visit", "level=district"],
            ["leader_visit", "county=gangu", "event=joint_meeting", "level=district"],
            ["sale", "county=chengde", "channel=supermarket", "amount=8万"],
            ["graduate_hire", "county=gangu", "people=6"],
            ["poverty_exit", "county=lintan", "people=1200", "households=310"],
            ["disbursement", "county=lintan", "stage=advance", "amount=300万"],
        ]
        for entry in entries {
            let r = try await Binary.runAsync(["add", "--data", hq] + entry + ["date=2017-05-01"])
            #expect(r.status == 0, "\(entry): \(r.stderr)")
        }
        let later = try await Binary.runAsync([
            "add", "--data", hq, "pairing", "county=chengde", "level=town", "dongli_party=甲", "county_party=乙", "date=2018-03-01",
        ])
        #expect(later.status == 0, "\(later.stderr)")
    }

    @Test func theAssessmentViewCountsEachIndicatorOnceAndTotalsTheDistrict() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        #expect(try await Binary.runAsync(["init", "--data", hq, "--site", "hq", "--role", "hq"]).status == 0)
        try await Self.recordWork(hq)
        let rows = try await ProgrammeFleetTests.json(hq, ["report", "assessment", "--year", "2017"])
        func row(_ id: String) throws -> [String: Any] { try #require(rows.first { $0["indicatorId"] as? String == id }, "\(id) in \(rows)") }
        func figures(_ id: String) throws -> [Int] { try ["chengde", "lintan", "gangu", "total"].map { try row(id)[$0] as? Int ?? -1 } }
        // Each of the plan's six headings, in its order.
        let headings = rows.compactMap { $0["heading"] as? String }.reduce(into: [String]()) { if $0.last != $1 { $0.append($1) } }
        #expect(headings == ["资金投入", "人才支援", "产业合作", "劳务协作", "携手奔小康", "组织领导"], "\(headings)")
        // Arrived and planned personnel, and the two directions, are never one sum.
        #expect(try figures("cadres_sent") == [0, 1, 0, 1])
        #expect(try figures("professionals_sent") == [0, 2, 0, 2])
        #expect(try figures("sent_planned") == [0, 5, 0, 5])
        #expect(try figures("received") == [0, 3, 0, 3])
        #expect(try figures("medical_teams") == [0, 8, 0, 8])
        #expect(try figures("cadres_trained") == [15, 0, 0, 15])
        #expect(try figures("labour_trained") == [40, 0, 0, 40])
        #expect(try figures("transferred") == [0, 0, 50, 50])
        #expect(try figures("transferred_poor") == [0, 0, 16, 16])
        #expect(try figures("to_tianjin") == [0, 0, 30, 30])
        #expect(try figures("graduates") == [0, 0, 6, 6])
        // The 2018 town pairing is outside the year asked for.
        #expect(try figures("towns") == [0, 0, 0, 0])
        #expect(try figures("villages") == [1, 0, 0, 1])
        #expect(try figures("enterprises") == [0, 0, 1, 1])
        #expect(try figures("schools") == [0, 1, 0, 1])
        #expect(try figures("out_of_poverty") == [0, 1200, 0, 1200])
        #expect(try figures("leader_visits") == [0, 1, 0, 1])
        #expect(try figures("joint_meetings") == [0, 0, 1, 1])
        // Money is the funds report's, in fen, and says 万元.
        #expect(try figures("sales") == [8_000_000, 0, 0, 8_000_000])
        #expect(try row("sales")["unit"] as? String == "万元")
        let funds = try await ProgrammeFleetTests.json(hq, ["report", "funds", "--year", "2017"])
        for (county, name) in [("chengde", "承德县"), ("lintan", "临潭县"), ("gangu", "甘谷县")] {
            let f = try #require(funds.first { $0["county"] as? String == name })
            #expect(try row("disbursed")[county] as? Int == f["disbursed"] as? Int, "\(county)")
            #expect(try row("target")[county] as? Int == f["target"] as? Int, "\(county)")
        }
        #expect(try row("disbursed")["total"] as? Int == 300_000_000)
        // All years: the 2018 pairing counts, and money outside the plan's years is in the 合计 as
        // in the funds report's whole-programme row (counted there, not nowhere).
        // (The forms refuse a budget year outside the plan's; a raw append, as an older node could
        // have written, keeps it.)
        let outside = try await Binary.runAsync([
            "ledger", "append", "--data", hq, "disbursements", "--id", "d-out", "county=gangu", "kind=disbursement", "stage=advance",
            "amount_fen:=5000000", "date=2021-03-01", "budget_year=2021",
        ])
        #expect(outside.status == 0, "\(outside.stderr)")
        let all = try await ProgrammeFleetTests.json(hq, ["report", "assessment"])
        #expect(all.first { $0["indicatorId"] as? String == "towns" }?["total"] as? Int == 1)
        let whole = try await ProgrammeFleetTests.json(hq, ["report", "funds"]).filter { ($0["year"] as? String ?? "").contains("–") }
        let disbursedAll = try #require(all.first { $0["indicatorId"] as? String == "disbursed" })
        for (county, name) in [("chengde", "承德县"), ("lintan", "临潭县"), ("gangu", "甘谷县")] {
            let f = try #require(whole.first { $0["county"] as? String == name })
            #expect(disbursedAll[county] as? Int == f["disbursed"] as? Int && disbursedAll[county] != nil, "\(county): \(disbursedAll) \(f)")
        }
        #expect(disbursedAll["gangu"] as? Int == 5_000_000)
        // People read the carrier unit and the county, and 合计.
        let text = try await Binary.runAsync(["report", "--data", hq, "assessment", "--year", "2017"])
        #expect(text.stdout.contains("东丽开发区—承德县") && text.stdout.contains("合计") && text.stdout.contains("8.00"), "\(text.stdout)")
    }

    @Test func theActivitiesReportSplitsPersonnelDestinationsAndGroups() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        #expect(try await Binary.runAsync(["init", "--data", hq, "--site", "hq", "--role", "hq"]).status == 0)
        try await Self.recordWork(hq)
        let rows = try await ProgrammeFleetTests.json(hq, ["report", "activities", "--year", "2017", "--county", "lintan"])
        let secondments = rows.filter { $0["kindId"] as? String == "secondment" }
        // Lintan: 2 teachers and 1 cadre arrived, 5 planned, 3 came to Dongli: four rows, not "11".
        #expect(secondments.count == 4, "\(secondments)")
        #expect(
            secondments.contains { $0["detail"] as? String == "东丽派往受援县 · 教师 · 计划" && $0["people"] as? Int == 5 }, "\(secondments)")
        #expect(secondments.contains { $0["detailId"] as? String == "direction=to_dongli/type=cadre/status=arrived" && $0["people"] as? Int == 3 })
        let gangu = try await ProgrammeFleetTests.json(hq, ["report", "activities", "--year", "2017", "--county", "gangu"])
        let tianjin = try #require(gangu.first { $0["detailId"] as? String == "destination=tianjin" })
        #expect(tianjin["people"] as? Int == 30 && tianjin["poor"] as? Int == 12)
        let chengde = try await ProgrammeFleetTests.json(hq, ["report", "activities", "--year", "2017", "--county", "chengde"])
        #expect(chengde.contains { $0["detail"] as? String == "农村劳动力 · 当地培训" && $0["attendees"] as? Int == 40 }, "\(chengde)")
        #expect(chengde.contains { $0["detail"] as? String == "农超对接" && $0["amount"] as? Int == 8_000_000 })
        let medical = try #require(rows.first { $0["kindId"] as? String == "medical" })
        #expect(medical["patients"] as? Int == 420 && medical["detail"] as? String == "巡诊")
    }

    @Test func theNoticeListsOverdueAndLateItemsByLeadUnitWithTotals() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        #expect(try await Binary.runAsync(["init", "--data", hq, "--site", "hq", "--role", "hq"]).status == 0)
        func add(_ args: [String]) async throws {
            let r = try await Binary.runAsync(["add", "--data", hq] + args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
        }
        try await add([
            "task", "t-edu", "title=学校结对", "work_area=education", "lead_unit=区教育局", "county=gangu", "leader=王某", "person=李某", "due=2017-06-30",
        ])
        try await add(["supervision", "sv-1", "title=东丽小学主体完工", "lead_unit=区教育局", "due=2017-10-31", "county=lintan"])
        try await add(["supervision", "sv-2", "title=医疗队进驻", "lead_unit=区卫生计生委", "due=2017-08-31", "county=gangu"])
        try await add(["supervision", "sv-3", "title=按期完成", "lead_unit=区卫生计生委", "due=2017-09-30", "county=lintan"])
        // Finished 15 days late; extended then finished within the extension; finished on time.
        try await add(["supervision_event", "item=t-edu", "event=completion", "date=2017-07-15", "county=gangu"])
        try await add(["supervision_event", "item=sv-2", "event=extension", "new_due=2017-09-30", "date=2017-08-20", "county=gangu"])
        try await add(["supervision_event", "item=sv-2", "event=completion", "date=2017-09-15", "county=gangu"])
        try await add(["supervision_event", "item=sv-3", "event=completion", "date=2017-09-01", "county=lintan"])
        let rows = try await ProgrammeFleetTests.json(hq, ["report", "notice"])
        let items = rows.filter { $0["rowType"] as? String == "item" }
        #expect(Set(items.compactMap { $0["id"] as? String }) == ["t-edu", "sv-1"], "\(rows)")
        let late = try #require(items.first { $0["id"] as? String == "t-edu" })
        #expect(late["state"] as? String == "延期完成" && late["daysLate"] as? Int == 15 && late["finishedOn"] as? String == "2017-07-15")
        #expect(late["leader"] as? String == "王某" && late["person"] as? String == "李某" && late["county"] as? String == "甘谷县")
        let overdue = try #require(items.first { $0["id"] as? String == "sv-1" })
        #expect(overdue["state"] as? String == "逾期" && (overdue["daysLate"] as? Int ?? 0) > 3000)
        let unitTotal = try #require(rows.first { $0["rowType"] as? String == "unit total" && $0["leadUnit"] as? String == "区教育局" })
        #expect(unitTotal["county"] as? String == "合计" && unitTotal["title"] as? String == "逾期1项，延期完成1项", "\(unitTotal)")
        #expect(!rows.contains { $0["leadUnit"] as? String == "区卫生计生委" }, "nothing of that unit is late: \(rows)")
        let district = try #require(rows.last)
        #expect(district["rowType"] as? String == "total" && district["leadUnit"] as? String == "全区")
        // The tasks report says the same items are done, and the projects' words are untouched.
        let tasks = try await ProgrammeFleetTests.json(hq, ["report", "tasks"])
        #expect(tasks.first { $0["id"] as? String == "t-edu" }?["stateId"] as? String == "done")
    }

    @Test func aPlanWhoseAssessmentNamesWhatItDoesNotHaveIsRefused() async throws {
        let plan = Programme.embedded
        var bad = plan
        bad.assessment = [
            Assessment.Heading(
                id: "x", name: "测试",
                indicators: [
                    .init(id: "a", name: "未知类型", kind: "no_such_kind"),
                    .init(id: "b", name: "错值", kind: "pairing", matching: ["level": ["city"]]),
                    .init(id: "c", name: "错字段", kind: "pairing", sum: "dongli_party"),
                    .init(id: "d", name: "错资金", money: "income"),
                    .init(id: "d", name: "重复", money: "disbursed"),
                    .init(id: "e", name: "非活动", kind: "disbursement"),
                ])
        ]
        let problems = bad.problems().joined(separator: "\n")
        for expected in [
            "no_such_kind is no kind of the activities ledger", "city is not a value of pairing.level",
            "sums dongli_party, which is no whole-number or money field", "money 'income' is no column", "x/d appears twice",
            "disbursement is no kind of the activities ledger",
        ] {
            #expect(problems.contains(expected), "\(expected) in \(problems)")
        }
        #expect(plan.problems().isEmpty, "\(plan.problems())")
    }

    @Test func civilDatesCountDaysAcrossMonthsAndLeapYears() {
        #expect(CivilDate("1970-01-01")?.day == 0)
        #expect(CivilDate("2017-07-15")!.day - CivilDate("2017-06-30")!.day == 15)
        #expect(CivilDate("2016-03-01")!.day - CivilDate("2016-02-28")!.day == 2)
        #expect(CivilDate("2017-03-01")!.day - CivilDate("2017-02-28")!.day == 1)
        #expect(CivilDate("2000-03-01")!.day - CivilDate("2000-02-28")!.day == 2)
        for bad in ["2017-02-29", "2017-13-01", "2017-1-01", "abcd-ef-gh", ""] { #expect(CivilDate(bad) == nil, "\(bad)") }
    }
}
