import Crypto
import Foundation
import GRDB
import ServiceLifecycle
import SyncProtocol

/// Signs HTTP requests with the calling node's key: `Syncnode-Node`, `Syncnode-Time`,
/// `Syncnode-Nonce` and `Syncnode-Signature` over method, path, body hash, time and nonce.
public struct RequestSigner: Sendable {
    let node: NodeID
    let key: NodeKey
    let clock: any WallClock
    /// Checks that an answer comes from a node this node knows (nil in open mode, where nothing
    /// is authenticated).
    let answers: AnswerCheck?

    public func headers(method: String, path: String, body: [UInt8]) -> [String: String] {
        let time = clock.nowMillis()
        let nonce = Secret.hex(bytes: 16)
        let bodyHash = RequestAuth.hash(body)
        let payload = SigningPayload.request(method: method, path: path, bodyHash: bodyHash, time: time, nonce: nonce, node: node)
        return [
            "Syncnode-Node": node.hex, "Syncnode-Time": String(time), "Syncnode-Nonce": nonce, "Syncnode-Body-SHA256": bodyHash,
            "Syncnode-Signature": Data(key.sign(payload)).base64EncodedString(),
        ]
    }
}

/// Every answer a node gives to a sync request is signed by the answering node, bound to the
/// request by its nonce (`SigningPayload.answer`); a node believes an answer only when it verifies
/// with the registry's key of the node it names, or with the trust anchor (HQ before the registry
/// has arrived). Anyone else answering at a peer's address is refused before anything it said is
/// used.
///
/// A node whose own approval has not arrived yet holds no registry to check against: it takes a
/// signed answer of a node it does not know for the transactions in it alone (each judged by its
/// origin's signature, as always) and believes nothing the answer says (`answerer` is nil), so that
/// a new county can start from a relay. An unsigned answer is refused always.
public struct AnswerCheck: Sendable {
    let keys: @Sendable (NodeID) -> [PublicKeyText]
    let bootstrapping: @Sendable () -> Bool

    /// The node that signed the answer `body` to the request that carried `nonce`; nil when this
    /// node cannot know it yet (see above).
    func answerer(headers: [String: String], nonce: String, body: [UInt8], url: String) throws(SyncNodeError) -> NodeID? {
        guard let hex = headers["syncnode-answer-node"], let node = NodeID(hex: hex),
            let signature = headers["syncnode-answer-signature"].flatMap({ Data(base64Encoded: $0) }), signature.count == 64
        else {
            throw SyncNodeError(
                .peerRefused,
                "\(url) answered without a node's signature: a node of this version signs every answer. Either a stranger answers at that address (check the URL and the network) or the peer runs an older version (upgrade it)"
            )
        }
        let payload = SigningPayload.answer(nonce: nonce, bodyHash: RequestAuth.hash(body), node: node)
        let known = keys(node)
        if known.contains(where: { $0.verifies([UInt8](signature), for: payload) }) { return node }
        // A node the registry here does not name (only the trust anchor's key was tried), before
        // this node's own approval has arrived: its transactions only, never its word.
        if known.count < 2 && bootstrapping() { return nil }
        throw SyncNodeError(
            .peerRefused,
            "\(url) answered as node \(node.short), but the answer is not signed by that node's registered key: a stranger may be answering at that address; nothing it said was used"
        )
    }
}

extension Store {
    /// Signs this node's requests to its peers, and checks their answers.
    public var requestSigner: RequestSigner {
        RequestSigner(
            node: info.nodeID, key: key, clock: clock,
            answers: info.trustAnchor == nil ? nil : AnswerCheck(keys: answerKeys, bootstrapping: { [self] in !self.knowsItsApproval }))
    }

    /// Whether this node's own approval has arrived (it holds the registry it checks answers by).
    var knowsItsApproval: Bool { ((try? ownRegistryEntry()) ?? nil) != nil }

    /// The keys an answer naming `node` may be signed with: its registry key, and the trust anchor.
    @Sendable func answerKeys(_ node: NodeID) -> [PublicKeyText] {
        var keys: [PublicKeyText] = []
        if let entry = try? read({ db in try Self.registryEntry(db, node) }) { keys.append(entry.key) }
        if let anchor = info.trustAnchor { keys.append(anchor) }
        return keys
    }

    /// This node's signature over an answer to a request that carried `nonce` (base64).
    func signAnswer(nonce: String, body: [UInt8]) -> String {
        Data(key.sign(SigningPayload.answer(nonce: nonce, bodyHash: RequestAuth.hash(body), node: info.nodeID))).base64EncodedString()
    }
}

