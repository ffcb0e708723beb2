import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdBcrypt
import HummingbirdTesting
import Logging
import NIOCore
import SyncNode
import SyncProtocol
import SyncWeb
import Testing

/// The web pages over real HTTP on loopback (the node's router with the sync API and the pages):
/// the login, sessions and form tokens, bad input of each kind, and that a write from a form is
/// the same write as the CLI's (the policy, the plan's validation, nothing written on refusal).
/// One at a time: each starts a server and runs bcrypt, and the test client gives a request 15 s,
/// which eight of them at once beside the rest of the suite on two cores did not always get.
@Suite(.serialized) struct WebInterfaceTests {
    static let password = "correct horse battery"

    struct Web {
        let f: StoreFederation
        var node: TestNode { f.lintan }

        init() throws {
            f = try StoreFederation()
            let hash = Bcrypt.hash(WebInterfaceTests.password, cost: 4)
            for (name, role) in [("clerk", WebUser.Role.clerk), ("viewer", .viewer), ("admin", .admin)] {
                try f.lintan.store.addWebUser(name: name, role: role, passwordHash: hash)
                try f.hq.store.addWebUser(name: name, role: role, passwordHash: hash)
            }
        }

        func app(_ store: Store) -> some ApplicationProtocol {
            let router = NodeServer.router(service: SyncService(store: store), logger: Logger(label: "test"))
            WebInterface(store: store).register(on: router)
            return Application(router: router)
        }
    }

    /// A browser's view: the cookie it holds and the host it talks to.
    struct Browser {
        let client: any TestClientProtocol
        var cookie: String?
        /// The test client names the server `localhost` (the request's authority, its Host).
        var host: String { "localhost" }

        func headers(origin: String? = nil, form: Bool = false) -> HTTPFields {
            var h = HTTPFields()
            if let cookie { h[.cookie] = cookie }
            if let origin { h[HTTPField.Name("Origin")!] = origin }
            if form { h[.contentType] = "application/x-www-form-urlencoded" }
            return h
        }

        func get(_ uri: String) async throws -> TestResponse {
            try await client.execute(uri: uri, method: .get, headers: headers(), body: nil)
        }

        func post(_ uri: String, _ fields: [(String, String)], origin: String? = nil) async throws -> TestResponse {
            let body = fields.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
            return try await client.execute(
                uri: uri, method: .post, headers: headers(origin: origin ?? "http://\(host)", form: true), body: ByteBuffer(string: body))
        }

        static func encode(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }

        mutating func login(_ user: String, _ password: String = WebInterfaceTests.password) async throws -> TestResponse {
            let response = try await post("/login", [("user", user), ("password", password), ("next", "/entry")])
            if let set = response.headers[.setCookie] { cookie = String(set.split(separator: ";")[0]) }
            return response
        }

