import Crypto
import Foundation
import GRDB
import SyncProtocol

/// What a recovery of this node's own history did.
public struct RecoveryReport: Sendable, Equatable {
    /// This node's transactions taken back from a peer (lost here, held there).
    public var adopted = 0
    /// Transactions of this node withdrawn (recorded here under numbers or clocks the network
    /// cannot take) and recorded again as new ones: their work is kept, under new numbers.
    public var reissued = 0

    public init(adopted: Int = 0, reissued: Int = 0) {
        self.adopted = adopted
        self.reissued = reissued
    }
}

extension Store {
    /// SHA-256 (hex) of the exact bytes of `origin`'s transaction `seq`, if this node holds it
    /// (not a refusal statement an older version believed, which left no bytes).
    public func digest(of origin: NodeID, seq: UInt64) throws(SyncNodeError) -> String? {
        try readNamed { db, interner in
            guard let ix = try interner.nodeIx(origin, db, create: false),
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT body, size FROM log WHERE origin = ? AND seq = ?"), arguments: [ix, Int64(seq)])
            else { return nil }
            let stored = row["body"] as Data
            guard !stored.isEmpty else { return nil }
            let body = try (row["size"] as Int64?).map { try Inflate().unpack(stored, size: Int($0)) } ?? [UInt8](stored)
            return Hex.string(SHA256.hash(data: body))
        }
    }

    /// Puts this node's own history right from `fromSeq` on: its transactions from there are
    /// withdrawn, `adopted` (this node's transactions `fromSeq...` as a peer holds them, signed by
    /// this node's key) take their place, the records are rebuilt, and the withdrawn work is
    /// recorded again as new transactions after them, each write keeping the version it replaced.
    /// All of it is one SQLite transaction: if any part fails (a withdrawn transaction the policy
    /// no longer allows, a full disk), nothing changes.
    ///
    /// - Parameter clockFloor: when set, the clock's high-water mark is lowered to this (the wall
    ///   clock was far ahead when the withdrawn transactions were made, and has been put right).
    public func recoverOwnHistory(from fromSeq: UInt64, adopting adopted: [ReceivedTransaction], clockFloor: UInt64? = nil) throws(SyncNodeError)
        -> RecoveryReport
    {
        guard fromSeq >= 1 else { throw SyncNodeError.invalid("a node's history starts at transaction 1") }
        for (i, item) in adopted.enumerated() {
            let t = item.transaction
            guard t.origin == info.nodeID, t.seq == fromSeq + UInt64(i), item.refusal == nil,
                info.publicKey.verifies(item.signature, for: SigningPayload.transaction(item.body))
            else {
                throw SyncNodeError(
                    .protocolViolation, "the peer's copy of this node's transaction \(t.seq) is not this node's signed work; nothing was changed")
            }
        }
        let now = clock.nowMillis()
        return try writeInterned { db, interner -> RecoveryReport in
            let me = try interner.nodeIx(info.nodeID, db)!
            let withdrawn = try withdrawnWork(db, me: me, from: fromSeq, adopting: adopted)
            try db.execute(sql: "DELETE FROM log WHERE origin = ? AND seq >= ?", arguments: [me, Int64(fromSeq)])
            interner.lastChain[me] = nil
            try RejectionRow.remove(db, info.nodeID, from: fromSeq)
            for item in adopted {
                try appendToLog(db, item.transaction, body: LogBody(item.body, deflater), signature: item.signature, refused: nil, &interner)
            }
            // Set outright: the one place this node's own entry may go back.
            let last = adopted.last?.transaction.seq ?? (fromSeq - 1)
            try db.execute(sql: "INSERT OR REPLACE INTO vector (origin, seq) VALUES (?, ?)", arguments: [Data(info.nodeID.bytes), Int64(last)])
            var hlc = try loadClock(db)
            if let floor = clockFloor {
                let lastOwn = try Int64.fetchOne(db, sql: "SELECT max(hlc) FROM log WHERE origin = ?", arguments: [me]).map {
                    UInt64(bitPattern: $0)
                }
                hlc = HybridClock(node: info.nodeID, millis: max(floor, (lastOwn ?? 0) >> 16 + 1), counter: 0, maxDriftMillis: maxDriftMillis)
            }
            for item in adopted { try? hlc.observe(remote: item.transaction.hlc, now: clockFloor ?? now) }
            try saveClock(db, hlc)
            try rematerialise(db, &interner)
            try recordAgain(db, withdrawn, now: clockFloor ?? now, &interner)
            return RecoveryReport(adopted: adopted.count, reissued: withdrawn.count)
        }
    }

