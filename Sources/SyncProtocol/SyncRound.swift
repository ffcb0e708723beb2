/// One sync round with one peer, as a pure state machine: it decides what to ask for and what to
/// send next from what the caller reports back; the caller moves the bytes and touches storage.
///
/// Order: fetch the peer's status (checking clock skew), pull until the peer has nothing more,
/// then push until the peer holds everything this node has. Progress is always derived from
/// vectors the other side confirmed, so a round cut at any point resumes without resending what
/// was acknowledged.
public struct SyncRound: Sendable {
    public enum Step: Equatable, Sendable {
        /// Ask the peer for its status.
        case fetchStatus
        /// Ask the peer for what a node with `since` lacks.
        case pull(since: VersionVector)
        /// Send the peer what a node with `peerHas` lacks.
        case push(peerHas: VersionVector)
        /// The round is complete.
        case finished
    }

    public enum Failure: Error, Equatable, Sendable {
        case clockSkew(peer: NodeID, skewMillis: Int64, maxDriftMillis: UInt64)
        case protocolMismatch(peer: NodeID, theirs: Int)
    }

    private enum Phase: Equatable, Sendable {
        case status, pulling, pushing, done
    }

    private var phase = Phase.status
    public private(set) var localVector: VersionVector
    /// What to pull past: the local vector plus transactions held here (waiting for the registry),
    /// so a peer does not send them again and again ahead of the approval they wait for.
    public private(set) var pullVector: VersionVector
    public private(set) var peerVector = VersionVector()
    public private(set) var peer: PeerIdentity?
    public let maxDriftMillis: UInt64

    public private(set) var transactionsReceived = 0
    public private(set) var transactionsSent = 0
    public private(set) var batchesReceived = 0
    public private(set) var batchesSent = 0
    /// Peer clock minus local clock, from the status exchange.
    public private(set) var skewMillis: Int64 = 0
    /// What the round expects to move, from the two vectors at the status exchange: estimates
    /// (a peer may refuse or hold some, and receive more meanwhile).
    public private(set) var expectedReceive = 0
    public private(set) var expectedSend = 0

    public init(localVector: VersionVector, pullVector: VersionVector? = nil, maxDriftMillis: UInt64 = HybridClock.defaultMaxDriftMillis) {
        self.localVector = localVector
        self.pullVector = pullVector ?? localVector
        self.maxDriftMillis = maxDriftMillis
    }

    public var next: Step {
        switch phase {
        case .status: return .fetchStatus
        case .pulling: return .pull(since: pullVector)
        case .pushing: return localVector.surplus(over: peerVector).isEmpty ? .finished : .push(peerHas: peerVector)
        case .done: return .finished
        }
    }

    /// The peer's status arrived at local wall-clock time `now`.
    public mutating func received(status: StatusMessage, now: UInt64) throws(Failure) {
        guard status.protocolVersion == WireCodec.protocolVersion else {
            throw .protocolMismatch(peer: status.identity.node, theirs: status.protocolVersion)
        }
        let skew = Int64(bitPattern: status.clock &- now)
        skewMillis = skew
        guard skew.magnitude <= maxDriftMillis else {
            throw .clockSkew(peer: status.identity.node, skewMillis: skew, maxDriftMillis: maxDriftMillis)
        }
        peer = status.identity
        peerVector = status.vector
        expectedReceive = Int(clamping: status.vector.count(beyond: pullVector))
        expectedSend = Int(clamping: localVector.count(beyond: status.vector))
        phase = .pulling
    }

    /// After the status: the last transaction of `node` (this node) that both sides hold, whose
    /// copies the round compares (`PullRequest.ownCheck`); nil when they share none.
    public func sharedSeq(of node: NodeID) -> UInt64? {
        let shared = min(peerVector[node], localVector[node])
        return shared > 0 ? shared : nil
    }

    /// After the status: the peer holds later work of `node` (this node) than this node does.
    public func peerHoldsLaterWork(of node: NodeID) -> Bool {
        peerVector[node] > localVector[node]
    }

