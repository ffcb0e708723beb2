import Foundation
import SyncNode
import SyncProtocol
import Testing

/// A small federation of real stores with real keys: HQ (trust anchor), two counties and a Dongli
/// office that relays. `liar` creates Lintan believing itself HQ locally (a tampered node that
/// skips its own checks), while HQ approved it as a county: receivers must still refuse its work.
struct StoreFederation {
    let hq: TestNode
    let lintan: TestNode
    let gangu: TestNode
    let office: TestNode

    init(liar: Bool = false) throws {
        hq = try TestNode(site: "hq", label: "dongli-hq", role: .hq, trust: .hq)
        let anchor = TrustSetup.anchor(hq.store.info.publicKey)
        lintan = try TestNode(site: "lintan", label: "lintan-office-1", role: liar ? .hq : .county, trust: anchor)
        gangu = try TestNode(site: "gangu", label: "gangu-office-1", role: .county, trust: anchor)
        office = try TestNode(site: "dongli-education", label: "education-bureau", role: .office, trust: anchor)
        for (node, role) in [(lintan, Role.county), (gangu, .county), (office, .office)] {
            try hq.store.commit([
                .approve(
                    node: node.store.info.nodeID, key: node.store.info.publicKey, site: node.store.info.site, role: role, label: node.store.info.label
                )
            ])
        }
    }

    func remove() {
        for n in [hq, lintan, gangu, office] { n.remove() }
    }

    /// One sync round of `node` with `peer`, in process.
    @discardableResult
    func sync(_ node: TestNode, with peer: TestNode) async throws -> SyncSummary {
        try await Syncer(store: node.store, transport: LocalTransport(service: SyncService(store: peer.store))).run()
    }

    /// Everyone gets HQ's registry (but a liar, which writes before it hears its real role).
    func distributeRegistry(skippingLiar: Bool = false) async throws {
        for n in skippingLiar ? [gangu, office] : [lintan, gangu, office] { try await sync(n, with: hq) }
    }
}

extension TestNode {
    init(site: String, label: String, role: Role, trust: TrustSetup) throws {
        try self.init(site: site, label: label, millis: 1_700_000_000_000, role: role, trust: trust)
    }
}

@Suite struct TrustTests {
    private func push(_ batch: [ReceivedTransaction], from origin: TestNode, to receiver: TestNode) throws -> PushResponse {
        let header = BatchHeader(
            from: PeerIdentity(node: origin.store.info.nodeID, site: origin.store.info.site, label: origin.store.info.label), count: batch.count,
            more: false, clock: 1_700_000_000_000)
        let body = BatchCodec.encode(header: try WireCodec.encodeMessage(header), frames: batch.map(\.frame))
        return try WireCodec.decodeMessage(PushResponse.self, from: try SyncService(store: receiver.store).push(body: body))
    }

    @Test func unsignedTransactionIsTurnedAwayAndTheGenuineOneStillArrives() async throws {
        let f = try StoreFederation()
        defer { f.remove() }
        try await f.distributeRegistry()
        try f.lintan.store.commit([.put(collection: "projects", recordID: "lt-school", fields: [.init("name", .text("东丽小学"))])])
        var copy = try f.lintan.store.transactions(missingFrom: try f.hq.store.vector()).transactions
        copy[0].signature = []
        let before = try f.hq.store.storedDigest()
        let answer = try push(copy, from: f.lintan, to: f.hq)
        #expect(answer.applied == 0)
        #expect(answer.refused.first?.reason.contains("unsigned") == true)
        #expect(try f.hq.store.storedDigest() == before)
        // Told to the sender only: a bad copy anyone can make is never listed against its origin.
        #expect(try f.hq.store.rejections().isEmpty)
        try await f.sync(f.lintan, with: f.hq)
        #expect(try f.hq.store.record("projects", "lt-school")?.fields["name"] == .text("东丽小学"))
    }

