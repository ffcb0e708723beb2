import Foundation
import SyncNode
import SyncProtocol
import Testing

/// HQ's review of submissions through the real binary and a real `serve`: approve and return with
/// a note at HQ, the review reaching the county by sync, the county unable to review, and the
/// activities report filtered to approved work.
@Suite struct SubmissionReviewTests {
    @Test func hqReturnsAndApprovesAndTheCountySeesWhy() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (hq, lintan) = try Federation.hqAndLintan(in: dir)
        let server = try ServeProcess(data: hq)
        defer { _ = server.stop() }
        func run(_ node: String, _ args: [String]) async throws -> Binary.Result {
            try await Binary.runAsync(args + ["--data", node])
        }
        #expect(try await run(lintan, ["add", "training", "topic=电商", "attendees=40", "date=2017-05-01"]).status == 0)
        #expect(try await run(lintan, ["add", "training", "topic=种植", "attendees=25", "date=2017-05-02"]).status == 0)
        let lintanID = try Federation.identity(lintan)["node"] as! String
        // The county's two trainings are its transactions 1 and 2 (its node writes nothing else).
        #expect(try await Binary.runAsync(["sync", "--data", lintan, "--peer", server.url]).status == 0)
        #expect(try await ProgrammeFleetTests.json(hq, ["ledger", "list", "activities"]).count == 2)
        // By id prefix and by label.
        let first = "\(lintanID.prefix(8))/1"
        let second = "lintan-1/2"
        // Returning needs a note; a county cannot review; an unknown submission is not found.
        #expect(try await run(hq, ["submission", "return", first]).status == 64)
        let blank = try await run(hq, ["submission", "return", first, "--note", "  "])
        #expect(blank.status == 65 && blank.stderr.contains("note"), "\(blank.stderr)")
        let countyTries = try await run(lintan, ["submission", "approve", first])
        #expect(countyTries.status == 79 && countyTries.stderr.contains("only HQ"), "\(countyTries.status) \(countyTries.stderr)")
        #expect(try await run(hq, ["submission", "approve", "\(lintanID.prefix(8))/99"]).status == 3)
        let returned = try await run(hq, ["submission", "return", first, "--note", "参训人数与签到表不符，请更正"])
        #expect(returned.status == 0, "\(returned.stderr)")
        #expect(try await run(hq, ["submission", "approve", second]).status == 0)

        // HQ's activities report: all of it, or only what was approved.
        let all = try await ProgrammeFleetTests.json(hq, ["report", "activities"])
        #expect(all.compactMap { $0["attendees"] as? Int }.reduce(0, +) == 65)
        let approved = try await ProgrammeFleetTests.json(hq, ["report", "activities", "--approved"])
        #expect(approved.compactMap { $0["attendees"] as? Int }.reduce(0, +) == 25, "\(approved)")
        #expect(try await run(hq, ["report", "funds", "--approved"]).status == 64)

        // The review reaches the county with its next sync; its own work shows it.
        #expect(try await Binary.runAsync(["sync", "--data", lintan, "--peer", server.url]).status == 0)
        let reviews = try await ProgrammeFleetTests.json(lintan, ["submission", "list", "--state", "returned"])
        #expect(reviews.count == 1, "\(reviews)")
        #expect(reviews.first?["note"] as? String == "参训人数与签到表不符，请更正" && reviews.first?["seq"] as? Int == 1)
        // The reviews are not data that does not fit the plan.
        let review = try await ProgrammeFleetTests.json(lintan, ["report", "review"])
        #expect(!review.contains { ($0["item"] as? String ?? "").hasPrefix("reviews/") }, "\(review)")
    }
}
