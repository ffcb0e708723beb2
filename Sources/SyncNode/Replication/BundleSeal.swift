import Crypto
import Foundation
import SyncProtocol

/// A sealed bundle (format 2): what a lost USB stick shows to whoever finds it is its header (which
/// nodes, how many transactions), never the programme's data.
///
/// ```
/// SYNCNODE-BUNDLE 2\n
/// <header JSON, with `seal`: the sender's key and, per recipient, the bundle key sealed to it>\n
/// ed25519 <128 hex digits: the sender's signature, see `SigningPayload.bundle`>\n
/// <body: the format 1 body (gzip of frames), encrypted in chunks of 1 MiB>
/// ```
/// A random 256-bit bundle key encrypts the body with ChaCha20-Poly1305, one chunk at a time; the
/// nonce is the chunk's number and whether it is the last, so chunks cannot be reordered, dropped or
/// cut short. The bundle key is sealed to each recipient with HPKE (X25519, HKDF-SHA256,
/// ChaCha20-Poly1305) under the recipient's `SealKey`. The sender signs the header line and the
/// encrypted body; a receiver checks that signature over the whole file before it decrypts or
/// applies anything, so an altered bundle is refused whole.
extension BundleFile {
    public static let sealedFormatVersion = 2

    /// Who sealed a bundle and, for each recipient, the bundle key sealed to it.
    public struct Seal: Codable, Sendable, Equatable {
        /// The sender's Ed25519 public key, hex.
        public var sender: String
        public var recipients: [Recipient]

        public struct Recipient: Codable, Sendable, Equatable {
            /// The recipient's Ed25519 public key (hex), as the registry lists it.
            public var key: String
            public var label: String
            /// HPKE's encapsulated key and the bundle key sealed under it, hex.
            public var encapsulated: String
            public var sealedKey: String
        }
    }

    /// Encodes a sealed bundle of `frames` for `recipients`, signed with `signer`.
    static func encodeSealed(header: Header, frames: [[UInt8]], for recipients: [BundleRecipient], signer: NodeKey) throws -> [UInt8] {
        let body = Array(BatchCodec.encode(header: [], frames: frames).dropFirst())
        let bundleKey = SymmetricKey(size: .bits256)
        var header = header
        header.format = sealedFormatVersion
        header.seal = Seal(sender: signer.publicKey.hex, recipients: try recipients.map { try BundleCipher.wrap(bundleKey, for: $0) })
        let headerLine = try WireCodec.encodeMessage(header)
        let sealed = try BundleCipher.encrypt(Gzip.compress(body), with: bundleKey)
        let signature = signer.sign(SigningPayload.bundle(headerLine: headerLine, bodyDigest: Array(SHA256.hash(data: sealed))))
        return file(format: sealedFormatVersion, headerLine: headerLine, proof: "ed25519 \(Hex.string(signature))", body: sealed)
    }
}

/// A node a bundle is sealed for.
public struct BundleRecipient: Sendable, Equatable {
    public var key: PublicKeyText
    public var label: String

    public init(key: PublicKeyText, label: String) {
        self.key = key
        self.label = label
    }
}

/// The cipher of a sealed bundle's body and of its bundle key.
enum BundleCipher {
    /// Plaintext bytes per chunk; every chunk but the last holds exactly this many.
    static let chunkBytes = 1 << 20
    static let tagBytes = 16
    static var suite: HPKE.Ciphersuite { .Curve25519_SHA256_ChachaPoly }

    /// HPKE's context string: binds the sealed key to the recipient it was sealed for.
    static func info(for key: PublicKeyText) -> Data { Data("syncnode-bundle-v2 \(key.hex)".utf8) }

    static func wrap(_ bundleKey: SymmetricKey, for recipient: BundleRecipient) throws -> BundleFile.Seal.Recipient {
        guard let agreement = SealKey.publicKey(recipient.key) else {
            throw SyncNodeError(.invalidInput, "the registry's key for \(recipient.label) is not a usable public key; nothing was written")
        }
        var sender = try HPKE.Sender(recipientKey: agreement, ciphersuite: suite, info: info(for: recipient.key))
        let sealed = try bundleKey.withUnsafeBytes { try sender.seal(Data($0)) }
        return .init(
            key: recipient.key.hex, label: recipient.label, encapsulated: Hex.string(sender.encapsulatedKey), sealedKey: Hex.string(sealed))
    }

    /// The bundle key sealed to `node`, opened with its key; nil if it does not open.
    static func unwrap(_ entry: BundleFile.Seal.Recipient, with node: NodeKey) -> SymmetricKey? {
        guard let encapsulated = Hex.bytes(entry.encapsulated), let sealed = Hex.bytes(entry.sealedKey),
            var recipient = try? HPKE.Recipient(
                privateKey: node.sealKey, ciphersuite: suite, info: info(for: node.publicKey), encapsulatedKey: Data(encapsulated)),
            let key = try? recipient.open(sealed), key.count == 32
        else { return nil }
        return SymmetricKey(data: key)
    }

