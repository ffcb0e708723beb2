import Foundation
import Logging
import SyncProtocol

/// The attached files of a sync round, moved after its records: the files the peer lacks and
/// this node holds are sent, then the files this node lacks are fetched, each a part at a time
/// from where its received part ends (a cut transfer resumes; nothing received is sent again).
/// A file is kept only once all of it hashes to its name; one that does not is thrown away and
/// asked for again at the next round. The records are never held up: the round's records are in
/// before this starts, and it stops at its time budget, leaving the rest to the next round.
public struct AttachmentTransfer: Sendable {
    /// What one transfer did.
    public struct Outcome: Sendable, Equatable {
        /// Files completed at the peer, and here.
        public var sent = 0
        public var received = 0
        /// Files whose bytes did not match their name (thrown away; asked for again next round).
        public var damaged = 0
        /// Files the peer would not take (past its limits or its disk's room).
        public var refused = 0
        public var bytes = 0
        /// Files this node's records name that it still lacks.
        public var waiting = 0
        /// Why the transfer stopped early (the link, the peer), if it did.
        public var stopped: String?

        public init() {}
    }

    let store: Store
    let transport: any SyncTransport
    let budget: Duration
    let logger: Logger

    public init(store: Store, transport: any SyncTransport, budget: Duration = .seconds(120), logger: Logger = Logger(label: "syncnode.sync")) {
        self.store = store
        self.transport = transport
        self.budget = budget
        self.logger = logger
    }

    public func run() async -> Outcome {
        var outcome = Outcome()
        let deadline = ContinuousClock.now + budget
        let store = self.store
        var missing: [AttachmentInfo] = []
        do {
            // What this node lacks, read once (sending changes nothing of it), off the cooperative pool.
            missing = try await Self.disk { () throws(SyncNodeError) in
                store.sweepAttachmentLeftovers()
                return try store.missingAttachments()
            }
            try await send(&outcome, until: deadline)
            try await fetch(missing, &outcome, until: deadline)
        } catch {
            outcome.stopped = error.message
            logger.info("attached files: transfer stopped", metadata: ["sync.peer": "\(transport.peerName)", "sync.error": "\(error.message)"])
        }
        outcome.waiting = max(0, missing.count - outcome.received)
        return outcome
    }

    /// Sends the files the peer lacks that are held here.
    private func send(_ outcome: inout Outcome, until deadline: ContinuousClock.Instant) async throws(SyncNodeError) {
        let missing: AttachmentsMissing
        do {
            missing = try await transport.attachmentsMissing()
        } catch  where error.code == .notFound {
            return
        }
        let files = store.files
        for file in missing.files where files.size(file.sha256) == file.bytes {
            do {
                try await sendOne(file, &outcome, until: deadline)
            } catch  where error.code == .peerRefused || error.code == .notFound {
                // The peer will not take this one (past its limits, its disk, named no longer): the next.
                outcome.refused += 1
                logger.info(
                    "attached file not taken by the peer", metadata: ["sync.peer": "\(transport.peerName)", "sync.error": "\(error.message)"])
            }
        }
    }

    /// Sends one file from where the peer's received part ends, until it is complete there.
    private func sendOne(_ file: AttachmentsMissing.File, _ outcome: inout Outcome, until deadline: ContinuousClock.Instant)
        async throws(SyncNodeError)
    {
        let files = store.files
        var offset = min(max(0, file.have), file.bytes)
        var restarts = 0
        while ContinuousClock.now < deadline {
            let from = offset
            let part = try await Self.disk { () throws(SyncNodeError) in
                try files.read(file.sha256, offset: from, maxBytes: SyncService.attachmentPartBytes)
            }
            let receipt = try await transport.uploadAttachment(AttachmentPart(sha256: file.sha256, offset: offset), bytes: part)
            outcome.bytes += part.count
            if receipt.complete {
                outcome.sent += 1
                return
            }
            if receipt.damaged {
                // Sent whole and not what its name says: this node's copy may be the damaged one.
                outcome.damaged += 1
                restarts += 1
                let sha = file.sha256
                guard restarts < 2, try await Self.disk({ () throws(SyncNodeError) in files.verified(sha) }) else { return }
            }
            guard receipt.have != offset || !part.isEmpty else { return }
            offset = receipt.have
        }
    }

    /// Fetches the files this node lacks from the peer.
    private func fetch(_ missing: [AttachmentInfo], _ outcome: inout Outcome, until deadline: ContinuousClock.Instant) async throws(SyncNodeError) {
        let files = store.files
        for file in missing {
            guard files.hasRoom(for: file.bytes) else {
                throw SyncNodeError(.diskFull, "this node's disk is nearly full: attached files are not fetched until space is freed")
            }
            var offset = files.partialSize(file.sha256)
            while ContinuousClock.now < deadline {
                let part: [UInt8]
                do {
                    part = try await transport.fetchAttachment(
                        AttachmentFetch(sha256: file.sha256, offset: offset, maxBytes: SyncService.attachmentPartBytes))
                } catch  where error.code == .notFound {
                    break  // the peer lacks it too
                }
                guard !part.isEmpty else {
                    // The peer's copy is shorter than the record says: not the file its name says.
                    outcome.damaged += 1
                    break
                }
                outcome.bytes += part.count
                let at = offset
                let received = try await Self.disk { () throws(SyncNodeError) in
                    try files.receive(file.sha256, expectedBytes: file.bytes, offset: at, chunk: part)
                }
                switch received {
                case .partial(let have): offset = have
                case .complete: outcome.received += 1
                case .damaged:
                    outcome.damaged += 1
                    logger.warning(
                        "attached file damaged on the way: thrown away, fetched again at the next round",
                        metadata: ["sync.peer": "\(transport.peerName)", "attachment.sha256": "\(file.sha256)"])
                case .busy: break
                }
                if case .partial = received { continue }
                break
            }
        }
    }

    /// File work on `BlockingWork`'s threads, off the cooperative pool.
    private static func disk<T: Sendable>(_ work: @escaping @Sendable () throws(SyncNodeError) -> T) async throws(SyncNodeError) -> T {
        do {
            return try await BlockingWork.run { () throws -> T in try work() }
        } catch let error as SyncNodeError {
            throw error
        } catch {
            throw SyncNodeError(.busy, "this node is too busy to store attached files right now (\(error)); the next round retries")
        }
    }
}