        /// The form token of the page at `uri`.
        func csrf(_ uri: String = "/entry/training") async throws -> String {
            let page = String(buffer: try await get(uri).body)
            guard let range = page.range(of: #"name="csrf" value="([0-9a-f]{64})""#, options: .regularExpression) else { return "" }
            return String(page[range].dropFirst(#"name="csrf" value=""#.count).prefix(64))
        }
    }

    @Test func withoutASessionEveryPageSendsToTheLoginAndEveryWriteIsRefused() async throws {
        let web = try Web()
        defer { web.f.remove() }
        try await web.app(web.node.store).testLive { client in
            let browser = Browser(client: client)
            for path in ["/", "/entry", "/entry/training", "/mine", "/conflicts", "/export/reports.xlsx", "/export/funds.csv"] {
                let r = try await browser.get(path)
                #expect(r.status == .seeOther, "\(path)")
                #expect(r.headers[.location]?.hasPrefix("/login?next=") == true, "\(path)")
            }
            let before = try web.node.store.storedDigest()
            for path in ["/entry/training", "/conflicts/resolve", "/logout"] {
                #expect(try await browser.post(path, [("csrf", "x"), ("attendees", "5")]).status == .unauthorized, "\(path)")
            }
            #expect(try web.node.store.storedDigest() == before)
            let login = try await browser.get("/login")
            #expect(login.status == .ok && String(buffer: login.body).contains(#"name="password""#))
            let missing = try await browser.get("/no/such/page")
            #expect(missing.status == .notFound && String(buffer: missing.body).contains("没有这个页面"))
            #expect(try await browser.get("/v1/nothing").status == .notFound)
        }
    }

    @Test func aSessionCookieIsHttpOnlyStrictAndExpiresAForgedOrExpiredOneOpensNothing() async throws {
        let web = try Web()
        defer { web.f.remove() }
        try await web.app(web.node.store).testLive { client in
            var browser = Browser(client: client)
            let ok = try await browser.login("clerk")
            #expect(ok.status == .seeOther && ok.headers[.location] == "/entry")
            let cookie = try #require(ok.headers[.setCookie])
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Max-Age=28800"), "\(cookie)")
            #expect(try await browser.get("/").status == .ok)

            var forged = Browser(client: client)
            forged.cookie = "syncnode_session=" + String(repeating: "ab", count: 32)
            #expect(try await forged.get("/").status == .seeOther)
            // A session whose time is up, as the node stores it.
            let token = String(repeating: "cd", count: 32)
            let hash = SHA256Hex.of(token)
            try web.node.store.startWebSession(user: "clerk", tokenHash: hash, csrf: "x", expires: web.node.store.nowMillis() - 1)
            var expired = Browser(client: client)
            expired.cookie = "syncnode_session=" + token
            #expect(try await expired.get("/").status == .seeOther)

            // Logging out ends the session on the node, not just in the browser.
            let csrf = try await browser.csrf("/")
            #expect(try await browser.post("/logout", [("csrf", csrf)]).status == .seeOther)
            #expect(try await browser.get("/").status == .seeOther)
        }
    }

    @Test func wrongPasswordsAreRefusedAndThenTheAccountWaitsWhileTheNodeKeepsServing() async throws {
        let web = try Web()
        defer { web.f.remove() }
        try await web.app(web.node.store).testLive { client in
            var browser = Browser(client: client)
            for attempt in 1...5 {
                let r = try await browser.login("clerk", "wrong password \(attempt)")
                #expect(r.status == .unauthorized && String(buffer: r.body).contains("用户名或密码不对"), "attempt \(attempt)")
                #expect(r.headers[.setCookie] == nil)
            }
            // Even the right password waits now, and the page says how long.
            let limited = try await browser.login("clerk")
            #expect(limited.status == .tooManyRequests && limited.headers[.retryAfter] != nil, "\(limited.status)")
            #expect(String(buffer: limited.body).contains("此用户名登录失败次数过多，请 \(limited.headers[.retryAfter] ?? "") 秒后再试"))
            #expect(try await browser.get("/health").status == .ok)
            // Another name from the same address is checked (issue 23: one user's typos held up the office).
            var other = Browser(client: client)
            #expect(try await other.login("viewer").status == .seeOther)
        }
    }

    @Test func aFormWriteIsTheCLIsWriteAndBadInputWritesNothing() async throws {
        let web = try Web()
        defer { web.f.remove() }
        try await web.app(web.node.store).testLive { client in
            var browser = Browser(client: client)
            _ = try await browser.login("clerk")
            let csrf = try await browser.csrf()
            #expect(csrf.count == 64)
            let before = try web.node.store.storedDigest()

            // A typo'd field value and an out-of-range number: each problem next to its field.
            let bad = try await browser.post(
                "/entry/training", [("csrf", csrf), ("county", "lintan"), ("date", "2017-13-40"), ("attendees", "abc"), ("topic", "种植")])
            let page = String(buffer: bad.body)
            #expect(bad.status == .unprocessableContent)
            #expect(page.contains(#"<div class="field invalid" data-field="attendees">"#), "\(page)")
            #expect(page.contains(#"<div class="field invalid" data-field="date">"#))
            #expect(page.contains("field-error"))
            #expect(page.contains(#"value="种植""#), "what the clerk typed stays in the form")
            // The summary at the top is not empty: it lists each problem under the field's label,
            // linked to the field (issue 25: it showed only its heading when every problem was a field's).
            let summary = page.components(separatedBy: #"id="form-errors""#).dropFirst().first?.components(separatedBy: "</div>").first ?? ""
            #expect(summary.contains(##"<a href="#f-attendees">参训人数："##) && summary.contains("abc"), "\(summary)")
            #expect(summary.contains(##"<a href="#f-date">"##), "\(summary)")
            // In the words people read (issue 25): what is wrong and what to write, in Chinese;
            // nothing of it in English on a Chinese page.
            #expect(summary.contains("“abc”不是整数") && summary.contains("不是日期；请写 年-月-日"), "\(summary)")
            #expect(!page.contains("is not a whole number") && !page.contains("is not a date"), "\(summary)")
            let wordsForNumbers = try await browser.post(
                "/entry/training", [("csrf", csrf), ("county", "lintan"), ("date", "2017-06-01"), ("attendees", "四十"), ("topic", "种植")])
            #expect(String(buffer: wordsForNumbers.body).contains("“四十”不是整数，请用阿拉伯数字"))
            // Another county's work, refused by the policy as the CLI's would be.
            let other = try await browser.post("/entry/training", [("csrf", csrf), ("county", "gangu"), ("attendees", "5")])
            // (the plan's check refuses it first, with the field named: 422, as the CLI's exit 65)
            #expect(other.status == .unprocessableContent && String(buffer: other.body).contains(#"data-field="county""#), "\(other.status)")
            #expect(try web.node.store.storedDigest() == before)

            // A token from another session, or a post from another site: refused, nothing written.
            #expect(
                try await browser.post("/entry/training", [("csrf", String(repeating: "0", count: 64)), ("attendees", "5")]).status == .forbidden)
            #expect(
                try await browser.post("/entry/training", [("csrf", csrf), ("attendees", "5")], origin: "http://evil.example").status == .forbidden)
            // An oversized form: 413, and the node keeps serving.
            let huge = try await browser.post("/entry/training", [("csrf", csrf), ("topic", String(repeating: "x", count: 100_000))])
            #expect(huge.status == .contentTooLarge)
            #expect(try web.node.store.storedDigest() == before)
            #expect(try await browser.get("/health").status == .ok)

            // A good one: recorded, listed as not yet sent.
            let good = try await browser.post(
                "/entry/training", [("csrf", csrf), ("county", "lintan"), ("date", "2017-06-01"), ("attendees", "40"), ("topic", "种植")])
            #expect(good.status == .seeOther && good.headers[.location]?.hasPrefix("/mine?recorded=") == true, "\(String(buffer: good.body))")
            let entries = try web.node.store.ledger("activities")
            #expect(entries.count == 1 && entries[0].fields["attendees"] == .int(40) && entries[0].fields["kind"] == .text("training"))
            let mine = String(buffer: try await browser.get("/mine").body)
            #expect(mine.contains(#"data-state="not_sent""#) && mine.contains("未发送"), "\(mine)")

            // The form carries a key of its own: sent twice (a retry after a lost answer, a double
            // click), it is recorded once and both answers lead to the same transaction.
            let form = String(buffer: try await browser.get("/entry/training").body)
            let key = try #require(form.components(separatedBy: #"name="_key" value=""#).dropFirst().first?.prefix(64)).description
            #expect(key.count == 64, "\(form)")
            let fields = [("csrf", csrf), ("_key", key), ("county", "lintan"), ("date", "2017-06-02"), ("attendees", "12"), ("topic", "养殖")]
            let once = try await browser.post("/entry/training", fields)
            let twice = try await browser.post("/entry/training", fields)
            #expect(once.status == .seeOther && twice.status == .seeOther && once.headers[.location] == twice.headers[.location], "\(twice.status)")
            #expect(try web.node.store.ledger("activities").count == 2)
            // Another form's key records again.
            let fresh = fields.map { $0.0 == "_key" ? ("_key", String(repeating: "a", count: 64)) : $0 }
            #expect(try await browser.post("/entry/training", fresh).status == .seeOther)
            #expect(try web.node.store.ledger("activities").count == 3)

            // A viewer sees the form but cannot submit it.
            var viewer = Browser(client: client)
            _ = try await viewer.login("viewer")
            let viewerForm = String(buffer: try await viewer.get("/entry/training").body)
            #expect(viewerForm.contains("disabled"))
            let viewerCSRF = try await viewer.csrf()
            let refused = try await viewer.post("/entry/training", [("csrf", viewerCSRF), ("county", "lintan"), ("attendees", "3")])
            #expect(refused.status == .forbidden)
            #expect(try web.node.store.ledger("activities").count == 3)
        }
    }

    /// A clerk corrects (更正) and withdraws (撤销) an entry from the page of this node's work: the
    /// same call as `syncnode correct`, shown in the plan's words with amounts in 万元.
    @Test func aClerkCorrectsAndWithdrawsAnEntryFromThePageOfOwnWork() async throws {
        let web = try Web()
        defer { web.f.remove() }
        try await web.app(web.node.store).testLive { client in
            var browser = Browser(client: client)
            _ = try await browser.login("clerk")
            let csrf = try await browser.csrf("/entry/expenditure")
            let recorded = try await browser.post(
                "/entry/expenditure", [("csrf", csrf), ("county", "lintan"), ("date", "2017-06-01"), ("amount", "12.5万"), ("purpose", "教学设备")])
            #expect(recorded.status == .seeOther, "\(String(buffer: recorded.body))")
            let entry = try #require(try web.node.store.ledger("expenditures").first)
            #expect(try web.node.store.authors(of: [entry.ts])[entry.ts] == "clerk", "the web user made it")
            let mine = String(buffer: try await browser.get("/mine").body)
            #expect(mine.contains("资金支出：") && mine.contains("金额 12.50万元") && !mine.contains("amount_fen"), "\(mine)")
            let link = "/correct/expenditures/\(entry.entryID)"
            #expect(mine.contains(link))
            let form = String(buffer: try await browser.get(link).body)
            #expect(form.contains(#"value="12.50万""#) && form.contains(#"action="\#(link)""#) && form.contains("撤销"), "\(form)")
            // Nothing changed: refused, nothing written.
            let digest = try web.node.store.stateDigest()
            let same = try await browser.post(link, [("csrf", csrf), ("county", "lintan"), ("amount", "12.50万"), ("date", "2017-06-01")])
            #expect(same.status == .unprocessableContent && String(buffer: same.body).contains("没有改动"))
            // A negative amount: refused with the reason next to the field.
            let negative = try await browser.post(link, [("csrf", csrf), ("amount", "-5万")])
            #expect(negative.status == .unprocessableContent && String(buffer: negative.body).contains("不是正数"))
            #expect(try web.node.store.stateDigest() == digest)
            // 更正: the reversal and the corrected entry, in one transaction.
            let corrected = try await browser.post(link, [("csrf", csrf), ("amount", "15万"), ("date", "2017-06-01")])
            #expect(corrected.status == .seeOther, "\(String(buffer: corrected.body))")
            let rows = try web.node.store.ledger("expenditures")
            #expect(rows.count == 3)
            #expect(rows.first { $0.entryID == entry.entryID }?.reversedBy.count == 1)
            let fixed = try #require(rows.first { $0.stands })
            #expect(fixed.fields["amount_fen"] == .int(15_000_000) && fixed.fields["purpose"] == .text("教学设备"))
            #expect(
                try web.node.store.report("funds", today: "2018-01-01").rows.contains {
                    $0[0] == .text("临潭县") && $0[1] == .text("2017") && $0[6] == .int(15_000_000)
                })
            // 撤销 of the corrected one; the page then shows both as withdrawn.
            let undo = try await browser.post("/correct/expenditures/\(fixed.entryID)", [("csrf", csrf), ("_undo", "1")])
            #expect(undo.status == .seeOther)
            #expect(try web.node.store.ledger("expenditures").filter(\.stands).isEmpty)
            let after = String(buffer: try await browser.get("/mine").body)
            #expect(after.components(separatedBy: "已撤销").count - 1 == 2, "\(after)")
            // Again: already withdrawn, refused; a viewer may not correct.
            #expect(
                try await browser.post("/correct/expenditures/\(fixed.entryID)", [("csrf", csrf), ("_undo", "1")]).status == .unprocessableContent)
            var viewer = Browser(client: client)
            _ = try await viewer.login("viewer")
            let viewerCSRF = try await viewer.csrf()
            #expect(try await viewer.post(link, [("csrf", viewerCSRF), ("_undo", "1")]).status == .forbidden)
            #expect(try await browser.get("/correct/expenditures/no-such").status == .notFound)
        }
    }

