import Foundation
import GRDB
import SyncProtocol

/// A node as the registry describes it.
public struct RegistryEntry: Sendable, Equatable {
    public var node: NodeID
    public var key: PublicKeyText
    public var site: String
    public var role: Role
    public var label: String
    /// When the node was revoked (the timestamp of the write that revoked it).
    public var revokedAt: Timestamp?
    /// The revoked node's last transaction HQ accepted: every later one is refused everywhere.
    /// Nil for a revocation written by an older version (then the clock of `revokedAt` cuts).
    public var revokedAfterSeq: UInt64?

    /// The registry field holding `revokedAfterSeq`.
    static let cutField = "revoked_after_seq"

    public var author: Author { Author(node: node, site: site, role: role, label: label) }
}

/// A transaction waiting for the registry to learn its origin.
public struct HeldTransaction: Sendable, Equatable {
    public var origin: NodeID
    public var seq: UInt64
    public var received: UInt64
}

/// The receiver's decision on one transaction.
enum Verdict: Equatable {
    case accept
    /// The origin is not in the registry yet: keep it until it is.
    case hold
    /// The genuine transaction breaks the rules (policy, revocation): refused for good.
    case refuse(String)
    /// This copy is not the origin's (unsigned, altered, forged): turned away without consuming
    /// the origin's sequence number, so the genuine transaction can still arrive.
    case reject(String)
}

/// Registry and policy as read within one write transaction, cached for the chunk.
struct TrustContext {
    var rules: PolicyRules
    var registry: [NodeID: RegistryEntry?] = [:]
    let shared: InternCache?

    init(_ db: Database, shared: InternCache? = nil) throws {
        self.shared = shared
        rules = try Store.loadRules(db, shared: shared)
    }

    mutating func entry(_ db: Database, _ node: NodeID) throws -> RegistryEntry? {
        if let cached = registry[node] { return cached }
        let found = try Store.registryEntry(db, node, shared: shared)
        registry[node] = found
        return found
    }
}

extension RegistryEntry {
    /// Why the node's revocation refuses `t`, or nil. The cut is a sequence number HQ chose when it
    /// revoked (see `Intent.revoke`), so every receiver decides the same whatever clock `t` carries.
    func revocationRefuses(_ t: Transaction) -> String? {
        guard let revokedAt else { return nil }
        let name = "transaction \(t.origin.short)/\(t.seq)"
        if let cut = revokedAfterSeq {
            return t.seq > cut ? "node \(label) was revoked after its transaction \(cut); \(name) came after that" : nil
        }
        return t.hlc >= revokedAt ? "node \(label) was revoked at \(UTCTime.text(revokedAt.millis)) UTC; \(name) was made after that" : nil
    }
}

extension Store {
    /// `shared` speeds up name lookups; what the lookup learns is never published (it may run
    /// inside a write that is rolled back).
    static func registryEntry(_ db: Database, _ node: NodeID, shared: InternCache? = nil) throws -> RegistryEntry? {
        var interner = Interner(shared)
        let winners = winners(try namedRecord(db, collection: PolicyRules.registryCollection, recordID: node.hex, &interner) ?? [:])
        let fields = winners.mapValues { ($0.value, $0.ts) }
        guard case .text(let keyHex)? = fields["public_key"]?.0, let key = PublicKeyText(hex: keyHex),
            case .text(let roleText)? = fields["role"]?.0, let role = Role(rawValue: roleText)
        else { return nil }
        var revokedAt: Timestamp?
        var cut: UInt64?
        if let (value, ts) = fields["revoked"], value.isTruthy {
            revokedAt = ts
            if case .int(let seq)? = fields[RegistryEntry.cutField]?.0, seq >= 0 { cut = UInt64(seq) }
        }
        return RegistryEntry(
            node: node, key: key, site: fields["site"]?.0.description ?? "", role: role, label: fields["label"]?.0.description ?? node.short,
            revokedAt: revokedAt, revokedAfterSeq: cut)
    }

