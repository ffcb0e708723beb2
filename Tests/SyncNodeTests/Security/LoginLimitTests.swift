import Foundation
import SyncNode
import SyncWeb
import Testing

/// Issue 23, item 4: the login limit protected addresses, not accounts. After 127.0.0.1 was held
/// up, guesses for the same account from other addresses were all checked, and five wrong
/// passwords from one office machine held up every user on it. Through the real binary: users
/// made by `syncnode user add` (bcrypt cost 12), `syncnode serve`, and logins over HTTP from
/// sockets bound to 127.0.0.1 … 127.0.0.5, each of which the node sees as another machine.
@Suite(.serialized) struct LoginLimitTests {
    static let passwords = ["zhang": "zhang-secret-2017", "li": "li-secret-2017"]

    /// A node serving with the users zhang and li.
    struct Node {
        let dir: TempDirectory
        let data: String
        let server: ServeProcess

        init() throws {
            dir = try TempDirectory()
            data = dir.path("hq").path
            try Federation.hq(data)
            for (name, password) in LoginLimitTests.passwords.sorted(by: { $0.key < $1.key }) {
                let added = try Binary.shell("printf '%s\\n' '\(password)' | \"$SYNCNODE\" user add --data '\(data)' \(name)")
                guard added.status == 0 else { throw TestFailure("user add \(name): \(added.stderr)") }
            }
            server = try ServeProcess(data: data)
        }

        // Each request waits for the server (a bcrypt check) on a thread of its own, not on one of
        // the few cooperative threads that other tests' in-process servers need.
        func login(from source: String, _ user: String, _ password: String) async throws -> LoopbackHTTP.Response {
            let port = server.port
            return try await waitOffThePool {
                try LoopbackHTTP.request(from: source, port: port, "POST", "/login", form: [("user", user), ("password", password), ("next", "/")])
            }
        }

        func get(from source: String, _ path: String, cookie: String?) async throws -> LoopbackHTTP.Response {
            let port = server.port
            return try await waitOffThePool { try LoopbackHTTP.request(from: source, port: port, "GET", path, cookie: cookie) }
        }

        /// The requests of a burst that must follow one another closely, made in one go on a
        /// thread of their own: the test's task is not resumed between them (a busy test run can
        /// take seconds to resume a task, longer than the waits under test).
        func burst(_ requests: [(source: String, user: String, password: String)]) async throws -> [LoopbackHTTP.Response] {
            let port = server.port
            let list = requests.map { [$0.source, $0.user, $0.password] }
            return try await waitOffThePool {
                try list.map { r in
                    try LoopbackHTTP.request(from: r[0], port: port, "POST", "/login", form: [("user", r[1]), ("password", r[2]), ("next", "/")])
                }
            }
        }

        func stop() {
            server.stop()
            dir.remove()
        }
    }

