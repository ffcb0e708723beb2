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
    /// SHA-256 (hex) of the exact bytes of `origin`'s transaction `seq`, if this node holds it.
    public func digest(of origin: NodeID, seq: UInt64) throws(SyncNodeError) -> String? {
        try readNamed { db, interner in
            guard let ix = try interner.nodeIx(origin, db, create: false),
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT body, size FROM log WHERE origin = ? AND seq = ?"), arguments: [ix, Int64(seq)])
            else { return nil }
            let stored = row["body"] as Data
            let body = try (row["size"] as Int64?).map { try Inflate().unpack(stored, size: Int($0)) } ?? [UInt8](stored)
            return Hex.string(SHA256.hash(data: body))
        }
    }

    /// Puts this node's own history right from `fromSeq` on: its transactions from there are
    /// withdrawn, `adopted` (this node's transactions `fromSeq...` as a peer holds them, signed by
    /// this node's key) take their place, the records are rebuilt, and the withdrawn work is
    /// recorded again as new transactions after them. Nothing is lost: what the peer holds comes
    /// back, and what only this node held is recorded again.
    ///
    /// - Parameter clockFloor: when set, the clock's high-water mark is lowered to this (the wall
    ///   clock was far ahead when the withdrawn transactions were made, and has been put right).
    public func recoverOwnHistory(from fromSeq: UInt64, adopting adopted: [ReceivedTransaction], clockFloor: UInt64? = nil) throws(SyncNodeError)
        -> RecoveryReport
    {
        for (i, item) in adopted.enumerated() {
            let t = item.transaction
            guard t.origin == info.nodeID, t.seq == fromSeq + UInt64(i), item.refusal == nil,
                info.publicKey.verifies(item.signature, for: SigningPayload.transaction(item.body))
            else {
                throw SyncNodeError(
                    .protocolViolation, "the peer's copy of this node's transaction \(t.seq) is not this node's signed work; nothing was changed")
            }
        }
        var interner = Interner(interns)
        let withdrawn = try StorageErrors.map {
            try pool.write { db -> [Transaction] in
                interner = Interner(interns)
                interner.hot = HotStatements(db)
                defer { interner.hot = nil }
                let me = try interner.nodeIx(info.nodeID, db)!
                let inflater = Inflate()
                var withdrawn: [Transaction] = []
                for row in try Row.fetchAll(
                    db, sql: "SELECT body, size FROM log WHERE origin = ? AND seq >= ? AND refused IS NULL ORDER BY seq",
                    arguments: [me, Int64(fromSeq)])
                {
                    let stored = row["body"] as Data
                    let body = try (row["size"] as Int64?).map { try inflater.unpack(stored, size: Int($0)) } ?? [UInt8](stored)
                    let t = try WireCodec.decode(body)
                    // A transaction the peer holds byte for byte is not withdrawn work.
                    if !adopted.contains(where: { $0.transaction.seq == t.seq && $0.body == body }) { withdrawn.append(t) }
                }
                try db.execute(sql: "DELETE FROM log WHERE origin = ? AND seq >= ?", arguments: [me, Int64(fromSeq)])
                try db.execute(sql: "DELETE FROM rejection WHERE origin = ? AND seq >= ?", arguments: [Data(info.nodeID.bytes), Int64(fromSeq)])
                for item in adopted {
                    try appendToLog(db, item.transaction, body: LogBody(item.body, deflater), signature: item.signature, refused: nil, &interner)
                }
                let last = adopted.last?.transaction.seq ?? (fromSeq - 1)
                try db.execute(sql: "INSERT OR REPLACE INTO vector (origin, seq) VALUES (?, ?)", arguments: [Data(info.nodeID.bytes), Int64(last)])
                var hlc = try loadClock(db)
                if let floor = clockFloor {
                    let lastOwn = try Int64.fetchOne(db, sql: "SELECT max(hlc) FROM log WHERE origin = ?", arguments: [me]).map {
                        UInt64(bitPattern: $0)
                    }
                    let keep = max(floor, (lastOwn ?? 0) >> 16 + 1)
                    hlc = HybridClock(node: info.nodeID, millis: keep, counter: 0, maxDriftMillis: maxDriftMillis)
                }
                for item in adopted { try? hlc.observe(remote: item.transaction.hlc, now: clockFloor ?? clock.nowMillis()) }
                try saveClock(db, hlc)
                try rematerialise(db, &interner)
                return withdrawn
            }
        }
        interner.publish()
        for t in withdrawn { try commit([.reissue(t.changes)]) }
        return RecoveryReport(adopted: adopted.count, reissued: withdrawn.count)
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