    /// The policy: defaults, overridden by what HQ wrote in the `policy` collection
    /// (`reference.collections`, `finance.ledgers`, `county-<site>.prefixes`, comma-separated).
    static func loadRules(_ db: Database, shared: InternCache? = nil) throws -> PolicyRules {
        var rules = PolicyRules.defaults
        var interner = Interner(shared)
        var rows: [(String, String, Value)] = []
        if let ix = try interner.nameIx(PolicyRules.policyCollection, db, create: false) {
            for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT record_id, state FROM record WHERE collection = ?"), arguments: [ix]) {
                let fields = winners(try named(try RecordCodec.decode(row["state"], &interner, db), db, &interner))
                for (field, w) in fields { rows.append((row["record_id"], field, w.value)) }
            }
        }
        func list(_ row: (String, String, Value)) -> [String] {
            row.2.description.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        for row in rows {
            let (id, field, _) = row
            switch (id, field) {
            case ("reference", "collections"):
                rules = PolicyRules(referenceCollections: Set(list(row)), financeLedgers: rules.financeLedgers, countyPrefixes: rules.countyPrefixes)
            case ("finance", "ledgers"):
                rules.financeLedgers = Set(list(row))
            case (let id, "prefixes") where id.hasPrefix("county-"):
                rules.countyPrefixes[String(id.dropFirst("county-".count))] = list(row)
            default:
                continue
            }
        }
        return rules
    }

    /// Decides whether a received transaction is applied, held or refused.
    func judge(_ db: Database, _ item: ReceivedTransaction, _ context: inout TrustContext) throws -> Verdict {
        guard let anchor = info.trustAnchor else { return .accept }
        // HQ's own signed verdict, given when it served the frame: followed, so that every node
        // ends where HQ is even when the registry or policy changed since HQ judged.
        if item.vouched, let verdict = item.anchorVerdict {
            switch verdict {
            case .accepted: return .accept
            case .refused(let reason): return .refuse(reason)
            }
        }
        let t = item.transaction
        let name = "transaction \(t.origin.short)/\(t.seq)"
        if item.signature.count != 64 || item.signature.allSatisfy({ $0 == 0 }) {
            return .reject("\(name) arrived unsigned; every transaction must carry its origin's signature")
        }
        let payload = SigningPayload.transaction(item.body)
        let author: Author
        if let entry = try context.entry(db, t.origin) {
            guard item.vouched || entry.key.verifies(item.signature, for: payload) else {
                return .reject("the signature of \(name) does not verify: this copy was altered after signing, or forged")
            }
            if let why = entry.revocationRefuses(t) { return .refuse(why) }
            author = entry.author
        } else if anchor.verifies(item.signature, for: payload) {
            author = Author(node: t.origin, site: "hq", role: .hq, label: "hq")
        } else {
            return .hold
        }
        for change in t.changes {
            if let violation = context.rules.violation(of: change, by: author) { return .refuse("refused: \(violation)") }
        }
        return .accept
    }

    /// HQ's vouch for a pull response it serves: its signature over the frames' digest. Only the
    /// trust anchor vouches (it has verified everything in its log); other nodes return nil.
    func vouch<Frame: Collection<UInt8>>(for frames: [Frame], refused: [BatchHeader.RefusedFrame]) -> String? {
        guard isAnchor, !frames.isEmpty else { return nil }
        return Hex.string(key.sign(SigningPayload.vouch(frames, refused: refused)))
    }

    /// Whether this node is the trust anchor (HQ).
    var isAnchor: Bool { info.trustAnchor == info.publicKey }

    /// Whether a pulled batch carries a valid vouch of the HQ this node trusts.
    public func acceptsVouch(_ batch: PulledBatch) -> Bool {
        guard let anchor = info.trustAnchor, let hex = batch.header.vouch, let payload = batch.vouchPayload,
            let signature = Hex.bytes(hex), signature.count == 64
        else { return false }
        return anchor.verifies(signature, for: payload)
    }

