import Foundation
import SyncNode
import SyncProtocol
import Testing

/// The recovery of a node's own history believes only what the peer shows, signed by the node's
/// own key (a review of issue 15's change found that a bare "differs" answer made a node withdraw
/// and renumber its work).
@Suite struct RecoveryTests {
    /// Says "your transaction differs" to every check and sends nothing.
    struct LyingTransport: SyncTransport {
        let service: SyncService
        var peerName: String { "liar" }

        func status() async throws(SyncNodeError) -> (StatusMessage, wireBytes: Int) {
            do { return (try service.status(), 0) } catch { throw SyncNodeError(.peerRefused, error.message) }
        }

        func pull(_ request: PullRequest) async throws(SyncNodeError) -> PulledBatch {
            let header = BatchHeader(
                from: PeerIdentity(node: service.store.info.nodeID, site: "hq", label: "liar"), count: 0, more: false, clock: 1_700_000_000_000)
            var batch = try Self.decodeBatch(
                BatchCodec.encode(header: (try? WireCodec.encodeMessage(header)) ?? [], frames: []), from: peerName, wireBytes: 0)
            batch.header.ownDiffers = request.ownCheck != nil ? true : nil
            return batch
        }

        func push(_ batch: [UInt8]) async throws(SyncNodeError) -> (PushResponse, wireBytes: Int) {
            throw SyncNodeError(.peerRefused, "not taken")
        }
    }

    @Test func aPeerThatOnlySaysOurWorkDiffersChangesNothing() async throws {
        let f = try StoreFederation()
        defer { f.remove() }
        try await f.distributeRegistry()
        try f.lintan.store.commit([.put(collection: "projects", recordID: "lt-1", fields: [.init("name", .text("one"))])])
        try await f.sync(f.lintan, with: f.hq)
        let before = try f.lintan.store.storedDigest()
        let vector = try f.lintan.store.vector()
        let error = await #expect(throws: SyncNodeError.self) {
            try await Syncer(store: f.lintan.store, transport: LyingTransport(service: SyncService(store: f.hq.store))).run()
        }
        #expect(error?.code == .protocolViolation)
        #expect(error?.message.contains("did not send it") == true)
        #expect(try f.lintan.store.storedDigest() == before)
        #expect(try f.lintan.store.vector() == vector)
    }

    @Test func aRevokedNodeCannotBeApprovedAgain() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        let lintan = dir.path("lintan").path
        try Federation.hq(hq)
        try Federation.member(lintan, site: "lintan", hq: hq)
        let me = try Federation.identity(lintan)
        #expect(try Binary.run(["node", "revoke", "--data", hq, me["node"] as! String]).status == 0)
        let again = try Binary.run([
            "node", "approve", "--data", hq, me["node"] as! String, "--key", me["publicKey"] as! String, "--site", "lintan", "--role", "county",
        ])
        #expect(again.status == 79)
        #expect(again.stderr.contains("cannot be approved again"))
    }
}

/// HQ's verdicts travel under its vouch: a node that receives work HQ accepted under an older
/// policy does not refuse it under the newer one (a review found that HQ's transactions, served
/// first, made receivers judge older work under HQ's newest policy and end apart from HQ).
@Suite struct AnchorVerdictTests {
    @Test func workHQAcceptedBeforeAPolicyChangeIsAcceptedEverywhere() async throws {
        let f = try StoreFederation()
        defer { f.remove() }
        try await f.distributeRegistry()
        try f.lintan.store.commit([.put(collection: "projects", recordID: "lt-old", fields: [.init("name", .text("before the change"))])])
        try await f.sync(f.lintan, with: f.hq)
        // HQ narrows lintan's prefixes: `lt-` ids are no longer lintan's from now on.
        try f.hq.store.commit([.put(collection: "policy", recordID: "county-lintan", fields: [.init("prefixes", .text("lintan-"))])])
        try await f.sync(f.gangu, with: f.hq)
        #expect(try f.gangu.store.record("projects", "lt-old")?.fields["name"] == .text("before the change"))
        #expect(try f.gangu.store.stateDigest() == f.hq.store.stateDigest())
        // And what HQ refused is refused there with HQ's reason, under the same vouch.
        try f.lintan.store.commit([.put(collection: "projects", recordID: "lt-new", fields: [.init("name", .text("after"))])])
        try await f.sync(f.lintan, with: f.hq)
        #expect(try f.hq.store.record("projects", "lt-new") == nil)
        try await f.sync(f.gangu, with: f.hq)
        #expect(try f.gangu.store.record("projects", "lt-new") == nil)
        #expect(try f.gangu.store.rejections().contains { $0.reason.contains("lintan-") })
        #expect(try f.gangu.store.stateDigest() == f.hq.store.stateDigest())
    }
}
