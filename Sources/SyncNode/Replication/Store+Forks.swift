import Crypto
import Foundation
import GRDB
import SyncProtocol

/// An origin's history up to one of its transactions, in 16 bytes: each log row links the chain
/// of the row before it (same origin, seq − 1) with its own signature and whether it was refused.
/// Every replica relays an origin's signature unchanged, so two replicas holding the same history
/// with the same verdicts hold the same chain at every seq, and two that hold different signed
/// transactions anywhere up to a seq (an origin that signed two histories: a forged fork, or one
/// identity running on two machines), or judged one differently (a policy change racing work in
/// flight), differ there and at every later seq. Comparing one chain per origin finds either
/// wherever two replicas meet.
enum HistoryChain {
    static let size = 16

    /// The chain after a transaction with `signature`, following `previous` (nil for seq 1). An
    /// unsigned transaction (no signature, or the 64 zero bytes a frame carries for none) links
    /// as an empty signature, whichever form a replica keeps.
    static func link(_ previous: Data?, signature: some Collection<UInt8>, refused: Bool) -> Data {
        var hash = SHA256()
        if let previous { hash.update(data: previous) }
        if signature.count == 64, signature.contains(where: { $0 != 0 }) { hash.update(data: Data(signature)) }
        if refused { hash.update(data: [1]) }
        return Data(hash.finalize().prefix(size))
    }

    /// Whether two signatures are the same one (an unsigned frame's 64 zero bytes and an empty
    /// signature are the same absence).
    static func sameSignature(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        link(nil, signature: a, refused: false) == link(nil, signature: b, refused: false)
    }
}

/// Where two histories of one origin part, as one replica sees it.
public struct ForkSummary: Sendable, Equatable {
    public var origin: NodeID
    /// The first seq at which this node saw another signed transaction than the one it keeps.
    public var firstSeq: UInt64
    /// Copies seen elsewhere and never kept here.
    public var seen: Int
    /// Copies this node kept once and gave up for the history HQ kept (or, for its own origin,
    /// recorded again under new numbers).
    public var withdrawn: Int
    /// When this node first saw the fork (ms since 1970).
    public var firstSeen: UInt64
}

/// One copy of a forked origin's transaction that this node does not keep: evidence.
public struct ForkCopy: Sendable, Equatable {
    public var origin: NodeID
    public var seq: UInt64
    public var clock: Timestamp
    public var withdrawn: Bool
    /// Who handed it over (a node's label, "bundle", "this node").
    public var source: String
    public var seen: UInt64
    /// SHA-256 (hex) of its exact bytes, and its signature (hex): what proves it is the origin's.
    public var digest: String
    public var signature: String
    /// The name the transaction itself gives its author, if it gives one.
    public var author: String?
    /// What it wrote, one line per change ("projects/lt-eq.name = B").
    public var changes: [String]
}

/// What one received copy of a transaction this node already holds turned out to be.
enum HeldCopy {
    /// The same signed transaction (the common case: a re-delivery).
    case same
    /// Not the origin's signed work: turned away, it says nothing of its origin.
    case forged(String)
    /// Another signed transaction under the same number: kept as evidence; this node keeps its own.
    case fork
    /// Another signed transaction under the same number, carrying HQ's word: this node's copy and
    /// everything of its origin after it were withdrawn; the received copy is to be applied.
    case switched
    /// The same transaction, which HQ judged otherwise than this node did (a policy or registry
    /// change that reached the two in different orders): HQ's verdict was taken.
    case verdictTaken
}

/// How many copies of one origin's transactions a node keeps as evidence beyond its log (the
/// first such copy proves the fork; the bound keeps an origin from filling the disk with more).
let maxForkCopiesPerOrigin = 10_000