    /// (a) Once an account waits, it waits from every address: 127.0.0.1 fails five times for
    /// zhang, and the next guess for zhang from 127.0.0.2 is refused unchecked (before: checked).
    /// The sixth failure, from 127.0.0.2 after the wait, doubles the wait; then 20 guesses from four
    /// other addresses, the right password among them, are all refused with 429 and Retry-After.
    @Test func guessesForAnAccountFromOtherAddressesWaitAsTheFirstAddressDoes() async throws {
        let node = try Node()
        defer { node.stop() }
        let first = try await node.burst(
            (1...5).map { ("127.0.0.1", "zhang", "wrong guess \($0)") } + [
                ("127.0.0.1", "zhang", "wrong guess 6"), ("127.0.0.2", "zhang", "wrong guess 7"),
            ])
        for (attempt, r) in first.prefix(5).enumerated() {
            #expect(r.status == 401 && r.body.contains("用户名或密码不对"), "attempt \(attempt + 1): \(r.status)")
        }
        let here = first[5]
        #expect(here.status == 429, "\(here.status)")
        let elsewhere = first[6]
        #expect(elsewhere.status == 429, "a guess from 127.0.0.2 was checked: \(elsewhere.status)")
        #expect((1...5).contains(elsewhere.retryAfter ?? 0), "\(elsewhere.headers)")
        #expect(elsewhere.body.contains("此用户名登录失败次数过多") && elsewhere.body.contains("秒后再试"), "\(elsewhere.body)")

        // After the wait one more guess is checked; it fails, and the wait doubles (10 s).
        try await Task.sleep(for: .seconds(Double(elsewhere.retryAfter ?? 5) + 0.3))
        var waits: [Int] = []
        var spray: [(source: String, user: String, password: String)] = [("127.0.0.2", "zhang", "wrong guess 8")]
        for source in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"] {
            for guess in 1...5 { spray.append((source, "zhang", guess == 5 ? LoginLimitTests.passwords["zhang"]! : "spray \(source) \(guess)")) }
        }
        let answers = try await node.burst(spray)
        #expect(answers[0].status == 401, "the guess after the wait was not checked: \(answers[0].status)")
        for (i, r) in answers.enumerated().dropFirst() {
            #expect(r.status == 429 && r.cookie == nil, "\(spray[i].source) guess \((i - 1) % 5 + 1): \(r.status)")
            waits.append(r.retryAfter ?? 0)
        }
        #expect(waits.allSatisfy { (1...10).contains($0) } && (waits.first ?? 0) > 5, "Retry-After: \(waits)")
        // Another account from the same addresses is not held up.
        let li = try await node.login(from: "127.0.0.3", "li", LoginLimitTests.passwords["li"]!)
        #expect(li.status == 303 && li.cookie != nil, "\(li.status)")
    }

    /// (b) Five wrong passwords for zhang from one machine hold up zhang only: li logs in from the
    /// same address. A name nobody has is counted as a real one is: same answers, same wait.
    @Test func wrongPasswordsForOneAccountDoNotHoldUpAnotherFromTheSameAddress() async throws {
        let node = try Node()
        defer { node.stop() }
        let answers = try await node.burst(
            (1...5).map { ("127.0.0.1", "zhang", "wrong \($0)") } + [
                ("127.0.0.1", "li", LoginLimitTests.passwords["li"]!), ("127.0.0.1", "zhang", LoginLimitTests.passwords["zhang"]!),
            ])
        #expect(answers.prefix(5).allSatisfy { $0.status == 401 })
        let li = answers[5]
        #expect(li.status == 303 && li.cookie != nil, "li was held up by zhang's failures: \(li.status)")
        #expect(try await node.get(from: "127.0.0.1", "/", cookie: li.cookie).status == 200)
        let zhang = answers[6]
        #expect(zhang.status == 429, "\(zhang.status)")

        let wangs = try await node.burst((1...6).map { ("127.0.0.1", "wang", "wrong \($0)") })
        for (attempt, r) in wangs.prefix(5).enumerated() {
            #expect(r.status == 401 && r.body.contains("用户名或密码不对"), "attempt \(attempt + 1): \(r.status)")
        }
        let wang = wangs[5]
        #expect(wang.status == 429 && wang.retryAfter != nil)
        func refusal(_ r: LoopbackHTTP.Response) -> String? {
            r.body.components(separatedBy: "\n").first { $0.contains("class=\"error\"") }?.replacingOccurrences(
                of: #"\d+ 秒"#, with: "N 秒", options: .regularExpression)
        }
        #expect(refusal(wang) != nil && refusal(wang) == refusal(zhang), "\(refusal(wang) ?? "none") / \(refusal(zhang) ?? "none")")
    }

    /// (c) `user passwd` sets the password (the old one fails, the new one works) and ends the
    /// user's sessions; a short or too long password, no password and an unknown name change nothing.
    @Test func userPasswdChangesThePasswordEndsSessionsAndRefusesBadInput() async throws {
        let node = try Node()
        defer { node.stop() }
        let session = try await node.login(from: "127.0.0.1", "zhang", LoginLimitTests.passwords["zhang"]!)
        #expect(session.status == 303)
        #expect(try await node.get(from: "127.0.0.1", "/", cookie: session.cookie).status == 200)

        func passwd(_ input: String, _ name: String = "zhang") throws -> Binary.Result {
            try Binary.shell("printf '\(input)' | \"$SYNCNODE\" user passwd --data '\(node.data)' \(name)")
        }
        func hashes() throws -> [String] {
            let store = try Store.open(URL(fileURLWithPath: node.data))
            defer { try? store.close() }
            return try store.webUsers().map { "\($0.name) \($0.passwordHash)" }
        }
        let before = try hashes()
        for (input, name, status, message) in [
            ("short\\n", "zhang", Int32(65), "at least 8"), (String(repeating: "长", count: 25) + "\\n", "zhang", 65, "72 bytes"),
            ("", "zhang", 64, "no password"), ("another secret\\n", "nobody", 3, "no web user nobody"),
        ] {
            let r = try passwd(input, name)
            #expect(r.status == status && r.stderr.contains(message), "\(input) \(name): \(r.status) \(r.stderr)")
            #expect(try hashes() == before, "\(input) \(name) wrote")
        }
        #expect(try await node.get(from: "127.0.0.1", "/", cookie: session.cookie).status == 200, "a refused change ended the session")

        let changed = try passwd("a new secret 2018\\n")
        #expect(changed.status == 0 && changed.stderr.contains("1 session ended"), "\(changed.stderr)")
        let after = try hashes()
        let li = { (list: [String]) in list.first(where: { $0.hasPrefix("li ") }) }
        #expect(after != before && li(after) != nil && li(after) == li(before), "only zhang's hash changes")
        let ended = try await node.get(from: "127.0.0.1", "/", cookie: session.cookie)
        #expect(ended.status == 303 && ended.header("Location")?.hasPrefix("/login") == true, "\(ended.status)")
        #expect(try await node.login(from: "127.0.0.1", "zhang", LoginLimitTests.passwords["zhang"]!).status == 401)
        let fresh = try await node.login(from: "127.0.0.1", "zhang", "a new secret 2018")
        #expect(fresh.status == 303 && fresh.cookie != nil)
        #expect(try await node.get(from: "127.0.0.1", "/", cookie: fresh.cookie).status == 200)
    }
}
