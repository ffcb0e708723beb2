import Foundation
import SyncNode
import SyncProtocol
import Testing

/// Wraps a transport, counting the batches that reached the peer and failing chosen calls.
final class CountingTransport: SyncTransport, @unchecked Sendable {
    let inner: any SyncTransport
    private let lock = NSLock()
    private(set) var pushesDelivered = 0
    private(set) var transactionsDelivered = 0
    private var pushCalls = 0
    /// Push calls (numbered from 1) that fail before reaching the peer.
    var failBefore: Set<Int> = []
    /// Push calls that reach the peer, but whose answer is lost.
    var failAfter: Set<Int> = []

    init(_ inner: any SyncTransport) { self.inner = inner }

    var peerName: String { inner.peerName }

    func status() async throws(SyncNodeError) -> (StatusMessage, wireBytes: Int) { try await inner.status() }

    func pull(_ request: PullRequest) async throws(SyncNodeError) -> PulledBatch { try await inner.pull(request) }

    func push(_ batch: [UInt8]) async throws(SyncNodeError) -> (PushResponse, wireBytes: Int) {
        let call = lock.withLock {
            pushCalls += 1
            return pushCalls
        }
        if failBefore.contains(call) { throw SyncNodeError(.unreachable, "connection cut (test)") }
        let answer = try await inner.push(batch)
        let count = (try? BatchCodec.decode(batch).frames.count) ?? 0
        lock.withLock {
            pushesDelivered += 1
            transactionsDelivered += count
        }
        if failAfter.contains(call) { throw SyncNodeError(.unreachable, "answer lost (test)") }
        return answer
    }
}

@Suite struct SyncEngineTests {
    private func write(_ node: TestNode, _ count: Int, prefix: String) throws {
        for i in 0..<count {
            try node.store.commit([.put(collection: "projects", recordID: "\(prefix)-\(i)", fields: [.init("n", .int(Int64(i)))])])
        }
    }

    private func limits(batch: Int) -> SyncLimits {
        var limits = SyncLimits()
        limits.maxTransactions = batch
        return limits
    }

    @Test func twoNodesConvergeInOneRoundInBothDirections() async throws {
        let county = try TestNode()
        let hq = try TestNode(site: "hq")
        defer {
            county.remove()
            hq.remove()
        }
        try write(county, 25, prefix: "c")
        try write(hq, 7, prefix: "h")
        let summary = try await Syncer(
            store: county.store, transport: LocalTransport(service: SyncService(store: hq.store)), limits: limits(batch: 10)
        )
        .run()
        #expect(summary.received == 7)
        #expect(summary.sent == 25)
        #expect(summary.batchesSent == 3)
        #expect(summary.peer.label == hq.store.info.label)
        #expect(try county.store.stateDigest() == hq.store.stateDigest())
    }

    @Test func relayCarriesWritesBetweenNodesThatNeverMeet() async throws {
        let a = try TestNode(site: "lintan")
        let b = try TestNode(site: "hq")
        let c = try TestNode(site: "gangu")
        defer {
            for n in [a, b, c] { n.remove() }
        }
        try write(a, 3, prefix: "a")
        try write(c, 4, prefix: "c")
        let toB = LocalTransport(service: SyncService(store: b.store))
        _ = try await Syncer(store: a.store, transport: toB).run()
        _ = try await Syncer(store: c.store, transport: toB).run()
        _ = try await Syncer(store: a.store, transport: toB).run()
        #expect(try a.store.stateDigest() == c.store.stateDigest())
        #expect(try c.store.record("projects", "a-2") != nil)
        #expect(try a.store.record("projects", "c-3") != nil)
    }

    @Test func aWriteOfAnUnchangedValueIsStillRelayed() async throws {
        let a = try TestNode(site: "lintan")
        let b = try TestNode(site: "hq")
        let c = try TestNode(site: "gangu")
        defer {
            for n in [a, b, c] { n.remove() }
        }
        try a.store.commit([.put(collection: "p", recordID: "1", fields: [.init("name", .text("same"))])])
        let toB = LocalTransport(service: SyncService(store: b.store))
        _ = try await Syncer(store: a.store, transport: toB).run()
        b.clock.advance(by: 10)
        // B confirms the value it already holds: a real transaction that must travel on.
        let confirm = try b.store.commit([.put(collection: "p", recordID: "1", fields: [.init("name", .text("same"))])])
        _ = try await Syncer(store: c.store, transport: toB).run()
        let history = try c.store.history("p", "1")
        #expect(history.count == 2)
        #expect(history.last?.ts == confirm.hlc)
        #expect(try c.store.vector()[b.store.info.nodeID] == 1)
    }

