import Foundation
import SyncNode
import SyncProtocol
import Testing

/// Issue 23, item 3: one county filled every sender's room for held work, for good. 37
/// transactions of 16 made-up origins (64 MiB) pushed by Lintan filled the shared 64 MiB; a
/// not-yet-approved office's genuine work relayed by Gangu was then turned away, and the junk
/// survived restarts, never expired, and no command dropped it. Each test runs it from outside:
/// real `serve` and CLI processes, frames signed by their (made-up) origins and pushed by the
/// counties' own keys over HTTP.
@Suite(.serialized) struct HeldWorkTests {
    private static let day: UInt64 = 86_400_000

    /// Lintan pushes more than the whole 64 MiB of work of 16 made-up origins: it holds its share
    /// (16 MiB) and is told the rest must wait; Gangu's relay of a not-yet-approved office's work is
    /// then still held (it was turned away: "this node holds all such work it can"), and is applied
    /// when HQ approves the office.
    @Test func oneSenderCannotTakeEveryOthersRoomForHeldWork() async throws {
        let net = try ServedNetwork(counties: ["lintan", "gangu"])
        defer { net.stop() }
        let lintan = try Forger(data: net["lintan"])
        let gangu = try Forger(data: net["gangu"])
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        var junk: [[UInt8]] = []
        for _ in 0..<16 {
            let madeUp = Forger()
            for seq in 1...5 { junk.append(try madeUp.transaction(seq: UInt64(seq), millis: now - 60_000 + UInt64(seq), Self.bulk("junk")).frame) }
        }
        #expect(junk.map(\.count).reduce(0, +) > StoreLimits().maxHeldBytes, "more than the whole")
        var held = 0
        var refused: [Refusal] = []
        for start in stride(from: 0, to: junk.count, by: 10) {
            let pushed = try await lintan.push(net.server.url, frames: Array(junk[start..<min(junk.count, start + 10)]))
            #expect(pushed.status == 200, "\(String(decoding: pushed.body, as: UTF8.self))")
            let answer = try WireCodec.decodeMessage(PushResponse.self, from: pushed.body)
            held += answer.held
            refused += answer.refused
        }
        let limit = StoreLimits().maxHeldBytesPerSender
        #expect(held > 0 && held * 900_000 <= limit, "lintan holds its share only: \(held) transactions")
        #expect(refused.allSatisfy { $0.permanent == false }, "turned away for now, not refused for good")
        #expect(refused.contains { $0.reason.contains("share") }, "\(refused.first?.reason ?? "")")
        #expect(try rejections(net.hq).held.count == held)

        // The office's genuine work (signed by its own key, which HQ has not approved yet), relayed
        // by Gangu: a large transaction and a small one.
        let office = Forger()
        let work = [
            try office.transaction(seq: 1, millis: now - 2_000, Self.bulk("dongli-report")),
            try office.transaction(
                seq: 2, millis: now - 1_000, [.set(FieldWrite(collection: "visits", recordID: "dongli-visit-1", field: "note", value: .text("甘谷")))]),
        ]
        let relayed = try await gangu.push(net.server.url, frames: work.map(\.frame))
        #expect(relayed.status == 200)
        let answer = try WireCodec.decodeMessage(PushResponse.self, from: relayed.body)
        #expect(answer.refused.isEmpty, "\(answer.refused.map(\.reason))")
        #expect(answer.held == 2)
        #expect(try rejections(net.hq).held.filter { $0["origin"] as? String == office.node.hex }.count == 2)

        let approved = try await Binary.runAsync([
            "node", "approve", "--data", net.hq, office.node.hex, "--key", Hex.string(office.key.publicKey.rawRepresentation), "--site", "dongli",
            "--role", "office", "--label", "dongli-office-2",
        ])
        #expect(approved.status == 0, "\(approved.stderr)")
        #expect(try await recordsAsync(net.hq, "visits")["dongli-visit-1"]?["note"] as? String == "甘谷")
        #expect(try rejections(net.hq).held.allSatisfy { $0["origin"] as? String != office.node.hex })
    }

    /// Held work older than 14 days is dropped (the node's clock moved on with
    /// `SYNCNODE_CLOCK_OFFSET_MS`); nothing is lost: once HQ approves the office, the office's next
    /// sync brings its work again, since HQ's vector never counted it.
    @Test func heldWorkPastItsAgeIsDroppedAndComesAgainWithTheNextSync() async throws {
        var net = try ServedNetwork(counties: ["gangu"])
        defer { net.stop() }
        let hqKey = try Federation.identity(net.hq)["publicKey"] as? String ?? ""
        let office = net.dir.path("office").path
        #expect(
            try await Binary.runAsync([
                "init", "--data", office, "--site", "dongli", "--role", "office", "--trust", hqKey, "--label", "dongli-office-2",
            ]).status
                == 0)
        for i in 1...2 { try await Binary.runAsync(["record", "put", "--data", office, "visits", "dongli-visit-\(i)", "note=第\(i)次"]) }
        let store = try Store.open(URL(fileURLWithPath: office))
        let work = try store.transactions(missingFrom: VersionVector()).transactions
        let me = store.info
        try store.close()
        #expect(work.count == 2)
        let gangu = try Forger(data: net["gangu"])
        let pushed = try await gangu.push(net.server.url, frames: work.map(\.frame))
        #expect(try WireCodec.decodeMessage(PushResponse.self, from: pushed.body).held == 2)
        #expect(net.server.stop() == 0)