    @Test func valuesANodeCanWriteAreShownAsTextAndTheSyncAPIAndPagesKeepTheirOwnAuthentication() async throws {
        let web = try Web()
        defer { web.f.remove() }
        let hq = web.f.hq.store
        try hq.commit([
            .put(
                collection: "projects", recordID: "lt-x",
                fields: [
                    .init("name", .text("<script>alert(1)</script>")), .init("county", .text("lintan")), .init("planned_end", .text("2017-01-01")),
                ])
        ])
        try await web.app(hq).testLive { client in
            var browser = Browser(client: client)
            _ = try await browser.login("admin")
            let dashboard = String(buffer: try await browser.get("/").body)
            #expect(dashboard.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(!dashboard.contains("<script>alert"))
            // A sync request signature does not open the pages.
            var signed = HTTPFields()
            for (name, value) in web.node.store.requestSigner.headers(method: "GET", path: "/", body: []) { signed[HTTPField.Name(name)!] = value }
            let page = try await client.execute(uri: "/", method: .get, headers: signed, body: nil)
            #expect(page.status == .seeOther)
            // English on request.
            let english = String(buffer: try await browser.get("/?lang=en").body)
            #expect(english.contains("Sync health per node"))
            // Downloads for a logged-in user.
            let xlsx = try await browser.get("/export/reports.xlsx")
            #expect(xlsx.status == .ok && Array(xlsx.body.readableBytesView.prefix(2)) == [0x50, 0x4B])
            let csv = try await browser.get("/export/projects.csv")
            #expect(csv.status == .ok && String(buffer: csv.body).contains("lt-x"))
            // A dashboard cookie does not open the sync API (last: the API closes the connection after a 401).
            let pull = try await client.execute(uri: "/v1/status", method: .get, headers: browser.headers(), body: nil)
            #expect(pull.status == .unauthorized)
        }
    }
}