extension Store {
    /// The chain of `origin`'s transaction `seq` in the log (nil for 0, or when not held).
    func historyChain(_ db: Database, origin: Int64, seq: UInt64) throws -> Data? {
        guard seq > 0 else { return nil }
        return try Data.fetchOne(
            db.cachedStatement(sql: "SELECT chain FROM log WHERE origin = ? AND seq = ?"), arguments: [origin, Int64(seq)])
    }

    /// One check per origin both sides hold, at the last seq both hold: what a pull asks a peer
    /// to compare. This node's own origin is checked too: `PullRequest.ownCheck` finds its lost
    /// history first, and this finds a verdict HQ gave on its work otherwise than it did.
    public func forkChecks(peerVector: VersionVector) throws(SyncNodeError) -> [PullRequest.ForkCheck] {
        let mine = try vector()
        return try readNamed { db, interner in
            var checks: [PullRequest.ForkCheck] = []
            for (origin, theirs) in peerVector.entries {
                let seq = min(theirs, mine[origin])
                guard seq > 0, let ix = try interner.nodeIx(origin, db, create: false),
                    let chain = try historyChain(db, origin: ix, seq: seq)
                else { continue }
                checks.append(.init(origin: origin, seq: seq, chain: Hex.string(chain)))
            }
            return checks.sorted { $0.origin < $1.origin }
        }
    }

    /// The one check of `origin` at `seq`, if this node holds it.
    public func forkCheck(origin: NodeID, seq: UInt64) throws(SyncNodeError) -> PullRequest.ForkCheck? {
        try readNamed { db, interner in
            guard let ix = try interner.nodeIx(origin, db, create: false), let chain = try historyChain(db, origin: ix, seq: seq) else { return nil }
            return .init(origin: origin, seq: seq, chain: Hex.string(chain))
        }
    }

    /// The origins of `checks` whose history here differs from the caller's at the seq checked
    /// (an origin this node holds less of, or whose chain it lacks, is not compared).
    public func forkedOrigins(_ checks: [PullRequest.ForkCheck]) throws(SyncNodeError) -> [NodeID] {
        try readNamed { db, interner in
            var out: [NodeID] = []
            for check in checks.prefix(maxForkChecks) {
                guard let ix = try interner.nodeIx(check.origin, db, create: false),
                    let chain = try historyChain(db, origin: ix, seq: check.seq)
                else { continue }
                if Hex.string(chain) != check.chain { out.append(check.origin) }
            }
            return out
        }
    }

    /// Compares a received copy of a transaction this node already holds with the one it holds
    /// (the signature first, the bytes only when those differ), inside the apply's write.
    ///
    /// Another transaction under the same number, signed by the origin's registered key, is a
    /// fork: kept as evidence (`fork_copy`), and the origin is flagged. Which history every
    /// replica keeps is the one HQ accepted first: HQ never gives up what it holds; another node
    /// gives up its copy (and everything of that origin after it) only for a copy carrying HQ's
    /// word: served in HQ's vouched pull, or pushed by HQ itself.
    func examineHeldCopy(
        _ db: Database, _ item: ReceivedTransaction, via: NodeID?, source: String, _ context: inout TrustContext, _ interner: inout Interner
    ) throws -> HeldCopy {
        let t = item.transaction
        guard item.refusal == nil, let anchor = info.trustAnchor, let ix = try interner.nodeIx(t.origin, db, create: false),
            let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT sig, body, size, refused FROM log WHERE origin = ? AND seq = ?"), arguments: [ix, Int64(t.seq)])
        else { return .same }
        let heldSignature = (row["sig"] as Data?) ?? Data()
        if HistoryChain.sameSignature(heldSignature, item.signature) {
            guard item.vouched, let verdict = item.anchorVerdict, !isAnchor else { return .same }
            return try takeVerdict(db, t, verdict, heldRefusal: row["refused"] as String?, ix: ix, &interner) ? .verdictTaken : .same
        }
        let stored = row["body"] as Data
        // A refusal statement an older version believed left no bytes: nothing to compare.
        guard !stored.isEmpty else { return .same }
        let heldBody = try (row["size"] as Int64?).map { try Inflate().unpack(stored, size: Int($0)) } ?? [UInt8](stored)
        if heldBody == item.body { return .same }
        let payload = SigningPayload.transaction(item.body)
        let key = try context.entry(db, t.origin)?.key ?? anchor
        guard item.signature.count == 64, key.verifies(item.signature, for: payload) else {
            return .forged(
                "this copy of transaction \(t.origin.short)/\(t.seq) differs from the one held here and does not carry its origin's signature; turned away"
            )
        }
        let hqWord: Bool
        if item.vouched, item.anchorVerdict != nil {
            hqWord = true
        } else if let via, let entry = try context.entry(db, via) {
            hqWord = entry.role == .hq && entry.key == anchor && entry.revokedAt == nil
        } else {
            hqWord = false
        }
        guard hqWord, !isAnchor, t.origin != info.nodeID else {
            try keepForkCopy(
                db, origin: t.origin, seq: t.seq, hlc: t.hlc, body: item.body, signature: item.signature, source: source, withdrawn: false)
            return .fork
        }
        try withdrawHistory(db, origin: t.origin, from: t.seq, source: "this node", &interner)
        context = try TrustContext(db, shared: interns)
        return .switched
    }

