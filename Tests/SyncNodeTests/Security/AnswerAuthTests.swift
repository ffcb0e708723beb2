import Foundation
import GRDB
import SyncNode
import SyncProtocol
import Testing

/// Issue 23, item 9: anyone answering on a peer's URL could plant refusals. Every answer is now
/// signed by the answering node and bound to its request; a node believes a refusal only from the
/// node that made it, replaces what that node said before, and bounds what it keeps.
@Suite(.serialized) struct AnswerAuthTests {
    /// A fake peer with no key, answering like a node (a status claiming to be HQ, with refusals
    /// of Gangu's work). Before: Gangu listed its own accepted work as "refused by dongli-hq".
    @Test func anAnswerNobodyKnownSignedIsNotBelieved() async throws {
        let net = try ServedNetwork(counties: ["gangu"])
        defer { net.stop() }
        try await Binary.runAsync(["record", "put", "--data", net["gangu"], "projects", "gg-1", "name=one"])
        #expect(try await net.syncAsync("gangu").status == 0)
        let hq = try Federation.identity(net.hq)
        let gangu = try Federation.identity(net["gangu"])
        let clock = UInt64(Date().timeIntervalSince1970 * 1000)
        let status =
            #"{"clock":\#(clock),"identity":{"label":"dongli-hq","node":"\#(hq["node"] as! String)","site":"hq"},"protocolVersion":\#(WireCodec.protocolVersion),"schemaVersion":11,"vector":{}}"#
        let fake = try RawServer(
            .reply("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(status.utf8.count)\r\nConnection: close\r\n\r\n\(status)"))
        let round = try await Binary.runAsync(["sync", "--data", net["gangu"], "--peer", "http://127.0.0.1:\(fake.port)"])
        #expect(round.status == 78, "\(round.stderr)")
        #expect(round.stderr.contains("without a node's signature"), "\(round.stderr)")
        #expect(try await rejectionsAsync(net["gangu"]).refused.isEmpty)
        _ = gangu
    }

    /// A real node of another network (its own HQ, its own key) answering at the address Gangu
    /// syncs with: its signature verifies with no key Gangu knows for the node it names.
    @Test func anAnswerSignedByAStrangersKeyIsNotBelieved() async throws {
        let net = try ServedNetwork(counties: ["gangu"])
        defer { net.stop() }
        // Gangu holds the registry (its approval has arrived), so it can check who answers.
        #expect(try await net.syncAsync("gangu").status == 0)
        // The stranger runs a network of its own and approves Gangu there (a node's public key is
        // no secret), so that it answers Gangu; its answers carry its own signature.
        let stranger = net.dir.path("stranger").path
        try Federation.hq(stranger, label: "dongli-hq")
        let gangu = try Federation.identity(net["gangu"])
        let approved = try await Binary.runAsync([
            "node", "approve", "--data", stranger, gangu["node"] as! String, "--key", gangu["publicKey"] as! String, "--site", "gangu", "--role",
            "county",
        ])
        #expect(approved.status == 0, "\(approved.stderr)")
        let server = try ServeProcess(data: stranger)
        defer { server.stop() }
        let round = try await Binary.runAsync(["sync", "--data", net["gangu"], "--peer", server.url])
        #expect(round.status == 78, "\(round.stderr)")
        #expect(round.stderr.contains("not signed by that node's registered key"), "\(round.stderr)")
        #expect(try await recordsAsync(net["gangu"], "projects").isEmpty)
    }

    /// Refusals a peer listed before (here: planted by an older version that believed anyone)
    /// are replaced by what the node says now; only refusals of work this node made are kept.
    @Test func whatAPeerSaysNowReplacesWhatItSaidBefore() async throws {
        let net = try ServedNetwork(counties: ["gangu"])
        defer { net.stop() }
        try await Binary.runAsync(["record", "put", "--data", net["gangu"], "projects", "gg-1", "name=one"])
        #expect(try await net.syncAsync("gangu").status == 0)
        let gangu = NodeID(hex: try Federation.identity(net["gangu"])["node"] as! String)!
        do {
            let db = try DatabaseQueue(path: net["gangu"] + "/node.sqlite")
            try await db.write { db in
                for seq in 1...20_000 {
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO rejection (origin, seq, reason, refused_by, at, permanent) VALUES (?, ?, ?, ?, 0, 1)",
                        arguments: [Data(gangu.bytes), seq, "run `syncnode init --force`", "dongli-hq"])
                }
            }
        }
        #expect(try await rejectionsAsync(net["gangu"]).refused.count == 20_000)
        #expect(try await net.syncAsync("gangu").status == 0)
        #expect(try await rejectionsAsync(net["gangu"]).refused.isEmpty)
    }

    /// A known peer's list is bounded by the work this node made.
    @Test func refusalsOfWorkNeverMadeAreNotKept() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        let lintan = dir.path("lintan").path
        try Federation.member(lintan, site: "lintan", hq: hq)
        let store = try Store.open(URL(fileURLWithPath: lintan))
        defer { try? store.close() }
        try store.commit([.put(collection: "projects", recordID: "lt-1", fields: [.init("name", .text("one"))])])
        let own = try store.vector()[store.info.nodeID]
        let listed = (1...20_000).map { Refusal(origin: store.info.nodeID, seq: UInt64($0), reason: "x", refusedBy: "dongli-hq") }
        try store.replaceRejections(by: "dongli-hq", with: listed)
        #expect(try store.rejections().count == Int(own))
    }
}