/// Remembers recent request nonces so a captured request cannot be replayed. Bounded: a node may
/// have at most `perNode` requests remembered within the window (far above what syncing every few
/// seconds takes), and the cache `total`; past either bound a request is answered 503 (retry
/// later), never admitted unremembered.
final class ReplayCache: @unchecked Sendable {
    enum Admission: Equatable {
        case admitted
        case replayed
        case full
    }

    private let lock = NSLock()
    private var seen: [String: UInt64] = [:]
    private var perNode: [String: Int] = [:]
    let perNodeLimit: Int
    let totalLimit: Int
    private var nextPrune = 10_000
    private var lastPrune: UInt64 = 0

    init(perNode: Int = 20_000, total: Int = 200_000) {
        perNodeLimit = perNode
        totalLimit = total
    }

    /// What the cache holds, to be kept across a restart.
    var entries: [String: UInt64] { lock.withLock { seen } }

    /// Adds entries kept by an earlier process.
    func restore(_ entries: [String: UInt64]) {
        lock.withLock {
            seen.merge(entries) { max($0, $1) }
            recount()
        }
    }

    /// Records `nonce` of `node`, unless it was already seen or the cache is full. Forgets
    /// entries older than `window`.
    func admit(node: String, nonce: String, now: UInt64, window: UInt64) -> Admission {
        let key = node + nonce
        return lock.withLock {
            if let at = seen[key], now < at + window { return .replayed }
            let atLimit = seen.count >= totalLimit || perNode[node, default: 0] >= perNodeLimit
            // Expired entries go when the cache has doubled since the last pruning, or, at a
            // limit, at most once a second (each pruning reads every entry).
            if seen.count >= nextPrune || (atLimit && now >= lastPrune + 1000) {
                seen = seen.filter { now < $0.value + window }
                recount()
                lastPrune = now
                nextPrune = max(10_000, seen.count * 2)
            }
            guard seen.count < totalLimit, perNode[node, default: 0] < perNodeLimit else { return .full }
            seen[key] = now
            perNode[node, default: 0] += 1
            return .admitted
        }
    }

    private func recount() {
        perNode = [:]
        for key in seen.keys { perNode[String(key.prefix(32)), default: 0] += 1 }
    }
}

enum RequestAuth {
    static func hash(_ body: [UInt8]) -> String { Secret.sha256Hex(body) }
}