    /// Takes HQ's verdict on a transaction this node holds, when it differs from this node's:
    /// refused there, it is refused here (its effects removed by a rebuild); accepted there, it is
    /// applied here. Returns whether anything changed.
    func takeVerdict(
        _ db: Database, _ t: Transaction, _ verdict: ReceivedTransaction.AnchorVerdict, heldRefusal: String?, ix: Int64, _ interner: inout Interner
    ) throws -> Bool {
        let key: StatementArguments = [ix, Int64(t.seq)]
        switch (verdict, heldRefusal) {
        case (.accepted, nil), (.refused, .some):
            return false
        case (.accepted, .some):
            try db.cachedStatement(sql: "UPDATE log SET refused = NULL WHERE origin = ? AND seq = ?").execute(arguments: key)
            try RejectionRow.remove(db, t.origin, t.seq)
            try rechain(db, origin: ix, from: t.seq, &interner)
            try applyChanges(db, t, &interner)
        case (.refused(let reason), nil):
            try db.cachedStatement(sql: "UPDATE log SET refused = ? WHERE origin = ? AND seq = ?").execute(arguments: [reason] + key)
            try noteRejection(db, Refusal(origin: t.origin, seq: t.seq, reason: reason, refusedBy: "HQ"))
            try rechain(db, origin: ix, from: t.seq, &interner)
            try rematerialise(db, &interner)
        }
        return true
    }

    /// Computes the history chains of `origin`'s log rows from `seq` on again (after a verdict
    /// on one of them changed).
    func rechain(_ db: Database, origin: Int64, from seq: UInt64, _ interner: inout Interner) throws {
        var previous = try historyChain(db, origin: origin, seq: seq - 1)
        for row in try Row.fetchAll(
            db.cachedStatement(sql: "SELECT seq, sig, refused FROM log WHERE origin = ? AND seq >= ? ORDER BY seq"),
            arguments: [origin, Int64(seq)])
        {
            let chain = HistoryChain.link(previous, signature: [UInt8]((row["sig"] as Data?) ?? Data()), refused: row["refused"] as String? != nil)
            try db.cachedStatement(sql: "UPDATE log SET chain = ? WHERE origin = ? AND seq = ?").execute(arguments: [
                chain, origin, row["seq"] as Int64,
            ])
            previous = chain
        }
        interner.lastChain[origin] = nil
    }

