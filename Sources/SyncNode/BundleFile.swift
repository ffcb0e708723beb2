import Crypto
import Foundation
import SyncProtocol

/// The file that carries transactions between nodes with no network (a USB stick).
///
/// Layout (version 1):
/// ```
/// SYNCNODE-BUNDLE 1\n
/// <header JSON>\n
/// sha256 <64 hex digits over header line + "\n" + body>\n
/// <body: gzip of frames "<decimal length>\n<transaction bytes>\n" (see `BatchCodec`)>
/// ```
/// A bundle is checked whole (magic, version, checksum, gzip, frame count, every transaction)
/// before anything is applied; import of a bundle already imported changes nothing.
public struct BundleFile: Sendable {
    public static let magic = "SYNCNODE-BUNDLE"
    public static let formatVersion = 1
    /// Largest uncompressed body read from a bundle.
    public static let maxBodyBytes = 4 << 30

    public struct Header: Codable, Sendable, Equatable {
        public var format: Int
        public var protocolVersion: Int
        public var from: NodeID
        public var site: String
        public var label: String
        public var created: UInt64
        /// The vector the bundle was made for (transactions beyond it are inside).
        public var since: VersionVector
        /// The exporter's vector when the bundle was made.
        public var vector: VersionVector
        public var transactions: Int

        public init(
            format: Int, protocolVersion: Int, from: NodeID, site: String, label: String, created: UInt64, since: VersionVector,
            vector: VersionVector, transactions: Int
        ) {
            self.format = format
            self.protocolVersion = protocolVersion
            self.from = from
            self.site = site
            self.label = label
            self.created = created
            self.since = since
            self.vector = vector
            self.transactions = transactions
        }
    }

    public var header: Header
    public var transactions: [ReceivedTransaction]

    /// Encodes the bundle file bytes.
    public func encoded() throws -> [UInt8] {
        try Self.encode(header: header, frames: transactions.map(\.frame))
    }

    /// Encodes a bundle from frames as the log stores them (no decoding on export).
    static func encode(header: Header, frames: [[UInt8]]) throws -> [UInt8] {
        let body = Array(BatchCodec.encode(header: [], frames: frames).dropFirst())
        let headerLine = try WireCodec.encodeMessage(header)
        let compressed = Gzip.compress(body)
        var out = Array("\(Self.magic) \(Self.formatVersion)\n".utf8)
        out += headerLine
        out.append(0x0A)
        out += Array("sha256 \(Self.checksum(headerLine: headerLine, body: compressed))\n".utf8)
        out += compressed
        return out
    }

    static func checksum(headerLine: [UInt8], body: [UInt8]) -> String {
        var hasher = SHA256()
        hasher.update(data: headerLine)
        hasher.update(data: [0x0A])
        hasher.update(data: body)
        return Hex.string(hasher.finalize())
    }

