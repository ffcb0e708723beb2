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
    /// How long a round may spend on attached files after its records (0: none), the rest
    /// left to the next round (`AttachmentTransfer`).
    public var attachmentSeconds = 120

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
    /// Transactions received from the peer that this node refused (policy, revocation).
    public var refusedHere = 0
    /// Transactions received from the peer that were applied here (not already held, held back or refused).
    public var applied = 0
    /// Copies received from the peer that were turned away (unsigned, altered).
    public var turnedAway = 0
    /// This node's history as recovered from the peer (it had lost part of it), if it had to be.
    public var recovery: RecoveryReport?
    /// This node's disk was too full to store what the peer sent; its own work was still pushed.
    public var pullSkipped = false
    /// The attached files moved after the records, when the round moved any.
    public var attachments: AttachmentTransfer.Outcome?
}

/// Progress during a round, for a progress line or a log line.
public struct SyncProgress: Sendable {
    public var received: Int
    public var sent: Int
    public var wireBytes: Int
    /// What the round expects to move, from the two vectors at its start (the peer's status):
    /// estimates, since a peer may refuse or hold some, and may receive more meanwhile.
    public var expectedReceive = 0
    public var expectedSend = 0
    /// Seconds since the round started.
    public var seconds: Double = 0

    public init(received: Int, sent: Int, wireBytes: Int) {
        self.received = received
        self.sent = sent
        self.wireBytes = wireBytes
    }

    /// "received 1200 of 5000 transactions, sent 0 of 0, 3.2 MB, 850/s, about 5 s left".
    public var description: String {
        let toReceive = max(expectedReceive, received)
        let toSend = max(expectedSend, sent)
        return "received \(received) of \(toReceive) transactions, sent \(sent) of \(toSend), \(ByteText.describe(wireBytes))"
            + WorkRate.describe(done: received + sent, total: toReceive + toSend, seconds: seconds)
    }
}

/// Rate and time left of long work, for progress lines: ", 850/s, about 5 s left" (nothing in
/// the first second, when a rate means little).
public enum WorkRate {
    public static func describe(done: Int, total: Int, seconds: Double) -> String {
        guard seconds >= 1, done > 0 else { return "" }
        let rate = Double(done) / seconds
        var text = ", \(Int(rate.rounded()))/s"
        let left = Double(max(0, total - done)) / rate
        if left >= 1 { text += ", about \(DurationText.describe(millis: UInt64(left * 1000))) left" }
        return text
    }
}

/// Sizes for people: 812 B, 3.2 kB, 41.0 MB.
public enum ByteText {
    public static func describe(_ bytes: Int) -> String {
        if bytes < 1000 { return "\(bytes) B" }
        if bytes < 1_000_000 { return String(format: "%.1f kB", Double(bytes) / 1000) }
        if bytes < 1_000_000_000 { return String(format: "%.1f MB", Double(bytes) / 1_000_000) }
        return String(format: "%.2f GB", Double(bytes) / 1_000_000_000)
    }
}