    /// Keeps a copy this node does not keep in its log, as evidence (bounded per origin: once an
    /// origin is proven forked, more copies add nothing but bytes).
    func keepForkCopy(
        _ db: Database, origin: NodeID, seq: UInt64, hlc: Timestamp, body: [UInt8], signature: [UInt8], source: String, withdrawn: Bool
    ) throws {
        let key = Data(origin.bytes)
        if !withdrawn {
            let kept = try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM fork_copy WHERE origin = ?"), arguments: [key]) ?? 0
            guard kept < maxForkCopiesPerOrigin else { return }
        }
        try db.cachedStatement(
            sql: """
                INSERT INTO fork_copy (origin, seq, sig, body, hlc, source, seen, withdrawn) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT DO UPDATE SET withdrawn = max(withdrawn, excluded.withdrawn)
                """
        ).execute(arguments: [
            key, Int64(seq), Data(signature), Data(body), Int64(bitPattern: hlc.clock), source, Int64(clock.nowMillis()), withdrawn,
        ])
    }

    /// Gives up this node's copies of `origin`'s transactions from `seq` on: each is kept in
    /// `fork_copy` (withdrawn), the log and the vector go back to `seq − 1`, and the records and
    /// ledgers are rebuilt from what remains. Inside the caller's write.
    func withdrawHistory(_ db: Database, origin: NodeID, from seq: UInt64, source: String, _ interner: inout Interner) throws {
        guard let ix = try interner.nodeIx(origin, db, create: false) else { return }
        let inflater = Inflate()
        for row in try Row.fetchAll(
            db, sql: "SELECT seq, hlc, body, size, sig FROM log WHERE origin = ? AND seq >= ? ORDER BY seq", arguments: [ix, Int64(seq)])
        {
            let stored = row["body"] as Data
            guard !stored.isEmpty else { continue }
            let body = try (row["size"] as Int64?).map { try inflater.unpack(stored, size: Int($0)) } ?? [UInt8](stored)
            try keepForkCopy(
                db, origin: origin, seq: UInt64(row["seq"] as Int64), hlc: Timestamp(clock: UInt64(bitPattern: row["hlc"] as Int64), node: origin),
                body: body, signature: [UInt8]((row["sig"] as Data?) ?? Data()), source: source, withdrawn: true)
        }
        try db.execute(sql: "DELETE FROM log WHERE origin = ? AND seq >= ?", arguments: [ix, Int64(seq)])
        try RejectionRow.remove(db, origin, from: seq)
        try HeldRow.remove(db, origin, from: seq)
        try db.execute(sql: "UPDATE vector SET seq = ? WHERE origin = ?", arguments: [Int64(seq) - 1, Data(origin.bytes)])
        interner.lastChain[ix] = nil
        try rematerialise(db, &interner)
    }

