import Foundation
import GRDB
import SyncNode
import SyncProtocol
import Synchronization
import Testing

/// Issue 23, item 6: one big authenticated push blocked the node's own writes (a clerk's
/// `record put` at HQ exited 75 after waiting 10 s for the write lock) and took memory in
/// proportion to every transaction decoded at once.
@Suite(.serialized) struct LongApplyTests {
    /// Lintan pushes 24 valid transactions of 10,000 writes each in one request. Before: they were
    /// applied as one SQLite transaction, and a local write during it waited until the end or
    /// failed. Now every local write made while the push applies completes.
    @Test func localWritesCompleteWhileABigPushApplies() async throws {
        let (net, lintan, body, headers) = try Self.served()
        defer { net.stop() }
        let url = net.server.url
        let pid = net.server.process.pid
        let before = peakRSS(of: pid)
        let done = Mutex(false)
        let pushing = Task { () throws -> Int in
            defer { done.withLock { $0 = true } }
            return try await Self.send(body, headers: headers, to: url).status
        }
        // Local writes, one after another, for as long as the push applies.
        var during: [(status: Int32, stderr: String)] = []
        var i = 0
        while !done.withLock({ $0 }) {
            i += 1
            let put = try await Binary.runAsync(["record", "put", "--data", net.hq, "projects", "hq-\(i)", "name=clerk \(i)"])
            if !done.withLock({ $0 }) { during.append((put.status, put.stderr)) }
        }
        #expect(try await pushing.value == 200)
        let after = peakRSS(of: pid)
        print(
            "push of \(body.count >> 10) KiB: \(during.count) local writes completed during it; server peak RSS \(before >> 20) -> \(after >> 20) MiB"
        )
        #expect(during.count >= 2, "the push applied too fast to overlap local writes: \(during.count)")
        for put in during { #expect(put.status == 0, "\(put.stderr)") }
        // The local writes went in between the push's chunks, by the order of arrival in HQ's log:
        // each gap between two of Lintan's transactions that holds one is a commit of the push that
        // let a local write in. One big SQLite transaction leaves no gap; the old chunks left one.
        let hq = NodeID(hex: try Federation.identity(net.hq)["node"] as! String)!
        let pusher = lintan.node
        let gaps = try await DatabaseQueue(path: net.hq + "/node.sqlite").read { db -> Int in
            func received(_ node: NodeID) throws -> [Int64] {
                try Int64.fetchAll(
                    db, sql: "SELECT received FROM log WHERE origin = (SELECT ix FROM node WHERE id = ?) ORDER BY seq", arguments: [Data(node.bytes)])
            }
            let pushed = try received(pusher)
            let local = try received(hq).filter { $0 > pushed.first! && $0 < pushed.last! }
            return Set(local.map { t in pushed.filter { $0 < t }.count }).count
        }
        print("local writes landed in \(gaps) of the push's gaps between chunks")
        #expect(gaps >= 3, "local writes got in between the push's chunks \(gaps) times")
        // Memory: the body and one slice of it decoded, not every transaction at once.
        #expect(after - before <= 3 * body.count + (4 << 20), "peak RSS grew \((after - before) >> 20) MiB for a \(body.count >> 20) MiB push")
        let status = try await jsonOutputAsync(["status", "--data", net.hq, "--json"]) as? [String: Any]
        #expect(status?["records"] as? Int ?? 0 >= 240_000 + i)
    }

    /// Not tried by anyone before (issue 23): HQ revokes Lintan while one of Lintan's big pushes is
    /// applying. The revocation is not held up by the push (it commits between two slices), its cut
    /// is the last transaction HQ had accepted when it committed, and nothing of Lintan's after the
    /// cut is applied: the push's later transactions are refused with the revocation as reason, and
    /// Lintan's next request is turned away.
    @Test func aRevocationDuringABigPushCutsItWhereItStood() async throws {
        let (net, lintan, body, headers) = try Self.served()
        defer { net.stop() }
        let url = net.server.url
        let pushing = Task { try await Self.send(body, headers: headers, to: url) }
        // The server's own signal that the apply has begun: Lintan's first transaction in HQ's log.
        let database = try DatabaseQueue(
            path: net.hq + "/node.sqlite",
            configuration: {
                var c = Configuration()
                c.readonly = true
                return c
            }())
        let lintanLog = "SELECT count(*) FROM log WHERE origin = (SELECT ix FROM node WHERE id = x'\(lintan.node.hex)')"
        // The watch and the revocation run on a thread of their own: on the cooperative pool, other
        // suites' blocking work delayed the watch until 22 of the 24 had gone in (CI, ac82e24).
        let (hqData, lintanHex) = (net.hq, lintan.node.hex)
        let (applied, revoke) = try await waitOffThePool { () throws -> (Int, Binary.Result) in
            var applied = 0
            while applied == 0 {
                applied = try database.read { db in try Int.fetchOne(db, sql: lintanLog) ?? 0 }
                if applied == 0 { usleep(2_000) }
            }
            return (applied, try Binary.run(["node", "revoke", "--data", hqData, lintanHex]))
        }
        #expect(revoke.status == 0, "the revocation waited for the push or failed: \(revoke.stderr)")
        let answer = try await pushing.value
        #expect(answer.status == 200, "\(String(decoding: answer.body, as: UTF8.self).prefix(300))")
        let response = try WireCodec.decodeMessage(PushResponse.self, from: answer.body)

        let registry = try records(net.hq, "registry")[lintan.node.hex] ?? [:]
        let cut = registry["revoked_after_seq"] as? Int ?? -1
        // Refused transactions stay in the log, marked, to be passed on with the verdict.
        let kept = try await database.read { db in try Int.fetchOne(db, sql: lintanLog + " AND refused IS NULL") ?? 0 }
        print("revoked with \(applied) of Lintan's 24 transactions applied; cut at \(cut); \(kept) kept; \(response.refused.count) refused")
        #expect(cut >= applied && cut < 24, "the revocation did not land while the push applied: cut \(cut)")
        #expect(kept == cut, "HQ keeps \(kept) of Lintan's transactions but cut at \(cut)")
        #expect(response.applied == cut, "the push's answer says \(response.applied) applied")
        if (0..<24).contains(cut) {
            #expect(response.refused.map(\.seq).sorted() == Array(UInt64(cut + 1)...24), "the push's later transactions are refused")
        }
        #expect(response.refused.allSatisfy { $0.reason.contains("revoked") }, "\(response.refused.first?.reason ?? "")")
        let records = try await database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM record WHERE record_id LIKE 'lt-%'") ?? 0 }
        #expect(records == cut * 10_000, "Lintan's records at HQ are those of its first \(cut) transactions: \(records)")
        let again = try await lintan.push(net.server.url, frames: [])
        #expect(again.status == 403, "a revoked node's next request: \(again.status)")
        #expect(try Binary.run(["check", "--data", net.hq]).status == 0)
    }

    /// HQ served with an approved Lintan, and Lintan's big push with its signed headers.
    static func served() throws -> (ServedNetwork, Forger, [UInt8], [String: String]) {
        let net = try ServedNetwork(counties: ["lintan"])
        let lintan = try Forger(data: net["lintan"])
        let body = try bigPush(lintan)
        return (net, lintan, body, try lintan.headers(method: "POST", path: "/v1/push", body: body))
    }

    /// 24 valid transactions of Lintan's, 10,000 writes each, as one push body.
    static func bigPush(_ lintan: Forger) throws -> [UInt8] {
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        var frames: [[UInt8]] = []
        for seq in 1...24 {
            let changes = (0..<10_000).map { r in
                Change.set(FieldWrite(collection: "projects", recordID: "lt-\(seq)-\(r)", field: "name", value: .text("school \(r)")))
            }
            frames.append(try lintan.transaction(seq: UInt64(seq), millis: now + UInt64(seq), changes).frame)
        }
        let header = BatchHeader(from: PeerIdentity(node: lintan.node, site: "lintan", label: "l"), count: frames.count, more: false, clock: now)
        return BatchCodec.encode(header: try WireCodec.encodeMessage(header), frames: frames)
    }

    /// Sends a signed push body, with time enough for a long apply.
    static func send(_ body: [UInt8], headers: [String: String], to url: String) async throws -> (status: Int, body: [UInt8]) {
        var options = HTTPClientOptions()
        options.lowSpeedSeconds = 600
        options.timeoutSeconds = 600
        let result = try await CurlClient(options: options).send(method: "POST", url: url + "/v1/push", headers: headers, body: body)
        return (result.status, result.body)
    }
}