    /// Checks a local write against the policy before it is recorded, so field staff hear at once
    /// what every receiver would refuse.
    func checkLocal(_ db: Database, _ t: Transaction) throws {
        guard info.enforcesTrust else { return }
        let own = try Self.registryEntry(db, info.nodeID)
        if let own, own.revokedAt != nil {
            throw SyncNodeError(
                .forbidden,
                "this node (\(own.label)) has been revoked by HQ: no other node accepts its work any more; nothing was written. Enrol a new node and have HQ approve it"
            )
        }
        let author = own?.author ?? Author(node: info.nodeID, site: info.site, role: info.role, label: info.label)
        let rules = try Self.loadRules(db)
        for change in t.changes {
            if let violation = rules.violation(of: change, by: author) {
                throw SyncNodeError(.forbidden, "refused: \(violation); nothing was written")
            }
        }
    }

    /// Keeps a refused transaction in the log (for the vector and the record), never materialised.
    func recordRefusal(_ db: Database, _ item: ReceivedTransaction, reason: String, refusedBy: String, _ interner: inout Interner) throws {
        let t = item.transaction
        try appendToLog(db, t, body: LogBody(item.body, deflater), signature: item.signature, refused: reason, &interner)
        try advanceVector(db, origin: t.origin, to: t.seq)
        try noteRejection(db, Refusal(origin: t.origin, seq: t.seq, reason: reason, refusedBy: refusedBy))
        try HeldRow.remove(db, t.origin, t.seq)
    }

    func noteRejection(_ db: Database, _ r: Refusal) throws {
        try RejectionRow.note(db, r, at: clock.nowMillis())
    }

    func hold(_ db: Database, _ item: ReceivedTransaction, via: NodeID?) throws {
        try HeldRow.hold(db, item, via: via, at: clock.nowMillis())
    }

    /// Records refusals learned from a peer (this node's own work refused there).
    public func recordRejections(_ refusals: [Refusal]) throws(SyncNodeError) {
        guard !refusals.isEmpty else { return }
        try StorageErrors.map { try pool.write { db in for r in refusals { try noteRejection(db, r) } } }
    }

    /// What `peer` (the label this node knows it by) says it refused of this node's own work, as
    /// its answer lists it whole: replaces what it said before. Only refusals of transactions this
    /// node made are kept (at most `maxRefusalsPerPeer`): a peer speaks for itself, of work that
    /// exists.
    public func replaceRejections(by peer: String, with listed: [Refusal]) throws(SyncNodeError) {
        let own = try vector()[info.nodeID]
        var seen = Set<UInt64>()
        let kept = listed.filter { $0.origin == info.nodeID && $0.permanent != false && $0.seq >= 1 && $0.seq <= own && seen.insert($0.seq).inserted }
            .prefix(maxRefusalsPerPeer)
        try StorageErrors.map {
            try pool.write { db in
                let before = try RejectionRow.seqs(db, of: info.nodeID, refusedBy: peer)
                if before == kept.map({ Int64($0.seq) }).sorted() && !kept.isEmpty { return }
                try RejectionRow.remove(db, of: info.nodeID, refusedBy: peer)
                for r in kept {
                    try noteRejection(
                        db, Refusal(origin: r.origin, seq: r.seq, reason: String(r.reason.prefix(1000)), refusedBy: peer, permanent: true))
                }
            }
        }
    }

    /// Refusals known here: this node's own work refused elsewhere, and what this node refused.
    public func rejections() throws(SyncNodeError) -> [Refusal] {
        try read { db in try RejectionRow.all(db) }
    }

    /// Whether a refusal is of this node's own work, refused for good (not a bad copy turned
    /// away): what `status` counts and `rejections` marks as `own`.
    public func isOwnWorkRefused(_ r: Refusal) -> Bool { r.origin == info.nodeID && r.permanent != false }

    /// Refusals of `origin`'s transactions, to tell that node when it syncs.
    func rejections(of origin: NodeID) throws(SyncNodeError) -> [Refusal] {
        try rejections().filter { $0.origin == origin }
    }

    /// Transactions waiting for their origin to appear in the registry.
    public func heldTransactions() throws(SyncNodeError) -> [HeldTransaction] {
        try read { db in try HeldRow.list(db) }
    }

