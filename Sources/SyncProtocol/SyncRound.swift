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
        phase = .pulling
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
