import Foundation
import SyncNode
import SyncProtocol
import Testing

/// HQ signs each pull response it serves ("vouches": it verified every transaction in its log),
/// so a node that trusts HQ checks one signature per batch instead of one per transaction. Only the
/// trust anchor's vouch counts, and only for the exact frames it signed.
@Suite struct VouchTests {
    /// Serves pulls from a store's `SyncService`, letting the test alter the response bytes.
    struct AlteringTransport: SyncTransport {
        let service: SyncService
        let alter: @Sendable ([UInt8]) -> [UInt8]

        var peerName: String { service.store.info.label }

        func status() async throws(SyncNodeError) -> (StatusMessage, wireBytes: Int) {
            do { return (try service.status(), 0) } catch { throw SyncNodeError(.peerRefused, error.message) }
        }

        func pull(_ request: PullRequest) async throws(SyncNodeError) -> PulledBatch {
            let body: [UInt8]
            do {
                body = try service.pull(body: try WireCodec.encodeMessage(request))
            } catch {
                throw SyncNodeError(.peerRefused, "\(error)")
            }
            return try Self.decodeBatch(alter(body), from: peerName, wireBytes: body.count)
        }

        func push(_ batch: [UInt8]) async throws(SyncNodeError) -> (PushResponse, wireBytes: Int) {
            do {
                return (try WireCodec.decodeMessage(PushResponse.self, from: try service.push(body: batch)), batch.count)
            } catch {
                throw SyncNodeError(.peerRefused, "\(error)")
            }
        }
    }

    static func pull(_ node: TestNode, from server: TestNode) async throws -> PulledBatch {
        let me = PeerIdentity(node: node.store.info.nodeID, site: node.store.info.site, label: node.store.info.label)
        return try await LocalTransport(service: SyncService(store: server.store)).pull(
            PullRequest(from: me, vector: try node.store.vector(), maxTransactions: 100, maxBytes: 1 << 20))
    }

    /// A federation whose registry every node holds, with one Lintan write (funds 5,000,000) synced to HQ.
    static func lintanWorkAtHQ() async throws -> StoreFederation {
        let f = try StoreFederation()
        do {
            try await f.distributeRegistry()
            try f.lintan.store.commit([.put(collection: "projects", recordID: "lt-school", fields: [.init("funds_fen", .int(5_000_000))])])
            try await f.sync(f.lintan, with: f.hq)
            return f
        } catch {
            f.remove()
            throw error
        }
    }

    @Test func hqVouchesForWhatItServesAndNobodyElsesVouchCounts() async throws {
        let f = try await Self.lintanWorkAtHQ()
        defer { f.remove() }

        let fromHQ = try await Self.pull(f.gangu, from: f.hq)
        #expect(fromHQ.transactions.count == 1)
        #expect(fromHQ.header.vouch != nil)
        #expect(f.gangu.store.acceptsVouch(fromHQ))

        // A relay (not the trust anchor) does not vouch.
        try await f.sync(f.office, with: f.lintan)
        let fromRelay = try await Self.pull(f.gangu, from: f.office)
        #expect(fromRelay.transactions.count == 1)
        #expect(fromRelay.header.vouch == nil)
        #expect(!f.gangu.store.acceptsVouch(fromRelay))

        // A node that believes itself HQ vouches with its own key: worthless to those who trust the real HQ.
        let impostor = try TestNode(site: "hq", label: "impostor-hq", role: .hq, trust: .hq)
        defer { impostor.remove() }
        _ = try impostor.store.apply(try f.hq.store.transactions(missingFrom: VersionVector()).transactions)
        let fromImpostor = try await Self.pull(f.gangu, from: impostor)
        #expect(fromImpostor.header.vouch != nil)
        #expect(!f.gangu.store.acceptsVouch(fromImpostor))
    }

    @Test func aVouchedBatchAlteredInTransitIsCheckedTransactionByTransaction() async throws {
        let f = try await Self.lintanWorkAtHQ()
        defer { f.remove() }

        // The vouch no longer matches the frames, so each origin signature is verified: the altered
        // transaction is turned away and nothing of it is applied.
        let altering = AlteringTransport(service: SyncService(store: f.hq.store)) { body in
            // Same length, byte for byte: the frames stay well formed, only the amount changes
            // (an integer value in a binary body: type 1, then the zigzag varint).
            var out = body
            let from = encodedValue(.int(5_000_000))
            let to = encodedValue(.int(9_000_000))
            if let at = (0...(out.count - from.count)).first(where: { out[$0..<$0 + from.count].elementsEqual(from) }) {
                out.replaceSubrange(at..<at + from.count, with: to)
            }
            return out
        }
        let tampered = try await altering.pull(
            PullRequest(
                from: PeerIdentity(node: f.gangu.store.info.nodeID, site: "gangu", label: "gangu-office-1"), vector: try f.gangu.store.vector(),
                maxTransactions: 100, maxBytes: 1 << 20))
        #expect(tampered.header.vouch != nil)
        #expect(
            tampered.transactions.contains {
                $0.transaction.changes.contains { if case .set(let w) = $0 { w.value == .int(9_000_000) } else { false } }
            },
            "the amount was altered in transit")
        #expect(!f.gangu.store.acceptsVouch(tampered))
        _ = try? await Syncer(store: f.gangu.store, transport: altering).run()
        #expect(try f.gangu.store.record("projects", "lt-school") == nil)
        // An altered copy says nothing about its origin's work: it is turned away, not listed.
        #expect(try f.gangu.store.rejections().isEmpty)

        // The genuine batch, vouched, then applies.
        try await f.sync(f.gangu, with: f.hq)
        #expect(try f.gangu.store.record("projects", "lt-school")?.fields["funds_fen"] == .int(5_000_000))
    }
}

/// A value as a binary (protocol 2) body writes it.
func encodedValue(_ value: Value) -> [UInt8] {
    var out: [UInt8] = []
    ByteWriting.value(value, into: &out)
    return out
}