    @Test func tamperedChangeInsideASignedTransactionIsTurnedAway() async throws {
        let f = try StoreFederation()
        defer { f.remove() }
        try await f.distributeRegistry()
        try f.lintan.store.commit([.put(collection: "projects", recordID: "lt-school", fields: [.init("funds_fen", .int(5_000_000))])])
        let genuine = try f.lintan.store.transactions(missingFrom: try f.hq.store.vector()).transactions[0]
        // The same transaction with another amount, encoded as its origin would, under the origin's signature.
        var changed = genuine.transaction
        changed.changes = [.set(FieldWrite(collection: "projects", recordID: "lt-school", field: "funds_fen", value: .int(9_000_000)))]
        var forged = try ReceivedTransaction(body: WireCodec.encode(changed))
        #expect(forged.body != genuine.body)
        forged.signature = genuine.signature
        let before = try f.hq.store.storedDigest()
        let answer = try push([forged], from: f.lintan, to: f.hq)
        #expect(answer.refused.first?.reason.contains("does not verify") == true)
        #expect(try f.hq.store.storedDigest() == before)
        try await f.sync(f.lintan, with: f.hq)
        #expect(try f.hq.store.record("projects", "lt-school")?.fields["funds_fen"] == .int(5_000_000))
    }

    @Test func aRevokedNodesLaterWorkIsRefusedAndItsOriginIsTold() async throws {
        let f = try StoreFederation()
        defer { f.remove() }
        try await f.distributeRegistry()
        try f.gangu.store.commit([.put(collection: "projects", recordID: "gg-dorm-1", fields: [.init("stage", .text("started"))])])
        try await f.sync(f.gangu, with: f.hq)
        f.hq.clock.advance(by: 1000)
        try f.hq.store.commit([.revoke(node: f.gangu.store.info.nodeID)])
        f.gangu.clock.advance(by: 5000)
        try f.gangu.store.commit([.put(collection: "projects", recordID: "gg-dorm-1", fields: [.init("stage", .text("completed"))])])
        let summary = try await f.sync(f.gangu, with: f.hq)
        #expect(summary.refused == 1)
        #expect(try f.hq.store.record("projects", "gg-dorm-1")?.fields["stage"] == .text("started"))
        let told = try f.gangu.store.rejections()
        #expect(told.count == 1)
        #expect(told.first?.reason.contains("revoked") == true)
        #expect(told.first?.refusedBy == "dongli-hq")
    }

    @Test func aCountyNodeWritingAnotherCountysRecordIsRefusedEverywhere() async throws {
        let f = try StoreFederation(liar: true)
        defer { f.remove() }
        try await f.distributeRegistry(skippingLiar: true)
        try f.lintan.store.commit([.put(collection: "projects", recordID: "gg-12", fields: [.init("stage", .text("cancelled"))])])
        let summary = try await f.sync(f.lintan, with: f.hq)
        #expect(summary.refused == 1)
        #expect(try f.hq.store.record("projects", "gg-12") == nil)
        let told = try #require(try f.lintan.store.rejections().first)
        #expect(told.reason.contains("may not write gangu project gg-12"))
        // HQ relays a refusal, never the work: Gangu learns nothing of gg-12.
        try await f.sync(f.gangu, with: f.hq)
        #expect(try f.gangu.store.record("projects", "gg-12") == nil)
        #expect(try f.gangu.store.vector()[f.lintan.store.info.nodeID] == f.lintan.store.vector()[f.lintan.store.info.nodeID])
    }

    @Test func aHonestCountyNodeIsStoppedLocallyBeforeWriting() throws {
        let f = try StoreFederation()
        defer { f.remove() }
        do {
            try f.lintan.store.commit([.put(collection: "projects", recordID: "gg-12", fields: [.init("stage", .text("x"))])])
            Issue.record("a county wrote another county's record")
        } catch {
            #expect(error.code == .forbidden)
            #expect(error.message.contains("may not write gangu project gg-12"))
        }
        #expect(try f.lintan.store.vector().entries.isEmpty)
    }

    @Test func aCountyNodeAppendingADisbursementIsRefused() async throws {
        let f = try StoreFederation(liar: true)
        defer { f.remove() }
        try await f.distributeRegistry(skippingLiar: true)
        try f.lintan.store.commit([
            .append(ledger: "disbursements", entryID: nil, fields: [.init("county", .text("lintan")), .init("amount_fen", .int(1))])
        ])
        let summary = try await f.sync(f.lintan, with: f.hq)
        #expect(summary.refused == 1)
        #expect(try f.hq.store.ledger("disbursements").isEmpty)
        #expect(try f.lintan.store.rejections().first?.reason.contains("only finance") == true)
    }