        func later(_ days: UInt64) -> [String: String] { ["SYNCNODE_CLOCK_OFFSET_MS": String(days * Self.day)] }
        #expect(try await Self.heldCount(net.hq, environment: later(13)) == 2, "13 days on, it still waits")
        #expect(try await Self.heldCount(net.hq, environment: later(15)) == 0, "15 days on, it is gone")
        #expect(try await Self.heldCount(net.hq) == 0, "for good")

        net.server = try ServeProcess(data: net.hq, environment: later(15))
        let approved = try await Binary.runAsync(
            [
                "node", "approve", "--data", net.hq, me.nodeID.hex, "--key", me.publicKey.hex, "--site", "dongli", "--role", "office", "--label",
                "dongli-office-2",
            ], environment: later(15))
        #expect(approved.status == 0, "\(approved.stderr)")
        #expect(try await recordsAsync(net.hq, "visits").isEmpty, "the dropped work is not here")
        let synced = try await Binary.runAsync(["sync", "--data", office, "--peer", net.server.url, "--json"], environment: later(15))
        #expect(synced.status == 0, "\(synced.stdout) \(synced.stderr)")
        #expect(try await recordsAsync(net.hq, "visits").keys.sorted() == ["dongli-visit-1", "dongli-visit-2"])
    }

    /// `held list` shows each sender's work per origin; `held drop --sender` drops that sender's
    /// alone, and it stays dropped across a restart of `serve`; a selector that names nobody, or
    /// none at all, exits 3 or 64 and drops nothing.
    @Test func theOperatorListsAndDropsHeldWorkBySender() async throws {
        var net = try ServedNetwork(counties: ["lintan", "gangu"])
        defer { net.stop() }
        let lintan = try Forger(data: net["lintan"])
        let gangu = try Forger(data: net["gangu"])
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        let (a, b, c) = (Forger(), Forger(), Forger())
        func note(_ f: Forger, _ seq: UInt64) throws -> [UInt8] {
            try f.transaction(
                seq: seq, millis: now - 10_000 + seq, [.set(FieldWrite(collection: "notes", recordID: "n-\(seq)", field: "x", value: .int(1)))]
            ).frame
        }
        #expect(try await lintan.push(net.server.url, frames: [try note(a, 1), try note(a, 2), try note(b, 1)]).status == 200)
        #expect(try await gangu.push(net.server.url, frames: [try note(c, 1), try note(c, 2), try note(c, 3)]).status == 200)

        let listed = try await Self.held(net.hq)
        func figures(_ list: [[String: Any]]) -> [String: Int] {
            var out: [String: Int] = [:]
            for g in list {
                out["\(g["senderLabel"] as? String ?? "-")/\(g["origin"] as? String ?? "")"] = g["transactions"] as? Int
                #expect((g["bytes"] as? Int ?? 0) > 0)
                #expect((g["oldest"] as? Int ?? 0) <= (g["newest"] as? Int ?? -1))
                #expect((g["expires"] as? Int ?? 0) == (g["oldest"] as? Int ?? 0) + Int(StoreLimits().maxHeldAgeMillis))
            }
            return out
        }
        #expect(
            figures(listed) == [
                "lintan-office-1/\(a.node.hex)": 2, "lintan-office-1/\(b.node.hex)": 1, "gangu-office-1/\(c.node.hex)": 3,
            ])
        let text = try await Binary.runAsync(["held", "list", "--data", net.hq])
        #expect(text.status == 0)
        for word in ["lintan-office-1", "gangu-office-1", a.node.short, c.node.short, "1–3"] { #expect(text.stdout.contains(word), "\(text.stdout)") }

        // Bad input drops nothing.
        let none = try await Binary.runAsync(["held", "drop", "--data", net.hq])
        #expect(none.status == 64, "\(none.stderr)")
        let unknown = try await Binary.runAsync(["held", "drop", "--data", net.hq, "--sender", "chengde-office-9"])
        #expect(unknown.status == 3, "\(unknown.stderr)")
        #expect(unknown.stderr.contains("chengde-office-9"))
        let stranger = try await Binary.runAsync(["held", "drop", "--data", net.hq, "--sender", Forger().node.hex])
        #expect(stranger.status == 3, "\(stranger.stderr)")
        let both = try await Binary.runAsync(["held", "drop", "--data", net.hq, "--all", "--sender", "lintan-office-1"])
        #expect(both.status == 64)
        #expect(figures(try await Self.held(net.hq)).count == 3)

        let dropped = try await Binary.runAsync(["held", "drop", "--data", net.hq, "--sender", "lintan-office-1"])
        #expect(dropped.status == 0, "\(dropped.stderr)")
        #expect(dropped.stdout.contains("dropped 2 transactions") && dropped.stdout.contains(a.node.short), "\(dropped.stdout)")
        #expect(dropped.stdout.contains("dropped 1 transaction ") && dropped.stdout.contains(b.node.short), "\(dropped.stdout)")
        #expect(!dropped.stdout.contains(c.node.short))
        #expect(figures(try await Self.held(net.hq)) == ["gangu-office-1/\(c.node.hex)": 3])

        let port = net.server.port
        #expect(net.server.stop() == 0)
        net.server = try ServeProcess(data: net.hq, port: port)
        #expect(figures(try await Self.held(net.hq)) == ["gangu-office-1/\(c.node.hex)": 3], "still dropped after a restart")
        let status = try await jsonOutputAsync(["status", "--data", net.hq, "--json"]) as? [String: Any] ?? [:]
        #expect(status["held"] as? Int == 3)

        // The origin by the first digits of its id, as the list shows it.
        let byOrigin = try await Binary.runAsync(["held", "drop", "--data", net.hq, "--origin", c.node.short, "--json"])
        #expect(byOrigin.status == 0, "\(byOrigin.stderr)")
        let gone = try JSONSerialization.jsonObject(with: Data(byOrigin.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(gone.map { $0["transactions"] as? Int } == [3])
        #expect(try await Self.held(net.hq).isEmpty)
    }

    /// In process, by the store's own clock: a re-offered transaction keeps its first arrival, and
    /// an origin whose first held transaction is past the age loses the later ones too (held work
    /// of an origin never has a gap); dropped work is held again when offered, and applied once
    /// the approval arrives.
    @Test func anOriginsHeldWorkExpiresWholeFromItsFirstArrival() async throws {
        let f = try StoreFederation()
        defer { f.remove() }
        try await f.distributeRegistry()
        let newcomer = try TestNode(site: "lintan", label: "lintan-township-6", role: .county, trust: .anchor(f.hq.store.info.publicKey))
        defer { newcomer.remove() }
        for i in 1...2 {
            try newcomer.store.commit([.put(collection: "projects", recordID: "lt-pond-\(i)", fields: [.init("depth", .int(Int64(i)))])])
        }
        let work = try newcomer.store.transactions(missingFrom: VersionVector()).transactions
        let origin = newcomer.store.info.nodeID
        let lintan = f.lintan
        #expect(try lintan.store.apply([work[0]], via: f.gangu.store.info.nodeID).held == 1)
        lintan.clock.advance(by: 10 * Self.day)
        #expect(try lintan.store.apply(work, via: f.gangu.store.info.nodeID).held == 2)
        let held = try lintan.store.heldWork()
        #expect(held.count == 1)
        #expect(held.first?.transactions == 2)
        #expect(held.first.map { $0.newest - $0.oldest } == 10 * Self.day, "the first kept its arrival time")
        #expect(held.first?.sender == .node(f.gangu.store.info.nodeID))
        #expect(try lintan.store.pullVector()[origin] == 2)

        lintan.clock.advance(by: 5 * Self.day)
        #expect(try lintan.store.expireHeldWork().map(\.transactions) == [2], "the second goes with the first")
        #expect(try lintan.store.heldTransactions().isEmpty)
        #expect(try lintan.store.pullVector()[origin] == 0, "so a pull asks for it again")

        #expect(try lintan.store.apply(work).held == 2)
        #expect(try lintan.store.heldWork().first?.sender == .pulled)
        try f.hq.store.commit([
            .approve(node: origin, key: newcomer.store.info.publicKey, site: "lintan", role: .county, label: "lintan-township-6")
        ])
        _ = try lintan.store.apply(try f.hq.store.transactions(missingFrom: try lintan.store.vector()).transactions)
        #expect(try lintan.store.heldTransactions().isEmpty)
        #expect(try lintan.store.record("projects", "lt-pond-2") != nil)
    }

    /// About 960 kB of changes: sixteen 60,000-byte texts.
    private static func bulk(_ record: String) -> [Change] {
        (0..<16).map { i in
            .set(FieldWrite(collection: "visits", recordID: record, field: "part-\(i)", value: .text(String(repeating: "\(i % 10)", count: 60_000))))
        }
    }

    /// How many transactions `rejections` lists as held (a command older versions have too).
    private static func heldCount(_ data: String, environment: [String: String] = [:]) async throws -> Int {
        let r = try await Binary.runAsync(["rejections", "--data", data, "--json"], environment: environment)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return (object?["held"] as? [Any])?.count ?? -1
    }

    private static func held(_ data: String) async throws -> [[String: Any]] {
        let r = try await Binary.runAsync(["held", "list", "--data", data, "--json"])
        guard r.status == 0 else { throw TestFailure("held list exited \(r.status): \(r.stderr)") }
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []
    }
}