    /// What a pulled batch decides before it is applied.
    public enum PulledVerdict: Equatable, Sendable {
        /// Apply it.
        case apply
        /// The peer holds other work of this node than this node at the compared seq: this node
        /// lost part of its history. Recover it, then start the round again.
        case recoverOwnHistory(differsAt: UInt64)
        /// The same after a recovery: the peer keeps saying so, and the round stops.
        case stillDiffersAfterRecovery
        /// The peer holds another history of these origins: examine them, then start again.
        case examineForks([NodeID])
    }

    /// Judges a pulled batch's header: `ownCheckedAt` is the seq the request compared (nil when
    /// it compared none), `forksChecked` whether it carried fork checks, `recovered` whether this
    /// round already recovered this node's history.
    public static func judge(
        ownCheckedAt: UInt64?, ownDiffers: Bool?, forksChecked: Bool, forks: [NodeID]?, recovered: Bool
    ) -> PulledVerdict {
        if let seq = ownCheckedAt, ownDiffers == true {
            return recovered ? .stillDiffersAfterRecovery : .recoverOwnHistory(differsAt: seq)
        }
        if forksChecked, let forks, !forks.isEmpty { return .examineForks(forks) }
        return .apply
    }

    /// The vector a node at `since` holds once it has `transactions` (a batch it pulled): what to
    /// ask for next while that batch is applied.
    public static func vector(_ since: VersionVector, after transactions: some Sequence<Transaction>) -> VersionVector {
        var next = since
        for transaction in transactions where transaction.seq > next[transaction.origin] {
            next[transaction.origin] = transaction.seq
        }
        return next
    }

    /// The round ended with the peer lacking work of this node that it neither took nor holds
    /// for approval: it stopped accepting, and the round failed.
    public func endedShort(heldByPeer: Int) -> Bool {
        !isComplete && heldByPeer == 0
    }

    /// Whose word a round takes. Under a trust anchor a peer reached over the network is believed
    /// only where its answer is authenticated; a node's own in-process peers always are.
    public struct Belief: Equatable, Sendable {
        public var underAnchor: Bool
        public var overNetwork: Bool

        public init(underAnchor: Bool, overNetwork: Bool) {
            self.underAnchor = underAnchor
            self.overNetwork = overNetwork
        }

        private var unconditional: Bool { !underAnchor || !overNetwork }

        /// The peer's list of this node's refused work, carried in a pull answer.
        public func takesRejections(answerSigned: Bool) -> Bool { unconditional || answerSigned }

        /// The refusals in the peer's answer to a push: taken once this node knows HQ approved it
        /// (its answers are checked then).
        public func takesPushRefusals(knowsItsApproval: Bool) -> Bool { unconditional || knowsItsApproval }
    }

    /// A pulled batch was applied; `localVector` is this node's vector after the commit and
    /// `pullVector` that vector with the transactions held here.
    public mutating func pulled(count: Int, more: Bool, localVector: VersionVector, pullVector: VersionVector? = nil) {
        let before = self.pullVector
        self.localVector = localVector
        self.pullVector = pullVector ?? localVector
        transactionsReceived += count
        batchesReceived += 1
        // Done when the peer has no more, or when a batch moved nothing (asking again would
        // bring the same batch back).
        if !more || count == 0 || self.pullVector == before { phase = .pushing }
    }

    /// This node could not store what it pulled (its disk is full): it still pushes its own work,
    /// so the peer holds it even while this node cannot take more.
    public mutating func abandonPull() {
        if phase == .pulling { phase = .pushing }
    }

    /// The peer acknowledged a pushed batch and reported its vector after applying it.
    public mutating func pushed(count: Int, peerVector: VersionVector) {
        transactionsSent += count
        batchesSent += 1
        let before = self.peerVector
        self.peerVector = peerVector
        if count == 0 || peerVector == before && !localVector.surplus(over: peerVector).isEmpty {
            // The peer made no progress: stop rather than loop.
            phase = .done
        }
    }

    /// True when the round ended with the peer holding everything this node has and vice versa.
    public var isComplete: Bool {
        next == .finished && localVector.surplus(over: peerVector).isEmpty
    }
}