    @Test func aForgedRegistryEntryIsRefused() async throws {
        let f = try StoreFederation(liar: true)
        defer { f.remove() }
        try await f.distributeRegistry(skippingLiar: true)
        let registryBefore = try f.hq.store.registry()
        try f.lintan.store.commit([
            .approve(node: NodeID(high: 9, low: 9), key: f.lintan.store.info.publicKey, site: "hq", role: .hq, label: "fake-hq")
        ])
        try await f.sync(f.lintan, with: f.hq)
        #expect(try f.hq.store.registry() == registryBefore)
        #expect(try f.lintan.store.rejections().first?.reason.contains("only HQ writes reference data") == true)
    }

    @Test func attacksThroughARelayAreRefusedAtTheRelayAndNeverReachHQ() async throws {
        let f = try StoreFederation(liar: true)
        defer { f.remove() }
        try await f.distributeRegistry(skippingLiar: true)
        try f.lintan.store.commit([.put(collection: "projects", recordID: "gg-12", fields: [.init("stage", .text("cancelled"))])])
        try f.lintan.store.commit([
            .append(ledger: "disbursements", entryID: nil, fields: [.init("county", .text("lintan")), .init("amount_fen", .int(1))])
        ])
        let summary = try await f.sync(f.lintan, with: f.office)
        #expect(summary.refused == 2)
        #expect(try f.lintan.store.rejections().allSatisfy { $0.refusedBy == "education-bureau" })
        try await f.sync(f.office, with: f.hq)
        #expect(try f.hq.store.record("projects", "gg-12") == nil)
        #expect(try f.hq.store.ledger("disbursements").isEmpty)
        #expect(try f.hq.store.rejections().count == 2)
        #expect(try f.office.store.stateDigest() == f.hq.store.stateDigest())
    }

    @Test func attacksThroughABundleAreRefusedAndTheOriginLearnsOnItsNextSync() async throws {
        let f = try StoreFederation(liar: true)
        defer { f.remove() }
        try await f.distributeRegistry(skippingLiar: true)
        try f.lintan.store.commit([.put(collection: "counties", recordID: "lintan", fields: [.init("yearly_aid_fen", .int(99_000_000_000))])])
        let file = f.lintan.directory.path("usb.bundle")
        _ = try f.lintan.store.exportBundle(to: file, since: try f.hq.store.vector(), sealedFor: try f.lintan.store.bundleRecipients(named: []))
        let report = try f.hq.store.importBundle(from: file)
        #expect(report.apply?.refused.count == 1)
        #expect(try f.hq.store.record("counties", "lintan") == nil)
        #expect(try f.lintan.store.rejections().isEmpty)
        try await f.sync(f.lintan, with: f.hq)
        #expect(try f.lintan.store.rejections().first?.reason.contains("only HQ writes reference data") == true)
    }

    @Test func transactionsFromAnUnknownNodeWaitUntilTheRegistryApprovesIt() async throws {
        let f = try StoreFederation()
        defer { f.remove() }
        try await f.distributeRegistry()
        let newcomer = try TestNode(site: "lintan", label: "lintan-township-3", role: .county, trust: .anchor(f.hq.store.info.publicKey))
        defer { newcomer.remove() }
        try newcomer.store.commit([.put(collection: "projects", recordID: "lt-village-road", fields: [.init("stage", .text("approved"))])])
        // The newcomer reaches the county office before HQ has approved it.
        _ = try await Syncer(store: newcomer.store, transport: LocalTransport(service: SyncService(store: f.lintan.store))).run()
        #expect(try f.lintan.store.heldTransactions().count == 1)
        #expect(try f.lintan.store.record("projects", "lt-village-road") == nil)
        try f.hq.store.commit([
            .approve(node: newcomer.store.info.nodeID, key: newcomer.store.info.publicKey, site: "lintan", role: .county, label: "lintan-township-3")
        ])
        try await f.sync(f.lintan, with: f.hq)
        #expect(try f.lintan.store.heldTransactions().isEmpty)
        #expect(try f.lintan.store.record("projects", "lt-village-road")?.fields["stage"] == .text("approved"))
    }