    /// Parses and verifies bundle bytes. Throws `corruptBundle` with what is wrong.
    public init(decoding bytes: [UInt8], maxValueBytes: Int = StoreLimits().maxValueBytes) throws(SyncNodeError) {
        func corrupt(_ why: String) -> SyncNodeError {
            SyncNodeError(.corruptBundle, "the bundle is not usable: \(why). Nothing was imported; export it again from the sending node")
        }
        var lines: [ArraySlice<UInt8>] = []
        var rest = bytes[...]
        for _ in 0..<3 {
            guard let nl = rest.firstIndex(of: 0x0A) else { throw corrupt("it is truncated (incomplete header)") }
            lines.append(rest[rest.startIndex..<nl])
            rest = rest[(nl + 1)...]
        }
        let first = String(decoding: lines[0], as: UTF8.self)
        guard first.hasPrefix(Self.magic + " ") else { throw corrupt("it is not a syncnode bundle") }
        guard first == "\(Self.magic) \(Self.formatVersion)" else {
            throw corrupt(
                "it has format '\(first.dropFirst(Self.magic.count + 1).prefix(20))', this node reads format \(Self.formatVersion); upgrade this node"
            )
        }
        let sumLine = String(decoding: lines[2], as: UTF8.self)
        guard sumLine.hasPrefix("sha256 ") else { throw corrupt("the checksum line is missing") }
        let body = Array(rest)
        guard Self.checksum(headerLine: Array(lines[1]), body: body) == sumLine.dropFirst(7) else {
            throw corrupt("its checksum does not match (truncated or damaged in transit)")
        }
        let header: Header
        do {
            header = try WireCodec.decodeMessage(Header.self, from: lines[1])
        } catch {
            throw corrupt("its header cannot be read")
        }
        let plain: [UInt8]
        do {
            plain = try Gzip.decompress(body, maxSize: Self.maxBodyBytes)
        } catch {
            throw corrupt("its body is not valid gzip")
        }
        let frames: [ArraySlice<UInt8>]
        do {
            frames = try BatchCodec.frames(plain[...])
        } catch {
            throw corrupt("its body is malformed: \(error)")
        }
        var transactions: [ReceivedTransaction] = []
        for frame in frames {
            do {
                transactions.append(try ReceivedTransaction(frame: frame))
            } catch {
                throw corrupt("transaction \(transactions.count + 1) is malformed: \(error.message)")
            }
        }
        guard transactions.count == header.transactions else {
            throw corrupt("it holds \(transactions.count) transactions but its header says \(header.transactions)")
        }
        self.header = header
        self.transactions = transactions
    }

    public init(header: Header, transactions: [ReceivedTransaction]) {
        self.header = header
        self.transactions = transactions
    }
}

/// What exporting or importing a bundle did.
public struct BundleReport: Sendable, Equatable {
    public var transactions: Int
    public var bytes: Int
    public var apply: ApplyReport?
}

extension Store {
    /// Writes a bundle of every transaction `since` lacks to `file`, atomically (a temporary file
    /// renamed into place, so a half-written bundle never exists under the final name).
    public func exportBundle(to file: URL, since: VersionVector = VersionVector()) throws(SyncNodeError) -> BundleReport {
        let missing = try frames(missingFrom: since).frames
        let header = BundleFile.Header(
            format: BundleFile.formatVersion, protocolVersion: WireCodec.protocolVersion, from: info.nodeID, site: info.site,
            label: info.label, created: clock.nowMillis(), since: since, vector: try vector(), transactions: missing.count)
        let bytes: [UInt8]
        do {
            bytes = try BundleFile.encode(header: header, frames: missing)
        } catch {
            throw SyncNodeError(.storage, "cannot encode the bundle: \(error)")
        }
        let temp = file.deletingLastPathComponent().appendingPathComponent(".\(file.lastPathComponent).partial")
        do {
            try Data(bytes).write(to: temp)
            if FileManager.default.fileExists(atPath: file.path) { try FileManager.default.removeItem(at: file) }
            try FileManager.default.moveItem(at: temp, to: file)
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw SyncNodeError(.readOnly, "cannot write the bundle to \(file.path): \(error.localizedDescription)")
        }
        return BundleReport(transactions: missing.count, bytes: bytes.count, apply: nil)
    }

    /// Verifies a bundle file whole, then applies its transactions. Importing twice is a no-op.
    public func importBundle(from file: URL) throws(SyncNodeError) -> BundleReport {
        let data: Data
        do {
            data = try Data(contentsOf: file)
        } catch {
            throw SyncNodeError(.invalidInput, "cannot read the bundle \(file.path): \(error.localizedDescription)")
        }
        let bundle = try BundleFile(decoding: [UInt8](data), maxValueBytes: limits.maxValueBytes)
        let report = try apply(bundle.transactions)
        return BundleReport(transactions: bundle.transactions.count, bytes: data.count, apply: report)
    }
}
