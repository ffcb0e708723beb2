import Crypto
import Foundation
import SyncProtocol

/// Signs HTTP requests with the calling node's key: `Syncnode-Node`, `Syncnode-Time`,
/// `Syncnode-Nonce` and `Syncnode-Signature` over method, path, body hash, time and nonce.
public struct RequestSigner: Sendable {
    let node: NodeID
    let key: NodeKey
    let clock: any WallClock

    public func headers(method: String, path: String, body: [UInt8]) -> [String: String] {
        let time = clock.nowMillis()
        var nonceBytes = [UInt8](repeating: 0, count: 16)
        var rng = SystemRandomNumberGenerator()
        for i in nonceBytes.indices { nonceBytes[i] = UInt8.random(in: 0...255, using: &rng) }
        let nonce = Hex.string(nonceBytes)
        let payload = SigningPayload.request(method: method, path: path, bodyHash: RequestAuth.hash(body), time: time, nonce: nonce, node: node)
        return [
            "Syncnode-Node": node.hex, "Syncnode-Time": String(time), "Syncnode-Nonce": nonce,
            "Syncnode-Signature": Data(key.sign(payload)).base64EncodedString(),
        ]
    }
}

extension Store {
    /// Signs this node's requests to its peers.
    public var requestSigner: RequestSigner { RequestSigner(node: info.nodeID, key: key, clock: clock) }
}

/// Remembers recent request nonces so a captured request cannot be replayed.
final class ReplayCache: @unchecked Sendable {
    private let lock = NSLock()
    private var seen: [String: UInt64] = [:]

    /// Records `nonce`; false if it was already seen. Forgets entries older than `window`.
    func admit(_ nonce: String, now: UInt64, window: UInt64) -> Bool {
        lock.withLock {
            if seen.count > 10_000 { seen = seen.filter { now < $0.value + window } }
            if let at = seen[nonce], now < at + window { return false }
            seen[nonce] = now
            return true
        }
    }
}

enum RequestAuth {
    static func hash(_ body: [UInt8]) -> String { Hex.string(SHA256.hash(data: body)) }
}

extension SyncService {
    /// Checks a request's signature, freshness and nonce, and that its node may talk to this one.
    /// A node in open mode (no trust anchor) accepts every request.
    public func authenticate(method: String, path: String, body: [UInt8], headers: [String: String]) throws(APIError) {
        guard let anchor = store.info.trustAnchor else { return }
        guard let nodeText = headers["syncnode-node"], let node = NodeID(hex: nodeText), let timeText = headers["syncnode-time"],
            let time = UInt64(timeText), let nonce = headers["syncnode-nonce"], nonce.utf8.count <= 64,
            let signatureText = headers["syncnode-signature"], let signature = Data(base64Encoded: signatureText)
        else {
            throw APIError(
                status: 401, code: "unauthenticated",
                message: "requests must be signed by the calling node (Syncnode-Node, -Time, -Nonce, -Signature)")
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
        let payload = SigningPayload.request(method: method, path: path, bodyHash: RequestAuth.hash(body), time: time, nonce: nonce, node: node)
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
                throw APIError(status: 401, code: "bad_signature", message: "the request signature does not verify for node \(entry.label)")
            }
        } else if !anchor.verifies([UInt8](signature), for: payload) {
            throw APIError(
                status: 401, code: "unknown_node",
                message:
                    "node \(node.hex) is not in this node's registry; approve it at HQ (`syncnode node approve`) and let the registry reach this node"
            )
        }
        guard replayCache.admit(node.hex + nonce, now: now, window: 2 * store.maxDriftMillis) else {
            throw APIError(status: 401, code: "replayed_request", message: "this request was already received; a request cannot be replayed")
        }
    }
}
