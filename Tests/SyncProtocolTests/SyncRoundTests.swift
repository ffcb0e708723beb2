import SyncProtocol
import Testing

/// The pure state machine of a sync round, with no transport and no store.
@Suite struct SyncRoundTests {
    let me = NodeID(high: 1, low: 1)
    let peer = NodeID(high: 2, low: 2)

    func status(_ vector: VersionVector, clock: UInt64 = 1_000_000, version: Int = WireCodec.protocolVersion) -> StatusMessage {
        StatusMessage(
            identity: PeerIdentity(node: peer, site: "hq", label: "hq"), protocolVersion: version, schemaVersion: 5, clock: clock, vector: vector)
    }

    func vector(_ pairs: [(NodeID, UInt64)]) -> VersionVector {
        var v = VersionVector()
        for (node, seq) in pairs { v[node] = seq }
        return v
    }

    @Test func aRoundAsksForStatusThenPullsUntilNoMoreThenPushesWhatThePeerLacks() throws {
        var round = SyncRound(localVector: vector([(me, 3)]))
        #expect(round.next == .fetchStatus)
        try round.received(status: status(vector([(peer, 5)])), now: 1_000_000)
        #expect(round.next == .pull(since: vector([(me, 3)])))
        round.pulled(count: 2, more: true, localVector: vector([(me, 3), (peer, 2)]))
        #expect(round.next == .pull(since: vector([(me, 3), (peer, 2)])))
        round.pulled(count: 3, more: false, localVector: vector([(me, 3), (peer, 5)]))
        #expect(round.next == .push(peerHas: vector([(peer, 5)])))
        round.pushed(count: 3, peerVector: vector([(me, 3), (peer, 5)]))
        #expect(round.next == .finished)
        #expect(round.isComplete)
        #expect(round.transactionsReceived == 5 && round.transactionsSent == 3)
        #expect(round.batchesReceived == 2 && round.batchesSent == 1)
    }

    @Test func aPeerWhoseClockIsBeyondTheDriftLimitStopsTheRoundBeforeAnyTransfer() {
        var round = SyncRound(localVector: VersionVector(), maxDriftMillis: 600_000)
        #expect(throws: SyncRound.Failure.clockSkew(peer: peer, skewMillis: 600_001, maxDriftMillis: 600_000)) {
            try round.received(status: status(VersionVector(), clock: 1_600_001), now: 1_000_000)
        }
        #expect(round.next == .fetchStatus)
    }

    @Test func aPeerOfAnotherProtocolVersionStopsTheRound() {
        var round = SyncRound(localVector: VersionVector())
        #expect(throws: SyncRound.Failure.protocolMismatch(peer: peer, theirs: 2)) {
            try round.received(status: status(VersionVector(), version: 2), now: 1_000_000)
        }
    }

    @Test func aBatchThatMovesNothingEndsThePullRatherThanAskingForItAgain() throws {
        var round = SyncRound(localVector: VersionVector())
        try round.received(status: status(vector([(peer, 9)])), now: 1_000_000)
        round.pulled(count: 4, more: true, localVector: VersionVector(), pullVector: VersionVector())
        #expect(round.next == .finished, "nothing to push, and the pull made no progress")
    }

    @Test func aPushThePeerDoesNotAdvanceOnStopsTheRound() throws {
        var round = SyncRound(localVector: vector([(me, 2)]))
        try round.received(status: status(VersionVector()), now: 1_000_000)
        round.pulled(count: 0, more: false, localVector: vector([(me, 2)]))
        #expect(round.next == .push(peerHas: VersionVector()))
        round.pushed(count: 2, peerVector: VersionVector())
        #expect(round.next == .finished)
        #expect(!round.isComplete)
    }

    @Test func aNodeThatCannotStoreWhatItPullsStillPushes() throws {
        var round = SyncRound(localVector: vector([(me, 1)]))
        try round.received(status: status(vector([(peer, 100)])), now: 1_000_000)
        round.abandonPull()
        #expect(round.next == .push(peerHas: vector([(peer, 100)])))
    }
}
