import Crypto
import Foundation
import SyncNode
import SyncProtocol

/// What an attacker can do from outside: read a node's key file (its own node, or one it stole)
/// and speak the documented wire format (docs/PROTOCOL.md) to a real server over libcurl. It signs
/// exactly as the protocol says, so what it sends is correctly signed; the node must still judge it.
struct Forger {
    let node: NodeID
    let key: Curve25519.Signing.PrivateKey
    let client = CurlClient()

    /// The key and id of the node in `data`.
    init(data: String) throws {
        let hex = try String(contentsOfFile: data + "/node.key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        key = try Curve25519.Signing.PrivateKey(rawRepresentation: Hex.bytes(hex)!)
        node = NodeID(hex: try Federation.identity(data)["node"] as? String ?? "")!
    }

    /// A key of a node nobody approved.
    init() {
        key = Curve25519.Signing.PrivateKey()
        var rng = SystemRandomNumberGenerator()
        node = NodeID.random(using: &rng)
    }

    /// `transaction` signed as its origin signs (`"syncnode-tx-v2\n"` + SHA-256 of the bytes).
    func signed(_ transaction: Transaction) throws -> ReceivedTransaction {
        let body = WireCodec.encode(transaction)
        let payload = Array("syncnode-tx-v2\n".utf8) + Array(SHA256.hash(data: body))
        var item = try ReceivedTransaction(body: body)
        item.signature = [UInt8](try key.signature(for: payload))
        return item
    }

    /// A transaction of this forger's node.
    func transaction(seq: UInt64, millis: UInt64, _ changes: [Change]) throws -> ReceivedTransaction {
        try signed(Transaction(origin: node, seq: seq, hlc: Timestamp(millis: millis, counter: 0, node: node), changes: changes))
    }

    /// A version 2 refusal statement (`K` frame) standing for `origin`'s transaction `seq`.
    static func refusalFrame(origin: NodeID, seq: UInt64, reason: String, by: String) -> [UInt8] {
        let clock = String(format: "%016llx", 1_700_000_000_000 << 16)
        let json = #"{"by":"\#(by)","o":"\#(origin.hex)","r":"\#(reason)","s":\#(seq),"t":"\#(clock)"}"#
        return [UInt8(ascii: "K")] + Array(json.utf8)
    }

    /// Headers of a request signed by this forger's node.
    func headers(method: String, path: String, body: [UInt8]) throws -> [String: String] {
        let time = UInt64(Date().timeIntervalSince1970 * 1000)
        let nonce = Hex.string((0..<16).map { _ in UInt8.random(in: 0...255) })
        let hash = Hex.string(SHA256.hash(data: body))
        let payload = Array("syncnode-req-v1\n\(method)\n\(path)\n\(hash)\n\(time)\n\(nonce)\n\(node.hex)".utf8)
        return [
            "Syncnode-Node": node.hex, "Syncnode-Time": String(time), "Syncnode-Nonce": nonce, "Syncnode-Body-SHA256": hash,
            "Syncnode-Signature": Data(try key.signature(for: payload)).base64EncodedString(),
        ]
    }

    /// Pushes `frames` to the server at `url`, under a header that says it comes from `claimed`.
    func push(_ url: String, frames: [[UInt8]], claimed: PeerIdentity? = nil) async throws -> (status: Int, body: [UInt8]) {
        let from = claimed ?? PeerIdentity(node: node, site: "x", label: "x")
        // Version 2 message bodies are still read, so the same attack runs against older servers.
        let header = BatchHeader(
            protocolVersion: 2, from: from, count: frames.count, more: false, clock: UInt64(Date().timeIntervalSince1970 * 1000))
        let body = BatchCodec.encode(header: try WireCodec.encodeMessage(header), frames: frames)
        let result = try await client.send(
            method: "POST", url: url + "/v1/push", headers: try headers(method: "POST", path: "/v1/push", body: body), body: body)
        return (result.status, result.body)
    }

    /// Pulls from the server at `url` with a request that says it comes from `claimed`.
    func pull(_ url: String, vector: VersionVector = VersionVector(), claimed: PeerIdentity? = nil) async throws -> (status: Int, body: [UInt8]) {
        let from = claimed ?? PeerIdentity(node: node, site: "x", label: "x")
        let body = try WireCodec.encodeMessage(PullRequest(protocolVersion: 2, from: from, vector: vector, maxTransactions: 100, maxBytes: 1 << 20))
        let result = try await client.send(
            method: "POST", url: url + "/v1/pull", headers: try headers(method: "POST", path: "/v1/pull", body: body), body: body)
        return (result.status, result.body)
    }

    /// A correctly checksummed bundle holding `frames`, whose header claims whatever the forger likes.
    static func bundle(frames: [[UInt8]], claimedFrom: NodeID, label: String) throws -> [UInt8] {
        let header = BundleFile.Header(
            format: 1, protocolVersion: 2, from: claimedFrom, site: "hq", label: label, created: 0, since: VersionVector(),
            vector: VersionVector(), transactions: frames.count)
        return try BundleFile(header: header, transactions: frames.map { try ReceivedTransaction(frame: $0) }).encoded()
    }
}

/// Runs the binary and returns its JSON output.
func jsonOutput(_ args: [String]) throws -> Any? {
    let r = try Binary.run(args)
    return try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8), options: [.fragmentsAllowed])
}