extension WebInterfaceTests {
    @Test func afterLoginOnlyAPathOnThisNodeIsFollowed() async throws {
        let web = try Web()
        defer { web.f.remove() }
        try await web.app(web.node.store).testLive { client in
            let browser = Browser(client: client)
            for (next, expected) in [
                ("/entry", "/entry"), ("//evil.example", "/"), ("/\t/evil.example", "/"), ("https://evil.example", "/"),
                ("/\\evil.example", "/"), ("/ok?x=1\r\nSet-Cookie: a=b", "/"),
            ] {
                let r = try await browser.post("/login", [("user", "clerk"), ("password", WebInterfaceTests.password), ("next", next)])
                #expect(
                    r.status == .seeOther && r.headers[.location] == expected, "next \(next.debugDescription) → \(r.headers[.location] ?? "none")")
            }
        }
    }

    @Test func anAdminResolvesAConflictFromThePageAndAClerkCannot() async throws {
        let web = try Web()
        defer { web.f.remove() }
        let (hq, lintan) = (web.f.hq, web.f.lintan)
        try await web.f.sync(lintan, with: hq)
        try lintan.store.commit([.put(collection: "projects", recordID: "lt-1", fields: [.init("responsible", .text("临潭"))])])
        try hq.store.commit([.put(collection: "projects", recordID: "lt-1", fields: [.init("responsible", .text("东丽"))])])
        try await web.f.sync(lintan, with: hq)
        #expect(try hq.store.conflicts().count == 1)
        try await web.app(hq.store).testLive { client in
            var clerk = Browser(client: client)
            _ = try await clerk.login("clerk")
            let clerkCSRF = try await clerk.csrf("/conflicts")
            let fields = [("collection", "projects"), ("record", "lt-1"), ("field", "responsible"), ("value", "东丽卫健委")]
            #expect(try await clerk.post("/conflicts/resolve", [("csrf", clerkCSRF)] + fields).status == .forbidden)
            #expect(try hq.store.conflicts().count == 1)
            var admin = Browser(client: client)
            _ = try await admin.login("admin")
            let csrf = try await admin.csrf("/conflicts")
            let resolved = try await admin.post("/conflicts/resolve", [("csrf", csrf)] + fields)
            #expect(resolved.status == .ok && String(buffer: resolved.body).contains("projects/lt-1.responsible"))
            #expect(try hq.store.conflicts().isEmpty)
            #expect(try hq.store.record("projects", "lt-1")?.fields["responsible"] == .text("东丽卫健委"))
        }
    }

    /// The conflicts page shows each version with its node, author and time, and one button keeps
    /// a version as it is (nothing retyped); a second click from the stale page is told so.
    @Test func anAdminKeepsAVersionWithOneButton() async throws {
        let web = try Web()
        defer { web.f.remove() }
        let (hq, lintan) = (web.f.hq, web.f.lintan)
        try await web.f.sync(lintan, with: hq)
        try Store.$author.withValue("zhang") {
            _ = try lintan.store.commit([.put(collection: "projects", recordID: "lt-1", fields: [.init("planned_funds_fen", .int(12_500_000))])])
        }
        try hq.store.commit([.put(collection: "projects", recordID: "lt-1", fields: [.init("planned_funds_fen", .int(30_000_000))])])
        try await web.f.sync(lintan, with: hq)
        let conflict = try #require(try hq.store.conflicts().first)
        let lintanVersion = conflict.winnerValue == .int(12_500_000) ? conflict.winnerTs : conflict.otherTs
        try await web.app(hq.store).testLive { client in
            var admin = Browser(client: client)
            _ = try await admin.login("admin")
            let page = String(buffer: try await admin.get("/conflicts").body)
            // Both amounts in 万元, who wrote the county's, and a keep button per version.
            #expect(page.contains("12.50 万元") && page.contains("30.00 万元") && page.contains("计划资金"), "\(page)")
            #expect(page.contains("录入 zhang") && page.contains("保留此值") && page.contains(lintanVersion.hex), "\(page)")
            let csrf = try await admin.csrf("/conflicts")
            let fields = [
                ("csrf", csrf), ("collection", "projects"), ("record", "lt-1"), ("field", "planned_funds_fen"), ("keep", lintanVersion.hex),
            ]
            let kept = try await admin.post("/conflicts/resolve", fields)
            #expect(kept.status == .ok, "\(String(buffer: kept.body))")
            #expect(try hq.store.conflicts().isEmpty)
            #expect(try hq.store.record("projects", "lt-1")?.fields["planned_funds_fen"] == .int(12_500_000))
            let again = try await admin.post("/conflicts/resolve", fields)
            #expect(again.status == .unprocessableContent && String(buffer: again.body).contains("该冲突已不存在"))
            #expect(try hq.store.record("projects", "lt-1")?.fields["planned_funds_fen"] == .int(12_500_000))
        }
    }

    /// HQ's reviewer returns a county's training with a note on the review page; once it has
    /// synced, the county's own-work page says it was returned and why.
    @Test func hqReturnsASubmissionAndTheCountyPageSaysWhy() async throws {
        let web = try Web()
        defer { web.f.remove() }
        let (hq, lintan) = (web.f.hq, web.f.lintan)
        let t = try Store.$author.withValue("clerk") {
            try lintan.store.recordProgrammeItem(
                kind: "training", recordID: nil, input: [("topic", "电商"), ("attendees", "40"), ("date", "2017-05-01")], today: "2017-05-01",
                mustExist: nil, confirm: false)
        }
        let origin = lintan.store.info.nodeID
        try await web.f.sync(lintan, with: hq)
        try await web.app(hq.store).testLive { client in
            var admin = Browser(client: client)
            _ = try await admin.login("admin")
            let page = String(buffer: try await admin.get("/submissions").body)
            #expect(page.contains("data-submission=\"\(origin.hex)/\(t.seq)\"") && page.contains("参训人数 40") && page.contains("待审核"), "\(page)")
            let csrf = try await admin.csrf("/submissions")
            let fields = [("csrf", csrf), ("origin", origin.hex), ("seq", String(t.seq))]
            let noNote = try await admin.post("/submissions/review", fields + [("decision", "returned"), ("note", " ")])
            #expect(noNote.status == .unprocessableContent && String(buffer: noNote.body).contains("请写明"))
            let returned = try await admin.post("/submissions/review", fields + [("decision", "returned"), ("note", "请附签到表")])
            #expect(returned.status == .ok && String(buffer: returned.body).contains("已退回：请附签到表"), "\(String(buffer: returned.body))")
            var viewer = Browser(client: client)
            _ = try await viewer.login("viewer")
            let viewerTries = try await viewer.post(
                "/submissions/review", [("csrf", try await viewer.csrf("/submissions"))] + fields.dropFirst() + [("decision", "approved")])
            #expect(viewerTries.status == .forbidden)
        }
        try await web.f.sync(lintan, with: hq)
        try await web.app(lintan.store).testLive { client in
            var clerk = Browser(client: client)
            _ = try await clerk.login("clerk")
            let mine = String(buffer: try await clerk.get("/mine").body)
            #expect(mine.contains("data-review=\"returned\"") && mine.contains("总部审核：已退回：请附签到表"), "\(mine)")
            let refused = try await clerk.post(
                "/submissions/review",
                [("csrf", try await clerk.csrf("/submissions")), ("origin", origin.hex), ("seq", String(t.seq)), ("decision", "approved")])
            #expect(refused.status == .forbidden && String(buffer: refused.body).contains("只有总部"), "\(refused.status)")
        }
    }

    /// Issue 26: the offline web app. Its manifest, service worker and page script are served with
    /// their media types to anyone (a phone fetches them before signing in); the pages allow this
    /// node's scripts and nothing else; an entry form is marked to be kept on the device, a
    /// correction is not; the words the script shows are the catalogue's, on the signed-in page.
    @Test func theOfflineAppIsServedWithItsTypesAndThePagesCarryItsWords() async throws {
        let web = try Web()
        defer { web.f.remove() }
        try await web.app(web.node.store).testLive { client in
            var browser = Browser(client: client)
            for (path, type) in [
                ("/sw.js", "text/javascript; charset=utf-8"), ("/static/offline.js", "text/javascript; charset=utf-8"),
                ("/manifest.webmanifest", "application/manifest+json"), ("/static/icon.svg", "image/svg+xml"),
            ] {
                let answer = try await browser.get(path)
                #expect(
                    answer.status == .ok && answer.headers[.contentType] == type, "\(path): \(answer.status) \(answer.headers[.contentType] ?? "")")
                #expect(answer.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            }
            let manifest = try JSONSerialization.jsonObject(with: Data(String(buffer: try await browser.get("/manifest.webmanifest").body).utf8))
            let fields = try #require(manifest as? [String: Any])
            #expect(
                fields["start_url"] as? String == "/entry" && fields["name"] as? String == "东丽区对口帮扶" && fields["display"] as? String == "standalone")
            let worker = String(buffer: try await browser.get("/sw.js").body)
            #expect(worker.contains("'/offline'") && worker.contains("request.method !== 'GET'"), "the worker keeps pages and never handles a write")
            let offline = try await browser.get("/offline")
            #expect(offline.status == .ok && String(buffer: offline.body).contains("暂时连不上本节点"))

            _ = try await browser.login("clerk")
            let form = try await browser.get("/entry/training")
            let policy = form.headers[.contentSecurityPolicy] ?? ""
            #expect(policy.contains("script-src 'self'") && policy.contains("worker-src 'self'") && !policy.contains("unsafe"), "\(policy)")
            let page = String(buffer: form.body)
            #expect(page.contains(#"<script src="/static/offline.js" defer></script>"#) && page.contains(#"rel="manifest""#))
            #expect(page.contains("data-offline") && page.contains(#"data-user="clerk""#), "the entry form is kept offline for its user")
            #expect(page.contains(#"data-waiting="等待发送""#) && page.contains(#"data-send-now="立即发送""#), "the script's words come from the catalogue")
            // The phone's check reads the plan's rule from the field: attendees a whole number of at
            // least 1, required, described in the plan's words; no bound the plan does not give.
            let attendees = try #require(page.split(separator: "\n").first { $0.contains(#"name="attendees""#) && $0.contains("<input") })
            #expect(
                attendees.contains(#"data-check="int""#) && attendees.contains(#"data-min="1""#) && !attendees.contains("data-max")
                    && attendees.contains("data-required") && attendees.contains(#"data-describe="整数，不小于1""#), "\(attendees)")
            let entry = try await browser.post(
                "/entry/training",
                [
                    ("csrf", try await browser.csrf("/entry/training")), ("county", "lintan"), ("date", "2017-06-01"), ("topic", "种植"),
                    ("attendees", "9"),
                ])
            #expect(entry.status == .seeOther)
            let id = try #require(try web.node.store.ledger("activities").first).entryID
            // A resend after a lost answer is answered with the first transaction before its content
            // is judged again: a new project sent twice is not "exists already", and nothing is
            // recorded twice.
            let project: [(String, String)] = [
                ("csrf", try await browser.csrf("/entry/project")), ("_key", "phone-key-0123456789abcdef"), ("_id", "lt-phone-1"),
                ("name", "村卫生室"), ("county", "lintan"), ("work_area", "health"),
            ]
            let first = try await browser.post("/entry/project", project)
            let seq = try #require(first.headers[.location]?.split(separator: "=").last.flatMap { UInt64($0) })
            let digest = try web.node.store.stateDigest()
            let again = try await browser.post("/entry/project", project)
            #expect(
                again.status == .seeOther && again.headers[.location] == "/mine?recorded=\(seq)",
                "\(again.status) \(String(buffer: again.body).prefix(300))")
            #expect(try web.node.store.stateDigest() == digest, "the resend recorded nothing")
            let correction = String(buffer: try await browser.get("/correct/activities/\(id)").body)
            #expect(correction.contains("<form") && !correction.contains("data-offline"), "a correction needs the node: it is not kept offline")
        }
    }

    @Test func aCSVCellThatLooksLikeAFormulaStaysText() async throws {
        let web = try Web()
        defer { web.f.remove() }
        try web.f.hq.store.commit([
            .put(
                collection: "projects", recordID: "lt-f",
                fields: [.init("name", .text("=HYPERLINK(\"http://x\")")), .init("county", .text("lintan"))])
        ])
        try await web.app(web.f.hq.store).testLive { client in
            var browser = Browser(client: client)
            _ = try await browser.login("viewer")
            let csv = String(buffer: try await browser.get("/export/projects.csv").body)
            #expect(csv.contains("'=HYPERLINK"), "\(csv)")
        }
    }
}

