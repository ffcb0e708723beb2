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
        let net = try ServedNetwork(counties: ["lintan"])
        defer { net.stop() }
        let lintan = try Forger(data: net["lintan"])
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        var frames: [[UInt8]] = []
        for seq in 1...24 {
            let changes = (0..<10_000).map { r in
                Change.set(FieldWrite(collection: "projects", recordID: "lt-\(seq)-\(r)", field: "name", value: .text("school \(r)")))
            }
            frames.append(try lintan.transaction(seq: UInt64(seq), millis: now + UInt64(seq), changes).frame)
        }
        let header = BatchHeader(from: PeerIdentity(node: lintan.node, site: "lintan", label: "l"), count: frames.count, more: false, clock: now)
        let body = BatchCodec.encode(header: try WireCodec.encodeMessage(header), frames: frames)
        let headers = try lintan.headers(method: "POST", path: "/v1/push", body: body)
        let url = net.server.url
        let pid = net.server.process.pid
        let before = peakRSS(of: pid)
        var options = HTTPClientOptions()
        options.lowSpeedSeconds = 600
        options.timeoutSeconds = 600
        let client = CurlClient(options: options)
        let done = Mutex(false)
        let pushing = Task { () throws -> Int in
            defer { done.withLock { $0 = true } }
            return try await client.send(method: "POST", url: url + "/v1/push", headers: headers, body: body).status
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
}
