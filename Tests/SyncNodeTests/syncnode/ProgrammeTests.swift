import Foundation
import SyncNode
import SyncProtocol
import Testing

@Suite struct ProgrammeTests {
    @Test func theEmbeddedPlanHasTheExactTargets() throws {
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

    @Test func amountsAreTypedInWanOrYuanAndKeptInWholeFen() throws {
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

    @Test func validationNamesTheNearestFieldAndEveryProblem() {
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
    }

    /// Through the real binary: targets and disbursements at HQ, a reversal, a bad input that
    /// writes nothing, and the funds report's figures.
    @Test func fundsReportSumsWithAReversalAndBadInputWritesNothing() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        #expect(try Binary.run(["init", "--data", hq, "--site", "hq", "--role", "hq"]).status == 0)
        func add(_ args: [String]) throws -> Binary.Result { try Binary.run(["add", "--data", hq] + args) }
        #expect(try add(["target", "county=lintan", "year=2017", "amount=1000万"]).status == 0)
        #expect(try add(["disbursement", "county=lintan", "stage=advance", "amount=300万", "date=2017-03-01"]).status == 0)
        let wrong = try Binary.run([
            "ledger", "append", "--data", hq, "disbursements", "--id", "d-wrong", "county=lintan", "kind=disbursement", "stage=progress",
            "amount_fen:=50000000", "date=2017-04-01",
        ])
        #expect(wrong.status == 0, "\(wrong.stderr)")
        #expect(try Binary.run(["ledger", "append", "--data", hq, "disbursements", "--reverses", "d-wrong", "date=2017-04-02"]).status == 0)
        let before = try Binary.run(["vector", "--data", hq, "--json"]).stdout
        let bad = try add(["disbursement", "county=lintna", "stage=advance", "amount=3.1234567万"])
        #expect(bad.status == 65)
        #expect(bad.stderr.contains("did you mean lintan") && bad.stderr.contains("fraction of a fen"), "\(bad.stderr)")
        #expect(try Binary.run(["vector", "--data", hq, "--json"]).stdout == before)

        let report = try Binary.run(["report", "funds", "--data", hq, "--county", "lintan", "--year", "2017", "--json"])
        let rows = try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [[String: Any]]
        let row = try #require(rows?.first, "\(report.stdout) \(report.stderr)")
        #expect(row["target"] as? Int == 1_000_000_000)
        #expect(row["disbursed"] as? Int == 300_000_000)
        #expect(row["disbursedPct"] as? Int == 3000)
        let csv = try Binary.run(["report", "funds", "--data", hq, "--csv"])
        #expect(csv.stdout.hasPrefix("\u{FEFF}"))
        #expect(csv.stdout.contains("临潭县,2017,1000.00,0.00,300.00"))
    }

    /// A plan for another programme (two other counties) drives validation and reports the same way.
    @Test func anotherProgrammesPlanDrivesValidationAndReports() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        var plan = try JSONSerialization.jsonObject(with: Programme.embeddedText) as! [String: Any]
        plan["programme"] = "other-2020"
        plan["counties"] = [
            ["id": "north", "name": "北县", "province": "某省", "carrier_unit": "甲街", "prefixes": ["no-"], "yearly_aid_wan": ["2016": 300]],
            ["id": "south", "name": "南县", "province": "某省", "carrier_unit": "乙街", "prefixes": ["so-"], "yearly_aid_wan": ["2016": 500]],
        ]
        plan["sites"] = [["id": "hq", "role": "hq", "name": "HQ"], ["id": "north", "role": "county", "name": "北县"]]
        let file = dir.path("plan.json")
        try JSONSerialization.data(withJSONObject: plan).write(to: file)
        let hq = dir.path("hq").path
        let created = try Binary.run(["init", "--data", hq, "--site", "hq", "--role", "hq", "--plan", file.path])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(try Binary.run(["add", "--data", hq, "target", "county=north", "year=2016", "amount=300万"]).status == 0)
        let lintan = try Binary.run(["add", "--data", hq, "target", "county=lintan", "year=2016", "amount=300万"])
        #expect(lintan.status == 65 && lintan.stderr.contains("north"), "\(lintan.stderr)")
        let report = try Binary.run(["report", "funds", "--data", hq, "--json"])
        #expect(report.stdout.contains("北县") && report.stdout.contains("南县") && !report.stdout.contains("临潭县"))
        let broken = dir.path("broken.json")
        try Data("{\"programme\": \"x\"}".utf8).write(to: broken)
        let refused = try Binary.run(["init", "--data", dir.path("x").path, "--site", "hq", "--role", "hq", "--plan", broken.path])
        #expect(refused.status == 65 && !FileManager.default.fileExists(atPath: dir.path("x").path), "\(refused.stderr)")
    }
}
