import Foundation
import Logging
import SyncProtocol

/// Batch limits for a sync round.
public struct SyncLimits: Sendable {
    public var maxTransactions = 500
    /// Transaction bytes per batch. A received batch is decoded whole and the next one is fetched
    /// while it is applied, so this bounds memory: 1 MiB of binary transactions is about 14,000
    /// records of six fields (a fresh node syncing 1,000-record transactions peaks at ~83 MB,
    /// docs/PERFORMANCE.md P4).
    public var maxBytes = 1024 * 1024
    public var maxDriftMillis = HybridClock.defaultMaxDriftMillis

    public init() {}
}

/// What a completed round did.
public struct SyncSummary: Sendable, Equatable {
    public var peer: PeerIdentity
    public var received: Int
    public var sent: Int
    public var batchesReceived: Int
    public var batchesSent: Int
    public var wireBytes: Int
    public var seconds: Double
    public var skewMillis: Int64
    /// Transactions of this node the peer refused in this round (see `syncnode rejections`).
    public var refused: Int
    /// Transactions the peer holds until its registry knows their origin (this node not yet approved there).
    public var heldByPeer: Int
    /// The peer's vector as it last confirmed it (its status, or its answer to the last push).
    public var peerVector: VersionVector
}

/// Progress during a round, for a progress line.
public struct SyncProgress: Sendable {
    public var received: Int
    public var sent: Int
    public var wireBytes: Int
}

/// Drives one sync round with one peer: runs the pure `SyncRound` state machine, moving batches
/// through a transport and applying them to the store.
public struct Syncer: Sendable {
    public let store: Store
    public let transport: any SyncTransport
    public let limits: SyncLimits
    let logger: Logger

    public init(store: Store, transport: any SyncTransport, limits: SyncLimits = SyncLimits(), logger: Logger = Logger(label: "syncnode.sync")) {
        self.store = store
        self.transport = transport
        self.limits = limits
        self.logger = logger
    }

    /// Runs one round. Records the outcome under `bookkeepingKey` (the peer URL) when given.
    public func run(bookkeepingKey: String? = nil, progress: (@Sendable (SyncProgress) -> Void)? = nil) async throws(SyncNodeError) -> SyncSummary {
        let started = Date()
        do {
            let summary = try await round(progress: progress, started: started)
            if let key = bookkeepingKey {
                try? store.recordSync(
                    key,
                    .success(
                        peer: summary.peer, vector: summary.peerVector, skewMillis: summary.skewMillis, sent: summary.sent, received: summary.received
                    ))
            }
            logger.info(
                "sync round finished",
                metadata: [
                    "sync.peer": "\(transport.peerName)", "sync.received": "\(summary.received)", "sync.sent": "\(summary.sent)",
                    "sync.bytes": "\(summary.wireBytes)",
                ])
            return summary
        } catch {
            if let key = bookkeepingKey { try? store.recordSync(key, .failure(message: error.message)) }
            logger.info("sync round failed", metadata: ["sync.peer": "\(transport.peerName)", "sync.error": "\(error.message)"])
            throw error
        }
    }