extension WebInterfaceTests {
    /// A signed-in user changes their own password: the old one, the new one twice. A wrong old
    /// one, new ones that differ or are too short, a post without the form token or from another
    /// site change nothing; a change ends the user's other sessions and keeps this one.
    @Test func aUserChangesTheirOwnPasswordOnThePage() async throws {
        let web = try Web()
        defer { web.f.remove() }
        let store = web.node.store
        try await web.app(store).testLive { client in
            var browser = Browser(client: client)
            _ = try await browser.login("clerk")
            var elsewhere = Browser(client: client)
            _ = try await elsewhere.login("clerk")
            var viewer = Browser(client: client)
            _ = try await viewer.login("viewer")
            let header = String(buffer: try await browser.get("/").body)
            #expect(header.contains(#"<span class="who">clerk (clerk)</span> <a href="/password" id="change-password">修改密码</a>"#), "\(header)")
            let page = String(buffer: try await browser.get("/password").body)
            #expect(page.contains(#"action="/password""#) && page.contains(#"name="old""#) && page.contains(#"name="again""#), "\(page)")
            #expect(page.contains("原密码") && page.contains("再次输入新密码"))
            let csrf = try await browser.csrf("/password")
            #expect(csrf.count == 64)
            let before = try store.webUser("clerk")?.passwordHash
            let new = "a new passphrase 2018"

            for (fields, status, text) in [
                ([("old", "not my password"), ("new", new), ("again", new)], HTTPResponse.Status.unprocessableContent, "原密码不对"),
                ([("old", WebInterfaceTests.password), ("new", new), ("again", new + "x")], .unprocessableContent, "两次输入的新密码不一致"),
                ([("old", WebInterfaceTests.password), ("new", "short"), ("again", "short")], .unprocessableContent, "新密码太短"),
                (
                    [("old", WebInterfaceTests.password), ("new", String(repeating: "长", count: 25)), ("again", String(repeating: "长", count: 25))],
                    .unprocessableContent, "新密码太长"
                ),
                (
                    [("csrf", String(repeating: "0", count: 64)), ("old", WebInterfaceTests.password), ("new", new), ("again", new)], .forbidden,
                    "表单已过期"
                ),
                // Forms no browser sends: a field twice, brackets in a name. Which value was meant
                // is not guessed.
                ([("old", "x"), ("old", WebInterfaceTests.password), ("new", new), ("again", new)], .badRequest, "提交的表单无法读取"),
                ([("old[]", WebInterfaceTests.password), ("new", new), ("again", new)], .badRequest, "提交的表单无法读取"),
            ] {
                let form = fields.first?.0 == "csrf" ? fields : [("csrf", csrf)] + fields
                let r = try await browser.post("/password", form)
                #expect(r.status == status && String(buffer: r.body).contains(text), "\(text): \(r.status)")
            }
            let foreign = try await browser.post(
                "/password", [("csrf", csrf), ("old", WebInterfaceTests.password), ("new", new), ("again", new)], origin: "http://evil.example")
            #expect(foreign.status == .forbidden)
            #expect(try await Browser(client: client).post("/password", [("old", WebInterfaceTests.password)]).status == .unauthorized)
            #expect(try store.webUser("clerk")?.passwordHash == before, "a refused change wrote")
            #expect(try await elsewhere.get("/").status == .ok)

            let changed = try await browser.post("/password", [("csrf", csrf), ("old", WebInterfaceTests.password), ("new", new), ("again", new)])
            #expect(changed.status == .ok && String(buffer: changed.body).contains("密码已修改"), "\(String(buffer: changed.body))")
            #expect(try store.webUser("clerk")?.passwordHash != before)
            #expect(try await browser.get("/").status == .ok, "the session that changed it stays")
            #expect(try await elsewhere.get("/").status == .seeOther, "another session of the user ends")
            #expect(try await viewer.get("/").status == .ok, "another user's session stays")
            var again = Browser(client: client)
            #expect(try await again.login("clerk").status == .unauthorized)
            #expect(try await again.login("clerk", new).status == .seeOther)
        }
    }
}

enum SHA256Hex {
    static func of(_ text: String) -> String { Secret.sha256Hex(text.utf8) }
}