/// Random values nobody can guess (request nonces, web sessions and form tokens) and the digests
/// kept in their place, in hexadecimal.
public enum Secret {
    /// `bytes` random bytes from the system's generator.
    public static func hex(bytes: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        return Hex.string((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }

    public static func sha256Hex(_ bytes: some Sequence<UInt8>) -> String { Hex.string(SHA256.hash(data: Array(bytes))) }
}

/// A request whose signature verified before its body was read: the body must hash to what was
/// signed.
public struct AuthenticatedCaller: Sendable {
    public var node: NodeID
    var bodyHash: String
    /// The caller's clock minus this node's when the request arrived (ms).
    var skewMillis: Int64 = 0
    /// When the request arrived, by this node's clock.
    var heard: UInt64 = 0

    /// Checks that the body that arrived is the one the caller signed.
    public func check(body: [UInt8]) throws(APIError) {
        guard RequestAuth.hash(body) == bodyHash else {
            throw APIError(status: 401, code: "bad_signature", message: "the request body is not the one its signature covers")
        }
    }
}

extension SyncService {
    /// Checks a request's signature, freshness and nonce, and that its node may talk to this one,
    /// from its headers alone: the signature covers the SHA-256 of the body given in
    /// `Syncnode-Body-SHA256`, so a stranger is refused before a byte of the body is read. The
    /// caller then checks the body against it (`AuthenticatedCaller.check`). A node in open mode
    /// (no trust anchor) accepts every request and returns nil.
    public func authenticate(method: String, path: String, headers: [String: String]) throws(APIError) -> AuthenticatedCaller? {
        guard let anchor = store.info.trustAnchor else { return nil }
        guard let nodeText = headers["syncnode-node"], let node = NodeID(hex: nodeText), let timeText = headers["syncnode-time"],
            let time = UInt64(timeText), let nonce = headers["syncnode-nonce"], nonce.utf8.count <= 64,
            let bodyHash = headers["syncnode-body-sha256"], bodyHash.utf8.count == 64,
            let signatureText = headers["syncnode-signature"], signatureText.utf8.count <= 128, let signature = Data(base64Encoded: signatureText)
        else {
            throw APIError(
                status: 401, code: "unauthenticated",
                message:
                    "requests must be signed by the calling node (Syncnode-Node, -Time, -Nonce, -Body-SHA256, -Signature; protocol version \(WireCodec.protocolVersion))"
            )
        }
        let now = store.clock.nowMillis()
        let skew = time > now ? time - now : now - time
        guard skew <= store.maxDriftMillis else {
            throw APIError(
                status: 401, code: "stale_request",
                message:
                    "the request's time is \(DurationText.describe(millis: skew)) away from this node's clock; fix the clock of the node that is wrong"
            )
        }
        let payload = SigningPayload.request(method: method, path: path, bodyHash: bodyHash, time: time, nonce: nonce, node: node)
        let entry: RegistryEntry?
        do {
            entry = try store.read { db in try Store.registryEntry(db, node, shared: store.interns) }
        } catch {
            throw APIError(error)
        }
        if let entry {
            if entry.revokedAt != nil {
                throw APIError(status: 403, code: "revoked_node", message: "node \(entry.label) has been revoked; it may no longer sync")
            }
            guard entry.key.verifies([UInt8](signature), for: payload) else {
                // Most often a key typed wrong at approval: say what to compare.
                throw APIError(
                    status: 401, code: "bad_signature",
                    message:
                        "the request signature does not verify with the key registered for node \(entry.label) (fingerprint \(entry.key.fingerprint)); compare it with the fingerprint that node shows as its identity, and if they differ have HQ approve the node again with the key it shows"
                )
            }
        } else if !anchor.verifies([UInt8](signature), for: payload) {
            throw APIError(
                status: 401, code: "unknown_node",
                message:
                    "node \(node.hex) is not in this node's registry; HQ must approve it, and the registry reach this node"
            )
        }
        switch replayCache.admit(node: node.hex, nonce: nonce, now: now, window: replayWindow) {
        case .admitted:
            break
        case .replayed:
            throw APIError(status: 401, code: "replayed_request", message: "this request was already received; a request cannot be replayed")
        case .full:
            throw APIError(
                status: 503, code: "busy",
                message: "this node has received more requests from node \(node.short) in the last minutes than it can remember; retry later")
        }
        return AuthenticatedCaller(
            node: node, bodyHash: bodyHash, skewMillis: time >= now ? Int64(time - now) : -Int64(now - time), heard: now)
    }

    /// `authenticate(method:path:headers:)` and the body check in one step, for a body at hand.
    @discardableResult
    public func authenticate(method: String, path: String, body: [UInt8], headers: [String: String]) throws(APIError) -> AuthenticatedCaller? {
        let caller = try authenticate(method: method, path: path, headers: headers)
        try caller?.check(body: body)
        return caller
    }
}

extension SyncService {
    /// The replay window: a signed request is fresh for the drift limit either way.
    var replayWindow: UInt64 { 2 * store.maxDriftMillis }

    /// Loads the requests an earlier `serve` saw within the replay window.
    public func restoreReplayCache() {
        let now = store.clock.nowMillis()
        let since = now > replayWindow ? now - replayWindow : 0
        if let kept = try? store.read({ db in try Row.fetchAll(db, sql: "SELECT key, at FROM seen_request WHERE at >= ?", arguments: [Int64(since)]) }
        ) {
            replayCache.restore(Dictionary(kept.map { ($0["key"] as String, UInt64($0["at"] as Int64)) }) { max($0, $1) })
        }
    }

    /// Keeps the requests seen within the replay window for the next `serve` (at shutdown, and
    /// periodically by the scheduler, so that a crash loses at most the last interval).
    public func saveReplayCache() {
        let now = store.clock.nowMillis()
        let since = now > replayWindow ? now - replayWindow : 0
        let entries = replayCache.entries.filter { $0.value >= since }
        let heard = contacts.drain()
        if (try? store.saveContacts(heard)) == nil {
            // Kept for the next save unless a newer contact arrived meanwhile.
            for (node, contact) in heard { contacts.note(node, contact, unlessNewer: true) }
        }
        try? StorageErrors.map {
            try store.pool.write { db in
                try db.execute(sql: "DELETE FROM seen_request WHERE at < ?", arguments: [Int64(since)])
                for (key, at) in entries {
                    try db.execute(sql: "INSERT OR REPLACE INTO seen_request (key, at) VALUES (?, ?)", arguments: [key, Int64(at)])
                }
            }
        }
    }
}

/// Saves the replay cache every 10 seconds while `serve` runs, so that a crash loses only the
/// requests of the last interval.
public struct ReplayCacheKeeper: Service {
    let service: SyncService

    public init(service: SyncService) { self.service = service }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(10))
                service.saveReplayCache()
            }
        }
    }
}