    /// The version vector extended by the transactions held here: what a pull need not ask for.
    public func pullVector() throws(SyncNodeError) -> VersionVector {
        var vector = try self.vector()
        for (origin, seq) in try read({ db in try HeldRow.lastSeqs(db) }) { vector[origin] = max(vector[origin], seq) }
        return vector
    }

    /// The held transactions of `origins`, in order.
    func heldBatch(of origins: [NodeID]) throws(SyncNodeError) -> [ReceivedTransaction] {
        try read { db in
            try origins.flatMap { origin in try HeldRow.all(db, of: origin).map { try $0.transaction() } }
        }
    }

    /// The registry as this node holds it.
    public func registry() throws(SyncNodeError) -> [RegistryEntry] {
        try read { db in
            var interner = Interner(nil)
            guard let ix = try interner.nameIx(PolicyRules.registryCollection, db, create: false) else { return [] }
            return try String.fetchAll(db, sql: "SELECT record_id FROM record WHERE collection = ? ORDER BY record_id", arguments: [ix]).compactMap {
                hex in try NodeID(hex: hex).flatMap { try Self.registryEntry(db, $0) }
            }
        }
    }

    /// This node's registry entry, once HQ's approval has arrived.
    public func ownRegistryEntry() throws(SyncNodeError) -> RegistryEntry? {
        try read { db in try Self.registryEntry(db, info.nodeID) }
    }
}

/// Most refusals of this node's work one peer's answer is believed for (its answers list them all).
let maxRefusalsPerPeer = 50_000

/// How much a sender may leave waiting in `held`: transactions of origins the registry does not
/// know cannot be verified, so what one sender can park there is bounded (16 origins, a quarter of
/// the transactions and a quarter of the bytes of the whole), and so is the whole. Pulls and
/// bundles count as one sender. A sender at its share leaves the others their room.
struct HoldQuota {
    private var total: Int
    private var bytes: Int
    private var originsOfSender: Set<Data>
    private var ofSender: Int
    private var bytesOfSender: Int
    private let sender: Data?
    private let limits: StoreLimits

    init(_ db: Database, via: NodeID?, limits: StoreLimits) throws {
        (total, bytes) = try HeldRow.share(db)
        sender = via.map { Data($0.bytes) }
        originsOfSender = try HeldRow.origins(db, sentBy: sender)
        (ofSender, bytesOfSender) = try HeldRow.share(db, sentBy: sender)
        self.limits = limits
    }

    /// Why `item` cannot be held now, or nil (and then it counts against the quota).
    mutating func refusal(for item: ReceivedTransaction) -> String? {
        let origin = Data(item.transaction.origin.bytes)
        let name = "transaction \(item.transaction.origin.short)/\(item.transaction.seq)"
        let size = item.body.count
        if total >= limits.maxHeldTransactions || bytes + size > limits.maxHeldBytes {
            return
                "\(name) comes from a node the registry does not know, and this node holds all such work it can; send it after HQ's approval of its node has arrived"
        }
        if ofSender >= limits.maxHeldTransactions / 4 {
            return
                "\(name) comes from a node the registry does not know, and this sender already has \(ofSender) such transactions waiting here; send it after HQ's approval of its node has arrived"
        }
        if bytesOfSender + size > limits.maxHeldBytesPerSender {
            return
                "\(name) comes from a node the registry does not know, and the work of such nodes this sender has waiting here (\(ByteText.describe(bytesOfSender)); \(ByteText.describe(bytesOfSender + size)) with this one) would pass its share of \(ByteText.describe(limits.maxHeldBytesPerSender)); send it after HQ's approval of its node has arrived"
        }
        if !originsOfSender.contains(origin) && originsOfSender.count >= limits.maxHeldOriginsPerSender {
            return
                "\(name) comes from a node the registry does not know, and this sender already has work of \(limits.maxHeldOriginsPerSender) such nodes waiting here; send it after HQ's approval of its node has arrived"
        }
        originsOfSender.insert(origin)
        ofSender += 1
        bytesOfSender += size
        total += 1
        bytes += size
        return nil
    }
}