    /// The forked origins this node knows of.
    public func forks() throws(SyncNodeError) -> [ForkSummary] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT origin, min(seq) AS first, sum(withdrawn = 0) AS seen, sum(withdrawn) AS withdrawn, min(seen) AS at
                    FROM fork_copy WHERE \(ForkSQL.notInLog) GROUP BY origin ORDER BY origin
                    """
            ).compactMap { row in
                guard let origin = NodeID(bytes: row["origin"] as Data) else { return nil }
                return ForkSummary(
                    origin: origin, firstSeq: UInt64(row["first"] as Int64), seen: row["seen"], withdrawn: row["withdrawn"],
                    firstSeen: UInt64(row["at"] as Int64))
            }
        }
    }

    /// The copies of `origin`'s transactions this node does not keep (every origin's when nil), in order.
    public func forkCopies(of origin: NodeID? = nil) throws(SyncNodeError) -> [ForkCopy] {
        try read { db in
            let rows = try Row.fetchAll(
                db,
                sql:
                    "SELECT origin, seq, sig, body, hlc, source, seen, withdrawn FROM fork_copy WHERE (?1 IS NULL OR origin = ?1) AND \(ForkSQL.notInLog) ORDER BY origin, seq, seen",
                arguments: [origin.map { Data($0.bytes) }])
            return rows.compactMap { row in
                guard let node = NodeID(bytes: row["origin"] as Data) else { return nil }
                let body = [UInt8](row["body"] as Data)
                let signature = [UInt8](row["sig"] as Data)
                let decoded = try? WireCodec.decode(body)
                var author: String?
                var changes: [String] = []
                for change in decoded?.changes ?? [] {
                    switch change {
                    case .set(let w): changes.append("\(w.collection)/\(w.recordID).\(w.field) = \(w.value)")
                    case .append(let e): changes.append("\(e.ledger) \(e.entryID): \(LedgerJSON.encodeOrEmpty(e.fields))")
                    case .author(let name): author = name
                    case .unknown: changes.append("(a change this version does not read)")
                    }
                }
                return ForkCopy(
                    origin: node, seq: UInt64(row["seq"] as Int64), clock: Timestamp(clock: UInt64(bitPattern: row["hlc"] as Int64), node: node),
                    withdrawn: row["withdrawn"], source: row["source"], seen: UInt64(row["seen"] as Int64),
                    digest: Hex.string(SHA256.hash(data: body)), signature: Hex.string(signature), author: author, changes: changes)
            }
        }
    }

    /// Evidence HQ has not confirmed holding, as frames a push to HQ carries: copies under numbers
    /// HQ already holds (it compares them with its own; a copy beyond what it holds would be taken
    /// as the origin's next transaction, so those wait until HQ holds that far).
    func unreportedForkFrames(peerHas: VersionVector, limit: Int = 200) throws(SyncNodeError) -> (frames: [[UInt8]], keys: [ForkCopyKey]) {
        try read { db in
            var frames: [[UInt8]] = []
            var keys: [ForkCopyKey] = []
            for row in try Row.fetchAll(
                db, sql: "SELECT origin, seq, sig, body FROM fork_copy WHERE reported = 0 AND \(ForkSQL.notInLog) ORDER BY origin, seq")
            {
                guard frames.count < limit, let origin = NodeID(bytes: row["origin"] as Data) else { break }
                let seq = UInt64(row["seq"] as Int64)
                guard seq <= peerHas[origin] else { continue }
                let signature = row["sig"] as Data
                frames.append(ReceivedTransaction.frame(signature: [UInt8](signature), body: [UInt8](row["body"] as Data)))
                keys.append(ForkCopyKey(origin: origin, seq: seq, signature: signature))
            }
            return (frames, keys)
        }
    }

    /// The label the registry gives `node` (what a node says of itself is never shown).
    func registryLabel(of node: NodeID) throws(SyncNodeError) -> String? {
        if node == info.nodeID { return info.label }
        return try read { db in try Self.registryEntry(db, node, shared: interns)?.label }
    }

    /// HQ confirmed receiving these copies.
    func markForkCopiesReported(_ keys: [ForkCopyKey]) throws(SyncNodeError) {
        guard !keys.isEmpty else { return }
        try StorageErrors.map {
            try pool.write { db in
                for k in keys {
                    try db.execute(
                        sql: "UPDATE fork_copy SET reported = 1 WHERE origin = ? AND seq = ? AND sig = ?",
                        arguments: [Data(k.origin.bytes), Int64(k.seq), k.signature])
                }
            }
        }
    }
}

enum ForkSQL {
    /// A copy kept as evidence that is (again) the one in the log: a node that gave up its
    /// history for HQ's may have seen HQ's copy before; it is not evidence of anything then.
    static let notInLog = """
        NOT EXISTS (SELECT 1 FROM log JOIN node ON node.ix = log.origin
            WHERE node.id = fork_copy.origin AND log.seq = fork_copy.seq AND log.sig = fork_copy.sig)
        """
}

struct ForkCopyKey: Sendable {
    var origin: NodeID
    var seq: UInt64
    var signature: Data
}

/// Most checks one pull request may ask a node to compare (one per origin: a thousand-node
/// network sends a thousand).
let maxForkChecks = 20_000

extension LedgerJSON {
    static func encodeOrEmpty(_ fields: [String: Value]) -> String { (try? encode(fields)) ?? "{}" }
}