    @Test func aCutPushResumesWithoutResendingAcknowledgedBatches() async throws {
        let county = try TestNode()
        let hq = try TestNode(site: "hq")
        defer {
            county.remove()
            hq.remove()
        }
        try write(county, 50, prefix: "c")
        let transport = CountingTransport(LocalTransport(service: SyncService(store: hq.store)))
        transport.failBefore = [3]
        let syncer = Syncer(store: county.store, transport: transport, limits: limits(batch: 10))
        await #expect(throws: SyncNodeError.self) { try await syncer.run() }
        #expect(transport.pushesDelivered == 2)
        #expect(try hq.store.vector()[county.store.info.nodeID] == 20)
        _ = try await syncer.run()
        // 5 batches of 10 in all: the two acknowledged ones were not sent again.
        #expect(transport.pushesDelivered == 5)
        #expect(transport.transactionsDelivered == 50)
        #expect(try hq.store.stateDigest() == county.store.stateDigest())
    }

    @Test func aLostAnswerDoesNotCauseAResendOfWhatThePeerApplied() async throws {
        let county = try TestNode()
        let hq = try TestNode(site: "hq")
        defer {
            county.remove()
            hq.remove()
        }
        try write(county, 30, prefix: "c")
        let transport = CountingTransport(LocalTransport(service: SyncService(store: hq.store)))
        transport.failAfter = [2]
        let syncer = Syncer(store: county.store, transport: transport, limits: limits(batch: 10))
        await #expect(throws: SyncNodeError.self) { try await syncer.run() }
        _ = try await syncer.run()
        // The peer applied batch 2 before the answer was lost; the next round's status says so.
        #expect(transport.transactionsDelivered == 30)
        #expect(try hq.store.stateDigest() == county.store.stateDigest())
    }

    @Test func aPeerClockBeyondTheDriftLimitStopsTheRoundNamingTheNode() async throws {
        let county = try TestNode()
        let hq = try TestNode(site: "hq", label: "dongli-hq", millis: 1_700_000_000_000 + 2 * 3_600_000)
        defer {
            county.remove()
            hq.remove()
        }
        try write(county, 2, prefix: "c")
        do {
            _ = try await Syncer(store: county.store, transport: LocalTransport(service: SyncService(store: hq.store))).run()
            Issue.record("a 2-hour skew was accepted")
        } catch {
            #expect(error.code == .clockSkew)
            #expect(error.message.contains("dongli-hq"))
            #expect(error.message.contains("2 hours ahead"))
        }
        #expect(try hq.store.vector().entries.isEmpty)
    }

    @Test func roundOutcomeIsRecordedForStatus() async throws {
        let county = try TestNode()
        let hq = try TestNode(site: "hq")
        defer {
            county.remove()
            hq.remove()
        }
        try county.store.addPeer("http://hq.example:8420")
        try write(county, 3, prefix: "c")
        let peer = try #require(try county.store.peers().first)
        #expect(try county.store.unsentCount(to: peer) == 3)
        _ = try await Syncer(store: county.store, transport: LocalTransport(service: SyncService(store: hq.store))).run(
            bookkeepingKey: "http://hq.example:8420")
        let after = try #require(try county.store.peers().first)
        #expect(after.lastSuccess != nil)
        #expect(after.lastError == nil)
        #expect(after.label == hq.store.info.label)
        #expect(try county.store.unsentCount(to: after) == 0)
        #expect(after.sent == 3)
    }

    @Test func backoffDoublesUpToTheIntervalWithJitter() {
        #expect(SyncScheduler.backoff(failures: 1, interval: 300, random: 0.5) == 1)
        #expect(SyncScheduler.backoff(failures: 4, interval: 300, random: 0.5) == 8)
        #expect(SyncScheduler.backoff(failures: 20, interval: 300, random: 0.5) == 300)
        #expect(SyncScheduler.backoff(failures: 4, interval: 300, random: 0) == 6)
        #expect(SyncScheduler.backoff(failures: 4, interval: 300, random: 1) == 10)
    }
}