    /// Chunk `index`'s nonce: its number (8 bytes, big-endian), three zero bytes, then 1 for the
    /// last chunk and 0 for any other.
    static func nonce(_ index: UInt64, last: Bool) -> ChaChaPoly.Nonce {
        var bytes = (0..<8).map { UInt8(truncatingIfNeeded: index >> (8 * (7 - UInt64($0)))) }
        bytes += [0, 0, 0, last ? 1 : 0]
        // 12 bytes always make a nonce.
        return try! ChaChaPoly.Nonce(data: bytes)
    }

    /// The body in chunks; the last one always holds less than `chunkBytes` (possibly nothing).
    static func encrypt(_ plain: [UInt8], with key: SymmetricKey) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(plain.count + (plain.count / chunkBytes + 1) * tagBytes)
        var start = 0
        var index: UInt64 = 0
        while true {
            let end = min(start + chunkBytes, plain.count)
            let last = end - start < chunkBytes
            let box = try ChaChaPoly.seal(plain[start..<end], using: key, nonce: nonce(index, last: last))
            out += box.ciphertext
            out += box.tag
            if last { return out }
            start = end
            index += 1
        }
    }

    /// Decrypts a sealed body as it is read, a chunk at a time.
    final class Reader {
        private let key: SymmetricKey
        private let read: (Int) throws(SyncNodeError) -> [UInt8]
        private var index: UInt64 = 0
        private var done = false

        init(key: SymmetricKey, read: @escaping (Int) throws(SyncNodeError) -> [UInt8]) {
            self.key = key
            self.read = read
        }

        /// The next chunk's plaintext; empty after the last.
        func next() throws(SyncNodeError) -> [UInt8] {
            if done { return [] }
            let sealed = try read(chunkBytes + tagBytes)
            let last = sealed.count < chunkBytes + tagBytes
            guard sealed.count >= tagBytes,
                let box = try? ChaChaPoly.SealedBox(
                    nonce: nonce(index, last: last), ciphertext: sealed.dropLast(tagBytes), tag: sealed.suffix(tagBytes)),
                let plain = try? ChaChaPoly.open(box, using: key)
            else {
                throw BundleFile.corrupt("its sealed body does not decrypt at chunk \(index + 1) (truncated or altered)")
            }
            done = last
            index += 1
            return [UInt8](plain)
        }
    }
}

extension Store {
    /// The nodes a sealed bundle is made for: HQ always, then each node named by its label, site or
    /// id, or every node the registry lists and has not revoked for "all". With no name, HQ's bundle
    /// is for every node and a county's for HQ. This node is never among them.
    public func bundleRecipients(named names: [String]) throws(SyncNodeError) -> [BundleRecipient] {
        guard let anchor = info.trustAnchor else {
            throw SyncNodeError(.invalidInput, "this node has no trust anchor, so it knows no other node's key to seal a bundle to")
        }
        let live = try registry().filter { $0.revokedAt == nil }
        var out: [BundleRecipient] = []
        func add(_ key: PublicKeyText, _ label: String) {
            if key != info.publicKey, !out.contains(where: { $0.key == key }) { out.append(BundleRecipient(key: key, label: label)) }
        }
        add(anchor, live.first { $0.key == anchor }?.label ?? "HQ")
        for name in names.isEmpty && isAnchor ? ["all"] : names {
            let wanted = name.trimmingCharacters(in: .whitespaces).lowercased()
            if wanted == "all" {
                for entry in live { add(entry.key, entry.label) }
                continue
            }
            let matches = live.filter { [$0.node.hex, $0.label.lowercased(), $0.site.lowercased()].contains(wanted) }
            guard !matches.isEmpty else {
                let known = live.filter { $0.key != info.publicKey }.map(\.label).sorted().joined(separator: ", ")
                throw SyncNodeError(
                    .notFound,
                    "no node named '\(name)' in this node's registry (nodes it knows: \(known.isEmpty ? "none yet" : known)); a node is named by its label, its site or its id, and a revoked node is not sealed to"
                )
            }
            for entry in matches { add(entry.key, entry.label) }
        }
        guard !out.isEmpty else {
            throw SyncNodeError(.invalidInput, "no other node is in this node's registry yet, so there is no one to seal the bundle to")
        }
        return out
    }

    /// The key that must have signed a sealed bundle: the registry's key for its sender. A sender
    /// the registry does not list yet (HQ before its entry arrives, a node not yet approved bringing
    /// its first work) is checked against the key it names: that still proves the file was not
    /// altered since it was sealed, and each transaction inside is judged on its own signature (a
    /// stranger's work is held until HQ approves it).
    func bundleSigner(_ header: BundleFile.Header, _ seal: BundleFile.Seal) throws(SyncNodeError) -> PublicKeyText {
        if let entry = try read({ db in try Self.registryEntry(db, header.from) }) { return entry.key }
        guard let claimed = PublicKeyText(hex: seal.sender) else { throw BundleFile.corrupt("its sender's key is malformed") }
        return claimed
    }
}