    /// This node's transactions from `fromSeq` that the peer does not hold byte for byte. One
    /// under a number the peer holds otherwise means this node's identity signed two histories
    /// (restored from an older copy, or run on a second machine): the original is kept as
    /// evidence, and reported to HQ (`Store+Forks`).
    private func withdrawnWork(_ db: Database, me: Int64, from fromSeq: UInt64, adopting adopted: [ReceivedTransaction]) throws -> [Transaction] {
        let inflater = Inflate()
        var withdrawn: [Transaction] = []
        for row in try Row.fetchAll(
            db, sql: "SELECT body, size, sig FROM log WHERE origin = ? AND seq >= ? AND refused IS NULL ORDER BY seq",
            arguments: [me, Int64(fromSeq)])
        {
            let stored = row["body"] as Data
            let body = try (row["size"] as Int64?).map { try inflater.unpack(stored, size: Int($0)) } ?? [UInt8](stored)
            guard !adopted.contains(where: { $0.body == body }) else { continue }
            let t = try WireCodec.decode(body)
            withdrawn.append(t)
            if let last = adopted.last?.transaction.seq, t.seq <= last {
                try keepForkCopy(
                    db, origin: t.origin, seq: t.seq, hlc: t.hlc, body: body, signature: [UInt8]((row["sig"] as Data?) ?? Data()),
                    source: "this node", withdrawn: true)
            }
        }
        return withdrawn
    }

    /// Each withdrawn transaction again, in order; a write that replaced a withdrawn version now
    /// replaces that version as recorded again.
    private func recordAgain(_ db: Database, _ withdrawn: [Transaction], now: UInt64, _ interner: inout Interner) throws {
        var renamed: [Timestamp: Timestamp] = [:]
        func rename(_ ts: Timestamp) -> Timestamp { renamed[ts] ?? ts }
        for t in withdrawn {
            let changes = t.changes.map { change -> Change in
                guard case .set(var w) = change else { return change }
                w.base = w.base.map(rename)
                w.resolves = w.resolves.map(rename)
                return .set(w)
            }
            let again: Transaction
            do {
                again = try record(db, [.reissue(changes)], now: now, &interner)
            } catch let error as SyncNodeError {
                throw SyncNodeError(
                    error.code,
                    "this node's transaction \(t.seq) could not be recorded again (\(error.message)); nothing was changed. Keep this data directory as it is and ask for help"
                )
            }
            renamed[t.hlc] = again.hlc
        }
    }

    /// Own transactions made while this node's clock was far ahead (beyond the drift limit of the
    /// time now), which no peer has confirmed holding: they are withdrawn and recorded again with
    /// the corrected clock, and the clock's high-water mark comes back to the present. Refuses
    /// when a peer already holds one of them (they can no longer change).
    public func repairClock() throws(SyncNodeError) -> RecoveryReport {
        let now = clock.nowMillis()
        let limit = now + maxDriftMillis
        let first = try readNamed { db, interner -> UInt64? in
            guard let me = try interner.nodeIx(info.nodeID, db, create: false) else { return nil }
            return try Int64.fetchOne(
                db, sql: "SELECT min(seq) FROM log WHERE origin = ? AND (hlc >> 16) > ?", arguments: [me, Int64(limit)]
            ).map { UInt64($0) }
        }
        let highWater = try clockHighWater()
        guard let first else {
            if highWater.millis > limit {
                return try StorageErrors.map {
                    try pool.write { db in
                        try saveClock(db, HybridClock(node: info.nodeID, millis: now, counter: 0, maxDriftMillis: maxDriftMillis))
                        return RecoveryReport()
                    }
                }
            }
            throw SyncNodeError(.notFound, "this node's clock and its transactions are within the drift limit of the time now; nothing to repair")
        }
        for peer in try peers() where (peer.vector?[info.nodeID] ?? 0) >= first {
            throw SyncNodeError(
                .forbidden,
                "\(peer.label ?? peer.url) already holds this node's transaction \(first), made with the clock far ahead; it can no longer be changed. Its peers will accept it once their clocks reach it"
            )
        }
        return try recoverOwnHistory(from: first, adopting: [], clockFloor: now)
    }
}
