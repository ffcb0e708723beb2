import Crypto
import Foundation
import SyncProtocol

/// A node's Ed25519 key pair. The private key lives in `node.key` (mode 0600) beside the
/// database and never leaves the node.
public struct NodeKey: Sendable {
    public static let fileName = "node.key"

    /// The 32-byte private key (swift-crypto's key type is not Sendable, so it is made per use).
    private let secret: [UInt8]
    public let publicKey: PublicKeyText

    private init(_ key: Curve25519.Signing.PrivateKey) {
        secret = [UInt8](key.rawRepresentation)
        publicKey = PublicKeyText(bytes: [UInt8](key.publicKey.rawRepresentation))
    }

    private var privateKey: Curve25519.Signing.PrivateKey {
        // The bytes came from a valid key.
        try! Curve25519.Signing.PrivateKey(rawRepresentation: secret)
    }

    static func generate() -> NodeKey { NodeKey(Curve25519.Signing.PrivateKey()) }

    /// Writes the key file, refusing to overwrite one, readable by the owner only.
    func save(in directory: URL) throws(SyncNodeError) {
        try PrivateFile.create(directory.appendingPathComponent(Self.fileName), fileText)
    }

    /// The key file's content: the private key in hexadecimal.
    var fileText: [UInt8] { Array((Hex.string(privateKey.rawRepresentation) + "\n").utf8) }

    /// A key from a key file's content (a backup carries it); nil if it is not one.
    static func parse(_ text: [UInt8]) -> NodeKey? {
        let hex = String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = Hex.bytes(hex), let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: bytes) else { return nil }
        return NodeKey(key)
    }

    static func load(from directory: URL) throws(SyncNodeError) -> NodeKey {
        let path = directory.appendingPathComponent(Self.fileName).path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SyncNodeError(
                .notANode, "the node's key file \(path) is missing; restore it from the node's backup (without it the node cannot sign)")
        }
        guard let key = parse(Array(data)) else {
            throw SyncNodeError(.databaseCorrupt, "the key file \(path) is damaged; restore it from the node's backup")
        }
        return key
    }

    /// The X25519 key sealed bundles are opened with (see `SealKey`).
    var sealKey: Curve25519.KeyAgreement.PrivateKey { SealKey.privateKey(seed: secret) }

    func sign(_ message: [UInt8]) -> [UInt8] {
        // Signing with a valid Curve25519 key does not fail.
        (try? [UInt8](privateKey.signature(for: message))) ?? []
    }
}

/// An Ed25519 public key as 64 hex digits, with a short fingerprint for people to compare.
public struct PublicKeyText: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses 64 hex digits.
    public init?(hex: String) {
        guard let bytes = Hex.bytes(hex.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    public var hex: String { Hex.string(bytes) }
    public var description: String { hex }

    /// SHA-256 of the key, first 16 bytes, in groups of four hex digits: `3f2a-9c01-…`.
    public var fingerprint: String {
        let digest = Hex.string(SHA256.hash(data: bytes).prefix(16))
        return stride(from: 0, to: digest.count, by: 4).map { i in
            String(digest[digest.index(digest.startIndex, offsetBy: i)..<digest.index(digest.startIndex, offsetBy: i + 4)])
        }.joined(separator: "-")
    }

    /// Whether `signature` is this key's signature of `message`.
    public func verifies(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == 64, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: bytes) else { return false }
        return key.isValidSignature(signature, for: message)
    }
}

/// What is signed: a domain tag and the exact transaction bytes (or their digest), so a signature
/// over one kind of message can never be replayed as another.
enum SigningPayload {
    /// A version 2 (binary) transaction is signed through its SHA-256 digest: Ed25519 hashes its
    /// whole message twice with SHA-512, which cost more than encoding a large transaction, while
    /// SHA-256 runs in hardware. A version 1 (JSON) transaction, as older logs hold, was signed
    /// over its bytes. The tags differ, so neither signature can pass for the other.
    static func transaction(_ body: [UInt8]) -> [UInt8] {
        if WireCodec.isBinary(body) { return Array("syncnode-tx-v2\n".utf8) + Array(SHA256.hash(data: body)) }
        return Array("syncnode-tx-v1\n".utf8) + body
    }

    /// What a node signs to answer a request (`Syncnode-Answer-Signature`): the request's nonce
    /// (binding the answer to the request it answers), the SHA-256 of the answer's body as sent
    /// before any gzip, and the answering node's id.
    static func answer(nonce: String, bodyHash: String, node: NodeID) -> [UInt8] {
        Array("syncnode-answer-v1\n\(nonce)\n\(bodyHash)\n\(node.hex)".utf8)
    }

    /// What HQ signs to vouch for a pull response: the SHA-256 of its frames, each preceded by its
    /// length (4 bytes, big-endian), so no other sequence of frames has the same digest.
    /// Version 2 also covers HQ's verdicts: after the frames, each refused frame's index (4 bytes)
    /// and reason (its length, 4 bytes, then its UTF-8).
    static func vouch<Frame: Collection<UInt8>>(_ frames: [Frame], refused: [BatchHeader.RefusedFrame]) -> [UInt8] {
        var hash = SHA256()
        func word(_ n: Int) -> [UInt8] {
            let n = UInt32(truncatingIfNeeded: n)
            return [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
        }
        for frame in frames {
            hash.update(data: word(frame.count))
            hash.update(data: Array(frame))
        }
        for r in refused {
            hash.update(data: word(r.index))
            hash.update(data: word(r.reason.utf8.count))
            hash.update(data: Array(r.reason.utf8))
        }
        return Array("syncnode-vouch-v2\n".utf8) + Array(hash.finalize())
    }

    /// What the sender of a sealed bundle signs: the SHA-256 of its header line (which names the
    /// recipients and carries their wrapped keys) and of its encrypted body.
    static func bundle(headerLine: [UInt8], bodyDigest: [UInt8]) -> [UInt8] {
        Array("syncnode-bundle-v2\n".utf8) + Array(SHA256.hash(data: headerLine)) + bodyDigest
    }

    static func request(method: String, path: String, bodyHash: String, time: UInt64, nonce: String, node: NodeID) -> [UInt8] {
        Array("syncnode-req-v1\n\(method)\n\(path)\n\(bodyHash)\n\(time)\n\(nonce)\n\(node.hex)".utf8)
    }
}

/// Files only the node's user may read (the key, backups that hold it): created new with mode
/// 0600 and synced to disk before they count as written.
enum PrivateFile {
    /// Creates `file`; refuses one that exists.
    static func create(_ file: URL, _ bytes: [UInt8]) throws(SyncNodeError) {
        let fd = open(file.path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw SyncNodeError(.readOnly, "cannot create \(file.path) (errno \(errno)); check the directory") }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw SyncNodeError(.storage, "cannot write \(file.path) (errno \(errno))") }
            written += n
        }
        guard fsync(fd) == 0 else { throw SyncNodeError(.storage, "cannot write \(file.path) to disk (errno \(errno))") }
    }

    /// Writes `file` whole or not at all: a private temporary file beside it, renamed over it.
    static func replace(_ file: URL, _ bytes: [UInt8]) throws(SyncNodeError) {
        let temporary = file.deletingLastPathComponent().appendingPathComponent(".\(file.lastPathComponent).\(UUID().uuidString).partial")
        do {
            try create(temporary, bytes)
        } catch {
            unlink(temporary.path)
            throw error
        }
        guard rename(temporary.path, file.path) == 0 else {
            unlink(temporary.path)
            throw SyncNodeError(.readOnly, "cannot write \(file.path) (errno \(errno))")
        }
    }
}