/// Drives one sync round with one peer: runs the pure `SyncRound` state machine, moving batches
/// through a transport and applying them to the store.
public struct Syncer: Sendable {
    /// For a process that syncs and then ends (the `sync` command): its storage work and
    /// transfers run on the calling threads, as nothing else on its cooperative threads must keep
    /// answering. `serve` keeps its 32 storage and 16 transfer threads; 100 offices syncing at
    /// once each started all 48 for nothing, and each hop to them waited to be scheduled (P6,
    /// docs/PERFORMANCE.md). Call before the first round.
    public static func configureForOneShotProcess() {
        BlockingWork.configure(threads: 0)
        CurlClient.configure(transferThreads: 0)
    }

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
            var summary = try await round(RoundStart(progress: progress, started: started, bookkeepingKey: bookkeepingKey))
            if let key = bookkeepingKey {
                try? store.recordSync(
                    key,
                    .success(
                        peer: summary.peer, vector: summary.peerVector, skewMillis: summary.skewMillis, sent: summary.sent, received: summary.received
                    ))
            }
            let moved = summary.received + summary.sent + summary.refused + summary.refusedHere + summary.turnedAway > 0
            // A round that found nothing to exchange is not news: quiet when idle.
            logger.log(
                level: moved ? .info : .debug,
                "sync round finished",
                metadata: [
                    "sync.peer": "\(transport.peerName)", "sync.received": .stringConvertible(summary.received),
                    "sync.sent": .stringConvertible(summary.sent),
                    "sync.bytes": .stringConvertible(summary.wireBytes),
                    "sync.seconds": .stringConvertible((summary.seconds * 1000).rounded() / 1000),
                ])
            // The round's records are recorded and logged first; the files that follow never hold them back.
            if limits.attachmentSeconds > 0 {
                summary.attachments = await AttachmentTransfer(
                    store: store, transport: transport, budget: .seconds(limits.attachmentSeconds), logger: logger
                ).run()
            }
            return summary
        } catch {
            if let key = bookkeepingKey {
                try? store.recordSync(key, .failure(message: error.message))
                if let skew = error.peerClockSkewMillis { try? store.recordSkew(key, skew) }
            }
            // Whether a failure is news (the first, a new reason) is for the caller to say.
            logger.debug("sync round failed", metadata: ["sync.peer": "\(transport.peerName)", "sync.error": "\(error.message)"])
            throw error
        }
    }

    /// What one round keeps beside the pure machine: counts for its summary, the checks its
    /// first pull carries, and the batch fetched ahead.
    private struct RoundState {
        var machine: SyncRound
        /// The peer's name in the registry: its answers are signed (`AnswerCheck`), so the
        /// status names the node that answers; what it calls itself is not believed.
        var peerLabel: String
        var wireBytes = 0
        var refusedHere = 0
        var refusedByMe = 0
        var appliedHere = 0
        var turnedAway = 0
        var pullSkipped = false
        var heldByPeer = 0
        var ownCheck: PullRequest.OwnCheck?
        var forkChecks: [PullRequest.ForkCheck]?
        var rejectionsTaken = false
        var prefetched: (since: VersionVector, task: Task<Result<PulledBatch, SyncNodeError>, Never>)?
    }

    /// How one round began: set again when it starts over after a recovery or a fork examination.
    private struct RoundStart {
        let progress: (@Sendable (SyncProgress) -> Void)?
        let started: Date
        let bookkeepingKey: String?
        var recovery: RecoveryReport?
        var forksExamined = false
    }

    /// What a pull step leaves the round to do.
    private enum PullStep {
        case continued
        case startOver(RoundStart)
    }

    private var me: PeerIdentity { PeerIdentity(node: store.info.nodeID, site: store.info.site, label: store.info.label) }

    private var belief: SyncRound.Belief {
        SyncRound.Belief(underAnchor: store.info.trustAnchor != nil, overNetwork: transport is HTTPTransport)
    }

    private func round(_ start: RoundStart) async throws(SyncNodeError) -> SyncSummary {
        // Held work whose origin the registry learned of by now (an earlier round cut short).
        _ = try await storage { store throws(SyncNodeError) in try store.releaseHeldWork() }
        var state = RoundState(
            machine: SyncRound(localVector: try store.vector(), pullVector: try store.pullVector(), maxDriftMillis: limits.maxDriftMillis),
            peerLabel: transport.peerName)
        defer { state.prefetched?.task.cancel() }
        while true {
            switch state.machine.next {
            case .fetchStatus:
                try await fetchStatus(&state, start)
            case .pull(let since):
                if case .startOver(let again) = try await pull(since, &state, start) { return try await round(again) }
            case .push(let peerHas):
                try await push(peerHas, &state)
            case .finished:
                return try await finish(state, start)
            }
            var p = SyncProgress(received: state.machine.transactionsReceived, sent: state.machine.transactionsSent, wireBytes: state.wireBytes)
            p.expectedReceive = state.machine.expectedReceive
            p.expectedSend = state.machine.expectedSend
            p.seconds = Date().timeIntervalSince(start.started)
            start.progress?(p)
        }
    }

    private func fetchStatus(_ state: inout RoundState, _ start: RoundStart) async throws(SyncNodeError) {
        let (status, bytes) = try await transport.status()
        state.wireBytes += bytes
        let now = store.clock.nowMillis()
        // Kept even when the round stops here: the evidence a wrong clock leaves for the warning
        // at the next local write (`Store.clockWarning`).
        if let key = start.bookkeepingKey { try? store.recordSkew(key, Int64(bitPattern: status.clock &- now)) }
        do {
            try state.machine.received(status: status, now: now)
        } catch {
            throw Self.describe(error, peer: transport.peerName, label: status.identity.label)
        }
        state.peerLabel = try store.registryLabel(of: status.identity.node) ?? status.identity.label
        // Does the peer hold this node's own work as this node does? A node restored from an
        // older copy numbers new work as the peer already holds other work.
        let own = store.info.nodeID
        if let shared = state.machine.sharedSeq(of: own), let digest = try store.digest(of: own, seq: shared) {
            state.ownCheck = PullRequest.OwnCheck(seq: shared, digest: digest)
        }
        // Does the peer hold every other origin's history as this node does (`Store+Forks`)?
        if !start.forksExamined {
            let checks = try store.forkChecks(peerVector: status.vector)
            state.forkChecks = checks.isEmpty ? nil : checks
        }
        if start.recovery == nil && state.machine.peerHoldsLaterWork(of: own) && state.ownCheck == nil {
            logger.notice(
                "the peer holds later transactions of this node than it has; taking them back", metadata: ["sync.peer": "\(transport.peerName)"])
        }
    }

    private func pull(_ since: VersionVector, _ state: inout RoundState, _ start: RoundStart) async throws(SyncNodeError) -> PullStep {
        let batch: PulledBatch
        if let ahead = state.prefetched, ahead.since == since {
            batch = try await Self.result(of: ahead.task)
        } else {
            state.prefetched?.task.cancel()
            batch = try await transport.pull(
                PullRequest(
                    from: me, vector: since, maxTransactions: limits.maxTransactions, maxBytes: limits.maxBytes, ownCheck: state.ownCheck,
                    forkChecks: state.forkChecks))
        }
        state.prefetched = nil
        let verdict = SyncRound.judge(
            ownCheckedAt: state.ownCheck?.seq, ownDiffers: batch.header.ownDiffers, forksChecked: state.forkChecks != nil,
            forks: batch.header.forks, recovered: start.recovery != nil)
        var again = start
        switch verdict {
        case .stillDiffersAfterRecovery:
            throw SyncNodeError(
                .protocolViolation, "\(transport.peerName) still holds other work under this node's numbers after a recovery; see its log")
        case .recoverOwnHistory(let seq):
            again.recovery = try await recoverHistory(me: me, differsAt: seq, peerVector: state.machine.peerVector)
            return .startOver(again)
        case .examineForks(let forked):
            // Once a round: a fork with a peer that keeps the other history (a county, both
            // waiting for HQ's word) is found again in the next round, not this one.
            try await examineForks(forked, me: me, checks: state.forkChecks ?? [], peerVector: state.machine.peerVector)
            again.forksExamined = true
            return .startOver(again)
        case .apply:
            break
        }
        state.ownCheck = nil
        state.forkChecks = nil
        state.wireBytes += batch.wireBytes
        if batch.header.more {
            // Ask for the next batch while this one is applied. If the apply leaves another
            // vector (held transactions count, see `pullVector`), that batch is dropped and pulled again.
            let next = SyncRound.vector(since, after: batch.transactions.lazy.map(\.transaction))
            state.prefetched = (
                next, prefetch(PullRequest(from: me, vector: next, maxTransactions: limits.maxTransactions, maxBytes: limits.maxBytes))
            )
        }
        let transactions = vouched(batch)
        let applied: ApplyReport
        do {
            let source = transport.peerName
            applied = try await storage { store throws(SyncNodeError) in try store.apply(transactions, source: source) }
        } catch  where error.code == .diskFull {
            // Nothing more can be stored here, but this node's own work can still leave.
            logger.warning("disk full: pushing this node's work without pulling", metadata: ["sync.peer": "\(transport.peerName)"])
            state.pullSkipped = true
            state.machine.abandonPull()
            return .continued
        }
        state.appliedHere += applied.applied
        state.refusedByMe += applied.refused.filter { $0.permanent != false }.count
        state.turnedAway += applied.refused.filter { $0.permanent == false }.count
        if !state.rejectionsTaken && belief.takesRejections(answerSigned: batch.answeredBy != nil) {
            // The answering node's word on this node's work, whole: it replaces what that node
            // said before (and nobody else's).
            let (by, listed) = (state.peerLabel, batch.header.rejections ?? [])
            try await storage { store throws(SyncNodeError) in try store.replaceRejections(by: by, with: listed) }
            state.rejectionsTaken = true
        }
        state.machine.pulled(
            count: batch.transactions.count, more: batch.header.more, localVector: try store.vector(), pullVector: try store.pullVector())
        return .continued
    }

    private func prefetch(_ request: PullRequest) -> Task<Result<PulledBatch, SyncNodeError>, Never> {
        let transport = self.transport
        return Task { () async -> Result<PulledBatch, SyncNodeError> in
            do {
                return .success(try await transport.pull(request))
            } catch let error as SyncNodeError {
                return .failure(error)
            } catch {
                return .failure(SyncNodeError(.unreachable, "\(error)"))
            }
        }
    }

    private func push(_ peerHas: VersionVector, _ state: inout RoundState) async throws(SyncNodeError) {
        let limits = self.limits
        let outgoing = try await storage { store throws(SyncNodeError) in
            try store.frames(missingFrom: peerHas, maxTransactions: limits.maxTransactions, maxBytes: limits.maxBytes)
        }
        let (answer, bytes) = try await transport.push(try batchBody(outgoing.frames, more: outgoing.more, me: me))
        state.wireBytes += bytes
        // A peer speaks for itself: only what it says of this node's own work is recorded.
        let believed = belief.takesPushRefusals(knowsItsApproval: store.knowsItsApproval)
        let peerLabel = state.peerLabel
        let mine = answer.refused.filter { believed && $0.origin == store.info.nodeID && $0.permanent != false }.map {
            Refusal(origin: $0.origin, seq: $0.seq, reason: $0.reason, refusedBy: peerLabel, permanent: true)
        }
        try await storage { store throws(SyncNodeError) in try store.recordRejections(mine) }
        state.refusedHere += mine.count
        state.heldByPeer = answer.held
        state.machine.pushed(count: outgoing.frames.count, peerVector: answer.vector)
    }

    private func finish(_ state: RoundState, _ start: RoundStart) async throws(SyncNodeError) -> SyncSummary {
        let machine = state.machine
        guard let peer = machine.peer else { throw SyncNodeError(.protocolViolation, "the round ended without a peer status") }
        if machine.endedShort(heldByPeer: state.heldByPeer) {
            throw SyncNodeError(.peerRefused, "\(transport.peerName) stopped accepting transactions before holding everything; see its log")
        }
        let forkBytes = try await reportForks(to: peer, peerVector: machine.peerVector)
        return SyncSummary(
            peer: peer, received: machine.transactionsReceived, sent: machine.transactionsSent, batchesReceived: machine.batchesReceived,
            batchesSent: machine.batchesSent, wireBytes: state.wireBytes + forkBytes, seconds: Date().timeIntervalSince(start.started),
            skewMillis: machine.skewMillis, refused: state.refusedHere, heldByPeer: state.heldByPeer, peerVector: machine.peerVector,
            refusedHere: state.refusedByMe, applied: state.appliedHere, turnedAway: state.turnedAway, recovery: start.recovery,
            pullSkipped: state.pullSkipped)
    }

    /// The peer holds other work than this node under this node's own number `differsAt`: this
    /// node lost part of its history (restored from an older copy, a damaged file) and numbered
    /// new work as the peer already holds. Finds the first number where the two differ, takes the
    /// peer's copies of this node's transactions from there, and records this node's other work
    /// again after them (`Store.recoverOwnHistory`): nothing either side holds is lost.
    private func recoverHistory(me: PeerIdentity, differsAt: UInt64, peerVector: VersionVector) async throws(SyncNodeError) -> RecoveryReport {
        let own = store.info.nodeID
        func differs(_ seq: UInt64) async throws(SyncNodeError) -> Bool {
            guard let digest = try store.digest(of: own, seq: seq) else { return true }
            let answer = try await transport.pull(
                PullRequest(from: me, vector: peerVector, maxTransactions: 1, maxBytes: 1, ownCheck: .init(seq: seq, digest: digest)))
            return answer.header.ownDiffers == true
        }
        var low: UInt64 = 1
        var high = differsAt
        while low < high {
            let mid = low + (high - low) / 2
            if try await differs(mid) { high = mid } else { low = mid + 1 }
        }
        // Ask for this node's own transactions only: every other origin at its largest.
        var since = VersionVector()
        for origin in Set(peerVector.entries.keys).union(try store.vector().entries.keys) where origin != own { since[origin] = .max }
        since[own] = low - 1
        var adopted: [ReceivedTransaction] = []
        while since[own] < peerVector[own] {
            let batch = try await transport.pull(
                PullRequest(from: me, vector: since, maxTransactions: limits.maxTransactions, maxBytes: limits.maxBytes))
            let mine = batch.transactions.filter { $0.transaction.origin == own && $0.transaction.seq > since[own] }
            guard let last = mine.last?.transaction.seq else { break }
            adopted += mine
            since[own] = last
        }
        // Only what the peer shows, signed by this node's key, may replace this node's history.
        guard adopted.first?.transaction.seq == low else {
            throw SyncNodeError(
                .protocolViolation,
                "\(transport.peerName) says it holds other work under this node's transaction \(low), but did not send it; nothing was changed")
        }
        let report = try await storage { [adopted, low] store throws(SyncNodeError) in try store.recoverOwnHistory(from: low, adopting: adopted) }
        logger.warning(
            "this node had lost part of its history; recovered it from the peer",
            metadata: [
                "sync.peer": "\(transport.peerName)", "sync.adopted": .stringConvertible(report.adopted),
                "sync.reissued": .stringConvertible(report.reissued),
            ])
        return report
    }

    /// The batch's transactions, marked with HQ's word when HQ vouched for them (its signature
    /// over the frames, with its verdict on each).
    private func vouched(_ batch: PulledBatch) -> [ReceivedTransaction] {
        var transactions = batch.transactions
        if store.acceptsVouch(batch) {
            let refused = Dictionary((batch.header.refusedFrames ?? []).map { ($0.index, $0.reason) }) { first, _ in first }
            for i in transactions.indices {
                transactions[i].vouched = true
                transactions[i].anchorVerdict = refused[i].map { .refused($0) } ?? .accepted
            }
        }
        return transactions
    }

    /// The peer holds another history of each of `forked` than this node does: finds, for each,
    /// the first seq where the two part (one check per step of a binary search), and pulls the
    /// peer's copies from there. The apply keeps them as evidence, or, when they carry HQ's word,
    /// takes them in place of this node's (`Store.examineHeldCopy`). HQ, which never gives up its
    /// history, pushes its own copies from there, which the peer takes on HQ's word.
    private func examineForks(_ forked: [NodeID], me: PeerIdentity, checks: [PullRequest.ForkCheck], peerVector: VersionVector)
        async throws(SyncNodeError)
    {
        let checked = Dictionary(checks.map { ($0.origin, $0.seq) }) { first, _ in first }
        for origin in forked.prefix(8) {
            guard let upTo = checked[origin] else { continue }
            func differs(_ seq: UInt64) async throws(SyncNodeError) -> Bool {
                guard let check = try store.forkCheck(origin: origin, seq: seq) else { return true }
                let answer = try await transport.pull(
                    PullRequest(from: me, vector: peerVector, maxTransactions: 1, maxBytes: 1, forkChecks: [check]))
                return answer.header.forks?.contains(origin) == true
            }
            var low: UInt64 = 1
            var high = upTo
            while low < high {
                let mid = low + (high - low) / 2
                if try await differs(mid) { high = mid } else { low = mid + 1 }
            }
            logger.warning(
                "node \(origin.short) signed two histories: the peer holds another transaction under its number \(low)",
                metadata: ["sync.peer": "\(transport.peerName)", "sync.origin": "\(origin.hex)", "sync.seq": .stringConvertible(low)])
            // The peer's copies of this origin from the fork on (every other origin at its largest).
            var since = VersionVector()
            for other in Set(peerVector.entries.keys).union(try store.vector().entries.keys) where other != origin { since[other] = .max }
            since[origin] = low - 1
            while since[origin] < peerVector[origin] {
                let batch = try await transport.pull(
                    PullRequest(from: me, vector: since, maxTransactions: limits.maxTransactions, maxBytes: limits.maxBytes))
                let theirs = vouched(batch).filter { $0.transaction.origin == origin && $0.transaction.seq > since[origin] }
                guard let last = theirs.last?.transaction.seq else { break }
                let source = transport.peerName
                _ = try await storage { store throws(SyncNodeError) in try store.apply(theirs, source: source) }
                since[origin] = last
            }
            if store.isAnchor {
                var peerHas = VersionVector()
                for other in try store.vector().entries.keys where other != origin { peerHas[other] = .max }
                peerHas[origin] = low - 1
                while true {
                    let (limits, missing) = (self.limits, peerHas)
                    let outgoing = try await storage { store throws(SyncNodeError) in
                        try store.frames(missingFrom: missing, maxTransactions: limits.maxTransactions, maxBytes: limits.maxBytes)
                    }
                    guard !outgoing.frames.isEmpty else { break }
                    _ = try await transport.push(try batchBody(outgoing.frames, more: outgoing.more, me: me))
                    peerHas[origin] += UInt64(outgoing.frames.count)
                    if !outgoing.more { break }
                }
            }
        }
    }

    /// Copies that fork their origin's history, which HQ has not confirmed holding: pushed to HQ
    /// (they are evidence there; HQ keeps the history it accepted first). Returns the bytes sent.
    private func reportForks(to peer: PeerIdentity, peerVector: VersionVector) async throws(SyncNodeError) -> Int {
        guard !store.isAnchor else { return 0 }
        let evidence = try await storage { store throws(SyncNodeError) in try store.unreportedForkFrames(peerHas: peerVector) }
        guard !evidence.frames.isEmpty, try store.anchorNode() == peer.node else { return 0 }
        let (_, bytes) = try await transport.push(try batchBody(evidence.frames, more: false, me: me))
        try store.markForkCopiesReported(evidence.keys)
        return bytes
    }

    /// Storage work of a round, on `BlockingWork`'s threads: under `serve` a round runs on Swift's
    /// cooperative pool (as many threads as cores), which an apply of thousands of transactions, or
    /// reading them to push, must not hold.
    private func storage<T: Sendable>(_ work: @escaping @Sendable (Store) throws(SyncNodeError) -> T) async throws(SyncNodeError) -> T {
        let store = self.store
        do {
            return try await BlockingWork.run { () throws -> T in try work(store) }
        } catch let error as SyncNodeError {
            throw error
        } catch {
            throw SyncNodeError(.busy, "this node is too busy to store the round's work right now (\(error)); the next round retries")
        }
    }

    private func batchBody(_ frames: [[UInt8]], more: Bool, me: PeerIdentity) throws(SyncNodeError) -> [UInt8] {
        let header = BatchHeader(from: me, count: frames.count, more: more, clock: store.clock.nowMillis())
        do {
            return BatchCodec.encode(header: try WireCodec.encodeMessage(header), frames: frames)
        } catch {
            throw SyncNodeError(.invalidInput, "cannot encode a batch")
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
