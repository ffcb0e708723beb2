import SyncProtocol
import Testing

/// What a round decides besides its order of steps (`SyncRound`): which own transaction it
/// compares with the peer, what a pulled batch's header makes it do, what to ask for while a
/// batch is applied, when a round failed, and whose word it takes. The driver (`Syncer`) only
/// carries these out.
@Suite struct SyncDecisionTests {
    let me = NodeID(high: 1, low: 1)
    let peer = NodeID(high: 2, low: 2)
    let other = NodeID(high: 3, low: 3)

    func vector(_ pairs: [(NodeID, UInt64)]) -> VersionVector {
        var v = VersionVector()
        for (node, seq) in pairs { v[node] = seq }
        return v
    }

    func round(local: [(NodeID, UInt64)], peerHas: [(NodeID, UInt64)]) throws -> SyncRound {
        var round = SyncRound(localVector: vector(local))
        let status = StatusMessage(
            identity: PeerIdentity(node: peer, site: "hq", label: "hq"), protocolVersion: WireCodec.protocolVersion, schemaVersion: 5,
            clock: 1_000_000, vector: vector(peerHas))
        try round.received(status: status, now: 1_000_000)
        return round
    }

    @Test func theOwnTransactionComparedIsTheLastBothSidesHold() throws {
        #expect(try round(local: [(me, 7)], peerHas: [(me, 4)]).sharedSeq(of: me) == 4)
        #expect(try round(local: [(me, 3)], peerHas: [(me, 9)]).sharedSeq(of: me) == 3)
        #expect(try round(local: [(me, 3)], peerHas: [(peer, 9)]).sharedSeq(of: me) == nil, "the peer holds none of this node's work")
        #expect(try round(local: [], peerHas: [(me, 2)]).sharedSeq(of: me) == nil, "this node holds none of its own (a fresh restore)")
    }

    @Test func aPeerHoldingLaterOwnWorkIsNoticed() throws {
        #expect(try round(local: [(me, 3)], peerHas: [(me, 5)]).peerHoldsLaterWork(of: me))
        #expect(try !round(local: [(me, 5)], peerHas: [(me, 5)]).peerHoldsLaterWork(of: me))
    }

    @Test func theStatusSetsWhatTheRoundExpectsToMove() throws {
        let r = try round(local: [(me, 10), (other, 2)], peerHas: [(me, 4), (peer, 6), (other, 5)])
        #expect(r.expectedReceive == 9, "6 of the peer's and 3 of the other's")
        #expect(r.expectedSend == 6)
    }

    @Test func aPulledHeaderDecidesRecoveryForksOrApply() {
        #expect(
            SyncRound.judge(ownCheckedAt: 4, ownDiffers: true, forksChecked: true, forks: [other], recovered: false)
                == .recoverOwnHistory(differsAt: 4))
        #expect(SyncRound.judge(ownCheckedAt: 4, ownDiffers: true, forksChecked: false, forks: nil, recovered: true) == .stillDiffersAfterRecovery)
        // An answer to a check the round did not make is not believed.
        #expect(SyncRound.judge(ownCheckedAt: nil, ownDiffers: true, forksChecked: false, forks: [other], recovered: false) == .apply)
        #expect(SyncRound.judge(ownCheckedAt: 4, ownDiffers: false, forksChecked: true, forks: [other], recovered: false) == .examineForks([other]))
        #expect(SyncRound.judge(ownCheckedAt: 4, ownDiffers: false, forksChecked: true, forks: [], recovered: false) == .apply)
        #expect(SyncRound.judge(ownCheckedAt: nil, ownDiffers: nil, forksChecked: false, forks: nil, recovered: false) == .apply)
    }

    @Test func theNextPullAsksPastWhatTheBatchBrings() {
        let since = vector([(me, 3), (peer, 10)])
        let hlc = Timestamp(millis: 1, counter: 0, node: peer)
        let change = Change.author("a")
        let batch = [
            Transaction(origin: peer, seq: 11, hlc: hlc, changes: [change]), Transaction(origin: peer, seq: 12, hlc: hlc, changes: [change]),
            Transaction(origin: other, seq: 1, hlc: Timestamp(millis: 1, counter: 0, node: other), changes: [change]),
            // Already held here: does not move the vector back.
            Transaction(origin: me, seq: 2, hlc: Timestamp(millis: 1, counter: 0, node: me), changes: [change]),
        ]
        #expect(SyncRound.vector(since, after: batch) == vector([(me, 3), (peer, 12), (other, 1)]))
    }

    @Test func aRoundEndsShortOnlyWhenThePeerNeitherTookNorHoldsTheRest() throws {
        var r = try round(local: [(me, 5)], peerHas: [(me, 2)])
        r.pulled(count: 0, more: false, localVector: vector([(me, 5)]))
        r.pushed(count: 3, peerVector: vector([(me, 2)]))
        #expect(r.endedShort(heldByPeer: 0))
        #expect(!r.endedShort(heldByPeer: 3), "held there until HQ approves this node")
        var done = try round(local: [(me, 5)], peerHas: [(me, 2)])
        done.pulled(count: 0, more: false, localVector: vector([(me, 5)]))
        done.pushed(count: 3, peerVector: vector([(me, 5)]))
        #expect(!done.endedShort(heldByPeer: 0))
    }

    @Test func underATrustAnchorANetworkPeersWordNeedsAnAuthenticatedAnswer() {
        let anchored = SyncRound.Belief(underAnchor: true, overNetwork: true)
        #expect(!anchored.takesRejections(answerSigned: false))
        #expect(anchored.takesRejections(answerSigned: true))
        #expect(!anchored.takesPushRefusals(knowsItsApproval: false))
        #expect(anchored.takesPushRefusals(knowsItsApproval: true))
        for belief in [SyncRound.Belief(underAnchor: false, overNetwork: true), SyncRound.Belief(underAnchor: true, overNetwork: false)] {
            #expect(belief.takesRejections(answerSigned: false) && belief.takesPushRefusals(knowsItsApproval: false))
        }
    }
}