    @Test func moreHeldTransactionsThanOneApplyChunkAreAllHeldThenApplied() async throws {
        let f = try StoreFederation()
        defer { f.remove() }
        try await f.distributeRegistry()
        let newcomer = try TestNode(site: "lintan", label: "lintan-township-4", role: .county, trust: .anchor(f.hq.store.info.publicKey))
        defer { newcomer.remove() }
        // More than one chunk (256) of transactions from a node the county office does not know yet.
        for i in 0..<300 {
            try newcomer.store.commit([.put(collection: "projects", recordID: "lt-road-\(i)", fields: [.init("km", .int(Int64(i)))])])
        }
        let report = try f.lintan.store.apply(try newcomer.store.transactions(missingFrom: VersionVector()).transactions)
        #expect(report.held == 300)
        #expect(report.chunks == 2)
        try f.hq.store.commit([
            .approve(node: newcomer.store.info.nodeID, key: newcomer.store.info.publicKey, site: "lintan", role: .county, label: "lintan-township-4")
        ])
        try await f.sync(f.lintan, with: f.hq)
        #expect(try f.lintan.store.heldTransactions().isEmpty)
        #expect(try f.lintan.store.records("projects").count == 300)
    }

    @Test func aPullWhoseBatchesAreAllHeldMovesOnToTheApprovalThatReleasesThem() async throws {
        let f = try StoreFederation()
        defer { f.remove() }
        try await f.distributeRegistry()
        // A newcomer whose id sorts before HQ's, so HQ serves its transactions before HQ's own.
        var newcomer = try TestNode(site: "lintan", label: "lintan-township-5", role: .county, trust: .anchor(f.hq.store.info.publicKey))
        while newcomer.store.info.nodeID > f.hq.store.info.nodeID {
            newcomer.remove()
            newcomer = try TestNode(site: "lintan", label: "lintan-township-5", role: .county, trust: .anchor(f.hq.store.info.publicKey))
        }
        defer { newcomer.remove() }
        for i in 0..<30 {
            try newcomer.store.commit([.put(collection: "projects", recordID: "lt-well-\(i)", fields: [.init("depth", .int(Int64(i)))])])
        }
        try f.hq.store.commit([
            .approve(node: newcomer.store.info.nodeID, key: newcomer.store.info.publicKey, site: "lintan", role: .county, label: "lintan-township-5")
        ])
        _ = try await Syncer(store: newcomer.store, transport: LocalTransport(service: SyncService(store: f.hq.store))).run()
        // Gangu's registry lacks the newcomer: the first batches are held, then HQ's approval arrives.
        var limits = SyncLimits()
        limits.maxTransactions = 10
        let summary = try await Syncer(store: f.gangu.store, transport: LocalTransport(service: SyncService(store: f.hq.store)), limits: limits).run()
        #expect(summary.received >= 31)
        #expect(try f.gangu.store.heldTransactions().isEmpty)
        #expect(try f.gangu.store.records("projects").filter { $0.recordID.hasPrefix("lt-well-") }.count == 30)
        #expect(try f.gangu.store.stateDigest() == f.hq.store.stateDigest())
    }

    @Test func transactionsSignedByAnImpostorHQAreNeverApplied() async throws {
        let f = try StoreFederation()
        defer { f.remove() }
        let impostor = try TestNode(site: "hq", label: "dongli-hq", role: .hq, trust: .hq)
        defer { impostor.remove() }
        try impostor.store.commit([.approve(node: NodeID(high: 1, low: 2), key: impostor.store.info.publicKey, site: "lintan", role: .hq, label: "x")]
        )
        let before = try f.hq.store.registry()
        _ = try await Syncer(store: impostor.store, transport: LocalTransport(service: SyncService(store: f.hq.store))).run()
        #expect(try f.hq.store.registry() == before)
        #expect(try f.hq.store.heldTransactions().count == 2)
    }
}