    private func round(progress: (@Sendable (SyncProgress) -> Void)?, started: Date) async throws(SyncNodeError) -> SyncSummary {
        var machine = SyncRound(localVector: try store.vector(), pullVector: try store.pullVector(), maxDriftMillis: limits.maxDriftMillis)
        let me = PeerIdentity(node: store.info.nodeID, site: store.info.site, label: store.info.label)
        var wireBytes = 0
        var refusedHere = 0
        var heldByPeer = 0
        var prefetched: (since: VersionVector, task: Task<Result<PulledBatch, SyncNodeError>, Never>)?
        defer { prefetched?.task.cancel() }
        while true {
            switch machine.next {
            case .fetchStatus:
                let (status, bytes) = try await transport.status()
                wireBytes += bytes
                do {
                    try machine.received(status: status, now: store.clock.nowMillis())
                } catch {
                    throw Self.describe(error, peer: transport.peerName, label: status.identity.label)
                }
            case .pull(let since):
                let batch: PulledBatch
                if let ahead = prefetched, ahead.since == since {
                    batch = try await Self.result(of: ahead.task)
                } else {
                    prefetched?.task.cancel()
                    batch = try await transport.pull(
                        PullRequest(from: me, vector: since, maxTransactions: limits.maxTransactions, maxBytes: limits.maxBytes))
                }
                prefetched = nil
                wireBytes += batch.wireBytes
                if batch.header.more {
                    // Ask for the next batch while this one is applied: the vector it will leave
                    // is known from its contents (held transactions count, see `pullVector`). If
                    // the apply leaves another one, the prefetched batch is dropped and pulled again.
                    var next = since
                    for item in batch.transactions where item.transaction.seq > next[item.transaction.origin] {
                        next[item.transaction.origin] = item.transaction.seq
                    }
                    let request = PullRequest(from: me, vector: next, maxTransactions: limits.maxTransactions, maxBytes: limits.maxBytes)
                    let transport = self.transport
                    prefetched = (
                        next,
                        Task { () async -> Result<PulledBatch, SyncNodeError> in
                            do {
                                return .success(try await transport.pull(request))
                            } catch let error as SyncNodeError {
                                return .failure(error)
                            } catch {
                                return .failure(SyncNodeError(.unreachable, "\(error)"))
                            }
                        }
                    )
                }
                var transactions = batch.transactions
                if store.acceptsVouch(batch) {
                    for i in transactions.indices { transactions[i].vouched = true }
                }
                _ = try store.apply(transactions)
                try store.recordRejections((batch.header.rejections ?? []).filter { $0.origin == store.info.nodeID })
                machine.pulled(
                    count: batch.transactions.count, more: batch.header.more, localVector: try store.vector(), pullVector: try store.pullVector())
                progress?(SyncProgress(received: machine.transactionsReceived, sent: machine.transactionsSent, wireBytes: wireBytes))
            case .push(let peerHas):
                let outgoing = try store.frames(missingFrom: peerHas, maxTransactions: limits.maxTransactions, maxBytes: limits.maxBytes)
                let header = BatchHeader(from: me, count: outgoing.frames.count, more: outgoing.more, clock: store.clock.nowMillis())
                let body: [UInt8]
                do {
                    body = BatchCodec.encode(header: try WireCodec.encodeMessage(header), frames: outgoing.frames)
                } catch {
                    throw SyncNodeError(.invalidInput, "cannot encode a batch")
                }
                let (answer, bytes) = try await transport.push(body)
                wireBytes += bytes
                // A peer speaks for itself: only what it says of this node's own work is recorded.
                let mine = answer.refused.filter { $0.origin == store.info.nodeID && $0.permanent != false }
                try store.recordRejections(mine)
                refusedHere += mine.count
                heldByPeer = answer.held
                machine.pushed(count: outgoing.frames.count, peerVector: answer.vector)
                progress?(SyncProgress(received: machine.transactionsReceived, sent: machine.transactionsSent, wireBytes: wireBytes))
            case .finished:
                guard let peer = machine.peer else { throw SyncNodeError(.protocolViolation, "the round ended without a peer status") }
                if !machine.isComplete && heldByPeer == 0 {
                    throw SyncNodeError(.peerRefused, "\(transport.peerName) stopped accepting transactions before holding everything; see its log")
                }
                return SyncSummary(
                    peer: peer, received: machine.transactionsReceived, sent: machine.transactionsSent, batchesReceived: machine.batchesReceived,
                    batchesSent: machine.batchesSent, wireBytes: wireBytes, seconds: Date().timeIntervalSince(started),
                    skewMillis: machine.skewMillis,
                    refused: refusedHere, heldByPeer: heldByPeer, peerVector: machine.peerVector)
            }
        }
    }

    private static func result(of task: Task<Result<PulledBatch, SyncNodeError>, Never>) async throws(SyncNodeError) -> PulledBatch {
        try await task.value.get()
    }

    static func describe(_ failure: SyncRound.Failure, peer: String, label: String) -> SyncNodeError {
        switch failure {
        case .clockSkew(_, let skew, let limit):
            let direction = skew > 0 ? "ahead of" : "behind"
            return SyncNodeError(
                .clockSkew,
                "node \(label) (\(peer))'s clock is \(DurationText.describe(millis: skew.magnitude)) \(direction) this node's; the limit is \(DurationText.describe(millis: limit)). Fix the clock that is wrong, then sync again"
            )
        case .protocolMismatch(_, let theirs):
            return SyncNodeError(
                .peerRefused, "\(label) (\(peer)) speaks protocol version \(theirs), this node \(WireCodec.protocolVersion); upgrade the older node")
        }
    }
}
