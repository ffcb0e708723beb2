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
        let before = try f.lintan.store.stateDigest()
        let vector = try f.lintan.store.vector()
        let error = await #expect(throws: SyncNodeError.self) {
            try await Syncer(store: f.lintan.store, transport: LyingTransport(service: SyncService(store: f.hq.store))).run()
        }
        #expect(error?.code == .protocolViolation)
        #expect(error?.message.contains("did not send it") == true)
        #expect(try f.lintan.store.stateDigest() == before)
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
