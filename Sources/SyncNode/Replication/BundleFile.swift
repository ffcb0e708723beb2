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
/// Import checks the checksum over the whole file before applying anything, then reads the body
/// as a stream (see `Store.importBundle`); import of a bundle already imported changes nothing.
/// Bundles are sealed to their recipients unless their exporter asks otherwise: format 2, see
/// `BundleSeal.swift`. Format 1 is written only on request and is always read.
public struct BundleFile: Sendable {
    public static let magic = "SYNCNODE-BUNDLE"
    public static let formatVersion = 1
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
        /// A sealed bundle's sender and recipients (format 2 only).
        public var seal: Seal?
        /// The attached files after the transactions, in this order, each as frames of at most
        /// `filePartBytes` (absent: none). Each is checked against its SHA-256 on import.
        public var files: [FileEntry]?

        public init(
            format: Int, protocolVersion: Int, from: NodeID, site: String, label: String, created: UInt64, since: VersionVector,
            vector: VersionVector, transactions: Int, seal: Seal? = nil
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
            self.seal = seal
        }
    }

    /// An attached file carried in a bundle.
    public struct FileEntry: Codable, Sendable, Equatable {
        public var sha256: String
        public var bytes: Int

        public init(sha256: String, bytes: Int) {
            self.sha256 = sha256
            self.bytes = bytes
        }
    }

    /// Bytes of a file in one frame of a bundle.
    static let filePartBytes = 1 << 20
    /// Most bytes of attached files a bundle carries unless asked otherwise (a USB stick's share).
    /// (The bundle is made in memory: this bounds what export holds, about twice this.)
    public static let defaultMaxFileBytes = 128 << 20

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
        return file(
            format: formatVersion, headerLine: headerLine, proof: "sha256 \(checksum(headerLine: headerLine, body: compressed))", body: compressed)
    }

    /// The file of either format: its magic line, header line, proof line (checksum or signature), body.
    static func file(format: Int, headerLine: [UInt8], proof: String, body: [UInt8]) -> [UInt8] {
        Array("\(magic) \(format)\n".utf8) + headerLine + [0x0A] + Array("\(proof)\n".utf8) + body
    }

    static func checksum(headerLine: [UInt8], body: [UInt8]) -> String {
        var hasher = SHA256()
        hasher.update(data: headerLine)
        hasher.update(data: [0x0A])
        hasher.update(data: body)
        return Hex.string(hasher.finalize())
    }

    /// The three lines before a bundle's body: its header, the header line's bytes, the checksum
    /// (format 1) or signature (format 2) it declares and where the body starts.
    struct Prelude {
        var header: Header
        var headerLine: [UInt8]
        var checksum: Substring
        var bodyOffset: Int
        /// A sealed bundle's seal and its sender's signature.
        var seal: (seal: Seal, signature: [UInt8])?
    }

    static func corrupt(_ why: String) -> SyncNodeError {
        SyncNodeError(.corruptBundle, "the bundle is not usable: \(why). Nothing was imported; export it again from the sending node")
    }

    /// Largest header line read (a vector of thousands of origins fits many times over).
    static let maxHeaderBytes = 1 << 20
    /// Largest frame (one transaction) read from a bundle.
    static let maxFrameBytes = 64 << 20

    /// Reads the magic, header and checksum lines from the start of a bundle.
    static func prelude(_ bytes: ArraySlice<UInt8>) throws(SyncNodeError) -> Prelude {
        var lines: [ArraySlice<UInt8>] = []
        var rest = bytes
        for _ in 0..<3 {
            guard let nl = rest.prefix(maxHeaderBytes + 1).firstIndex(of: 0x0A) else { throw corrupt("it is truncated (incomplete header)") }
            lines.append(rest[rest.startIndex..<nl])
            rest = rest[(nl + 1)...]
        }
        let first = String(decoding: lines[0], as: UTF8.self)
        guard first.hasPrefix(Self.magic + " ") else { throw corrupt("it is not a syncnode bundle") }
        let sealed = first == "\(Self.magic) \(Self.sealedFormatVersion)"
        guard sealed || first == "\(Self.magic) \(Self.formatVersion)" else {
            throw corrupt(
                "it has format '\(first.dropFirst(Self.magic.count + 1).prefix(20))', this node reads formats \(Self.formatVersion) and \(Self.sealedFormatVersion); upgrade this node"
            )
        }
        let sumLine = String(decoding: lines[2], as: UTF8.self)
        let proofTag = sealed ? "ed25519 " : "sha256 "
        guard sumLine.hasPrefix(proofTag) else { throw corrupt(sealed ? "the sender's signature is missing" : "the checksum line is missing") }
        let header: Header
        do {
            header = try WireCodec.decodeMessage(Header.self, from: lines[1])
        } catch {
            throw corrupt("its header cannot be read")
        }
        guard header.protocolVersion <= WireCodec.protocolVersion else {
            throw corrupt(
                "it was made by protocol version \(header.protocolVersion); this node speaks \(WireCodec.protocolVersion). Upgrade this node")
        }
        var seal: (Seal, [UInt8])?
        if sealed {
            guard let found = header.seal, !found.recipients.isEmpty, let signature = Hex.bytes(String(sumLine.dropFirst(proofTag.count))),
                signature.count == 64
            else { throw corrupt("it is sealed but its header or signature is malformed") }
            seal = (found, signature)
        }
        return Prelude(
            header: header, headerLine: Array(lines[1]), checksum: sumLine.dropFirst(proofTag.count), bodyOffset: rest.startIndex - bytes.startIndex,
            seal: seal)
    }

    /// Parses and verifies bundle bytes held in memory. Throws `corruptBundle` with what is wrong.
    public init(decoding bytes: [UInt8], maxValueBytes: Int = StoreLimits().maxValueBytes) throws(SyncNodeError) {
        let prelude = try Self.prelude(bytes[...])
        if prelude.seal != nil { throw Self.corrupt("it is sealed: only a node it was sealed for opens it, when it imports it") }
        let body = Array(bytes[prelude.bodyOffset...])
        guard Self.checksum(headerLine: prelude.headerLine, body: body) == prelude.checksum else {
            throw Self.corrupt("its checksum does not match (truncated or damaged in transit)")
        }
        let plain: [UInt8]
        do {
            plain = try Gzip.decompress(body, maxSize: Self.maxInflatedBytes(compressed: body.count))
        } catch {
            throw Self.corrupt("its body \(error.description)")
        }
        var reader = BatchCodec.FrameReader(maxFrameBytes: Self.maxFrameBytes)
        reader.feed(plain)
        var transactions: [ReceivedTransaction] = []
        do {
            while let frame = try reader.next() { transactions.append(try Self.transaction(frame, number: transactions.count + 1)) }
            try reader.finish()
        } catch let error as WireError {
            throw Self.corrupt("its body is malformed: \(error)")
        } catch {
            throw error as! SyncNodeError
        }
        guard transactions.count == prelude.header.transactions else {
            throw Self.corrupt("it holds \(transactions.count) transactions but its header says \(prelude.header.transactions)")
        }
        self.header = prelude.header
        self.transactions = transactions
    }

    /// The most a bundle body of `compressed` bytes may inflate to: far above what transactions
    /// compress by (about 5 to 1), far below what a crafted stream can (about 1,000 to 1).
    static func maxInflatedBytes(compressed: Int) -> Int { 64 << 20 + 100 * compressed }

    static func transaction(_ frame: [UInt8], number: Int) throws(SyncNodeError) -> ReceivedTransaction {
        do {
            return try ReceivedTransaction(frame: frame)
        } catch {
            throw corrupt("transaction \(number) is malformed: \(error.description)")
        }
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
    /// The labels of the nodes a bundle was sealed for; empty for a readable bundle.
    public var sealedFor: [String] = []
    /// Attached files written (export) or kept, checked against their names (import).
    public var files = 0
    public var fileBytes = 0
    /// On export: files of the bundle's records left out (past the bound, or not held here);
    /// they travel by a sync or a later bundle. On import: files refused (damaged, not named by
    /// a record, past a limit).
    public var filesLeftOut = 0
}

/// How far a bundle import or export is.
public struct BundleProgress: Sendable {
    /// What is being done: checking the checksum, applying, reading the log, compressing, writing.
    public var stage: String
    /// Transactions done of `total` (those applied, already held, held or refused, on import).
    public var done: Int
    public var total: Int
    /// Bytes of the file read or written so far, of `totalBytes` (0 when not known yet).
    public var bytes: Int
    public var totalBytes: Int
    public var seconds: Double = 0

    public init(stage: String, done: Int, total: Int, bytes: Int, totalBytes: Int) {
        self.stage = stage
        self.done = done
        self.total = total
        self.bytes = bytes
        self.totalBytes = totalBytes
    }

    /// "applying: 1200 of 5000 transactions, 3.1 of 9.8 MB, 850/s, about 4 s left".
    public var description: String {
        let size = totalBytes > 0 ? "\(ByteText.describe(bytes)) of \(ByteText.describe(totalBytes))" : ByteText.describe(bytes)
        return "\(stage): \(done) of \(total) transactions, \(size)" + WorkRate.describe(done: done, total: total, seconds: seconds)
    }
}

extension Store {
    /// Writes a bundle of every transaction `since` lacks to `file`, atomically (a temporary file
    /// renamed into place, so a half-written bundle never exists under the final name): sealed for
    /// `recipients` (see `bundleRecipients(named:)`), or readable by anyone when that is nil.
    public func exportBundle(
        to file: URL, since: VersionVector = VersionVector(), sealedFor recipients: [BundleRecipient]?,
        maxFileBytes: Int = BundleFile.defaultMaxFileBytes, progress: ((BundleProgress) -> Void)? = nil
    ) throws(SyncNodeError) -> BundleReport {
        let missing = try frames(missingFrom: since).frames
        let frameBytes = missing.reduce(0) { $0 + $1.count }
        let (files, parts, leftOut) = try bundledFiles(of: missing, maxBytes: maxFileBytes)
        progress?(
            BundleProgress(stage: "compressing", done: missing.count, total: missing.count, bytes: frameBytes, totalBytes: 0))
        var header = BundleFile.Header(
            format: BundleFile.formatVersion, protocolVersion: WireCodec.protocolVersion, from: info.nodeID, site: info.site,
            label: info.label, created: clock.nowMillis(), since: since, vector: try vector(), transactions: missing.count)
        if !files.isEmpty { header.files = files }
        let bytes: [UInt8]
        do {
            if let recipients {
                bytes = try BundleFile.encodeSealed(header: header, frames: missing + parts, for: recipients, signer: key)
            } else {
                bytes = try BundleFile.encode(header: header, frames: missing + parts)
            }
        } catch let error as SyncNodeError {
            throw error
        } catch {
            throw SyncNodeError(.storage, "cannot encode the bundle: \(error)")
        }
        progress?(BundleProgress(stage: "writing", done: missing.count, total: missing.count, bytes: bytes.count, totalBytes: 0))
        let temp = file.deletingLastPathComponent().appendingPathComponent(".\(file.lastPathComponent).partial")
        do {
            try Data(bytes).write(to: temp)
            if FileManager.default.fileExists(atPath: file.path) { try FileManager.default.removeItem(at: file) }
            try FileManager.default.moveItem(at: temp, to: file)
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw SyncNodeError(.readOnly, "cannot write the bundle to \(file.path): \(error.localizedDescription)")
        }
        var report = BundleReport(transactions: missing.count, bytes: bytes.count, apply: nil, sealedFor: recipients?.map(\.label) ?? [])
        report.files = files.count
        report.fileBytes = files.reduce(0) { $0 + $1.bytes }
        report.filesLeftOut = leftOut
        return report
    }

    /// The attached files of the bundle's records that are held here, in the bundle's order, as
    /// frames, up to `maxBytes` in all; and how many were left out.
    private func bundledFiles(of frames: [[UInt8]], maxBytes: Int) throws(SyncNodeError) -> ([BundleFile.FileEntry], [[UInt8]], Int) {
        var named: [String] = []
        for frame in frames {
            guard let t = try? ReceivedTransaction(frame: frame) else { continue }
            for case .set(let w) in t.transaction.changes where w.collection == Attachment.collection {
                if let sha = Attachment.Reference(attachmentID: w.recordID)?.sha256, !named.contains(sha) { named.append(sha) }
            }
        }
        var entries: [BundleFile.FileEntry] = []
        var parts: [[UInt8]] = []
        var total = 0
        var leftOut = 0
        for sha in named {
            guard let size = self.files.size(sha), total + size <= maxBytes else {
                leftOut += 1
                continue
            }
            var offset = 0
            while offset < size {
                let part = try self.files.read(sha, offset: offset, maxBytes: BundleFile.filePartBytes)
                guard !part.isEmpty else { break }
                parts.append(part)
                offset += part.count
            }
            total += size
            entries.append(BundleFile.FileEntry(sha256: sha, bytes: size))
        }
        return (entries, parts, leftOut)
    }

    /// Verifies a bundle file's checksum, then reads it as a stream and applies its transactions a
    /// batch at a time: memory stays bounded whatever the file holds. Importing twice is a no-op.
    /// A malformed transaction inside a correctly checksummed bundle (made by a faulty or hostile
    /// exporter) stops the import there; what was applied before it stays, each transaction whole.
    public func importBundle(from file: URL, progress: ((BundleProgress) -> Void)? = nil) throws(SyncNodeError) -> BundleReport {
        let input = try BundleInput(file)
        defer { input.close() }
        let prelude = try BundleFile.prelude([UInt8](try input.read(3 * BundleFile.maxHeaderBytes))[...])
        // Whether this node can open a sealed bundle is known from its header: said before the body is read.
        let opening = try prelude.seal.map { (seal, _) throws(SyncNodeError) in
            guard let mine = seal.recipients.first(where: { $0.key == info.publicKey.hex }) else {
                throw SyncNodeError(
                    .notForThisNode,
                    "this bundle is sealed for \(seal.recipients.map(\.label).joined(separator: ", ")); this node (\(info.label)) is not among them and cannot open it. Nothing was imported; ask the sender to export it again for this node"
                )
            }
            return (mine, try bundleSigner(prelude.header, seal))
        }
        let bundleKey = try verify(input, prelude, opening: opening, progress: progress)
        try input.seek(to: prelude.bodyOffset)
        let maxInflated = BundleFile.maxInflatedBytes(compressed: input.size - prelude.bodyOffset)
        let body: GzipReader
        if let bundleKey {
            let chunks = BundleCipher.Reader(key: bundleKey) { (count: Int) throws(SyncNodeError) in
                // A chunk shorter than the rest is the last: read until full or the end of the file.
                var out: [UInt8] = []
                while out.count < count {
                    let piece = try input.read(count - out.count)
                    if piece.isEmpty { break }
                    out += piece
                }
                return out
            }
            body = GzipReader(maxOutput: maxInflated, source: chunks.next)
        } else {
            body = GzipReader(handle: input.handle, maxOutput: maxInflated)
        }
        return try applyBundleBody(body, prelude, size: input.size, progress: progress)
    }

    /// Reads the whole body once before anything is applied: its checksum (format 1), or its
    /// sender's signature (a sealed bundle), whose key for this node it then opens.
    private func verify(
        _ input: BundleInput, _ prelude: BundleFile.Prelude, opening: (BundleFile.Seal.Recipient, PublicKeyText)?,
        progress: ((BundleProgress) -> Void)?
    ) throws(SyncNodeError) -> SymmetricKey? {
        try input.seek(to: prelude.bodyOffset)
        var hasher = SHA256()
        if opening == nil {
            hasher.update(data: prelude.headerLine)
            hasher.update(data: [0x0A])
        }
        var checked = prelude.bodyOffset
        while true {
            let chunk = try input.read(1 << 20)
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
            checked += chunk.count
            progress?(
                BundleProgress(
                    stage: opening == nil ? "checking the checksum" : "checking the signature", done: 0, total: prelude.header.transactions,
                    bytes: checked, totalBytes: input.size))
        }
        guard let (mine, signer) = opening, let (_, signature) = prelude.seal else {
            guard Hex.string(hasher.finalize()) == prelude.checksum else {
                throw BundleFile.corrupt("its checksum does not match (truncated or damaged in transit)")
            }
            return nil
        }
        let payload = SigningPayload.bundle(headerLine: prelude.headerLine, bodyDigest: Array(hasher.finalize()))
        guard signer.verifies(signature, for: payload) else {
            throw BundleFile.corrupt(
                "its signature does not verify: it was altered after it was sealed, or was not made by node \(prelude.header.label) as it claims")
        }
        guard let opened = BundleCipher.unwrap(mine, with: key) else {
            throw BundleFile.corrupt("the key sealed for this node does not open with this node's key")
        }
        return opened
    }

    /// Reads the verified body as a stream of frames and applies them a batch at a time: memory
    /// stays bounded whatever the file holds.
    private func applyBundleBody(_ body: GzipReader, _ prelude: BundleFile.Prelude, size: Int, progress: ((BundleProgress) -> Void)?)
        throws(SyncNodeError) -> BundleReport
    {
        var reader = BatchCodec.FrameReader(maxFrameBytes: BundleFile.maxFrameBytes)
        var report = ApplyReport()
        var batch: [ReceivedTransaction] = []
        var batchBytes = 0
        // Origins stopped in one batch stay stopped in the next (see `apply(_:via:releaseHeld:stops:)`).
        var stops: [NodeID: UInt64] = [:]
        func flush() throws(SyncNodeError) {
            guard !batch.isEmpty else { return }
            report.add(try apply(batch, via: nil, source: "a bundle", releaseHeld: true, stops: &stops))
            batch.removeAll(keepingCapacity: true)
            batchBytes = 0
            progress?(
                BundleProgress(
                    stage: "applying", done: report.applied + report.duplicates + report.held + report.refused.count + report.waiting,
                    total: prelude.header.transactions, bytes: body.compressedRead + prelude.bodyOffset, totalBytes: size))
        }
        let transactions = prelude.header.transactions
        let entries = prelude.header.files ?? []
        // Sizes a header may claim: each a file this format can carry (a claim past it would only
        // make the count of frames overflow).
        guard entries.count <= 1_000_000,
            entries.allSatisfy({ Attachment.isSHA256($0.sha256) && $0.bytes > 0 && $0.bytes <= StoreLimits.largestAttachment })
        else {
            throw BundleFile.corrupt("its header lists attached files of impossible sizes or names")
        }
        var files = BundleFileReceiver(store: self, entries: entries)
        do {
            while let piece = try body.next() {
                reader.feed(piece)
                while let frame = try reader.next() {
                    if reader.framesRead > transactions {
                        // The attached files follow the transactions, whose records name them.
                        try flush()
                        try files.take(Array(frame))
                        continue
                    }
                    batch.append(try BundleFile.transaction(frame, number: reader.framesRead))
                    batchBytes += frame.count
                    if batch.count >= 500 || batchBytes >= 1 << 20 { try flush() }
                }
            }
            try reader.finish()
        } catch let error as WireError {
            throw BundleFile.corrupt(
                "its body is malformed: \(error)\(report.applied > 0 ? " (\(report.applied) transactions before it were applied)" : "")")
        } catch let error as SyncNodeError where error.code == .invalidInput {
            throw BundleFile.corrupt("its body \(error.description)")
        } catch {
            throw error as! SyncNodeError
        }
        try flush()
        let (frames, overflow) = transactions.addingReportingOverflow(files.framesExpected)
        guard !overflow, reader.framesRead == frames, files.finished else {
            throw BundleFile.corrupt(
                "it holds \(reader.framesRead) frames but its header says \(transactions) transactions and \(files.framesExpected) parts of files")
        }
        var result = BundleReport(transactions: transactions, bytes: size, apply: report)
        result.files = files.kept
        result.fileBytes = files.keptBytes
        result.filesLeftOut = files.refused
        return result
    }
}

/// A bundle file being read, each failure said the same way.
private struct BundleInput {
    let handle: FileHandle
    let size: Int
    let path: String

    init(_ file: URL) throws(SyncNodeError) {
        path = file.path
        do {
            handle = try FileHandle(forReadingFrom: file)
            size = Int(try handle.seekToEnd())
            try handle.seek(toOffset: 0)
        } catch {
            throw Self.unreadable(file.path, error)
        }
    }

    private static func unreadable(_ path: String, _ error: any Error) -> SyncNodeError {
        SyncNodeError(.invalidInput, "cannot read the bundle \(path): \(error.localizedDescription)")
    }

    func read(_ count: Int) throws(SyncNodeError) -> Data {
        do {
            return try handle.read(upToCount: count) ?? Data()
        } catch {
            throw Self.unreadable(path, error)
        }
    }

    func seek(to offset: Int) throws(SyncNodeError) {
        do {
            try handle.seek(toOffset: UInt64(offset))
        } catch {
            throw Self.unreadable(path, error)
        }
    }

    func close() { try? handle.close() }
}

/// The attached files of a bundle being imported, a frame at a time: each kept only when a record
/// applied here names it, it is within this node's limits, and all of it hashes to its name.
private struct BundleFileReceiver {
    let store: Store
    let entries: [BundleFile.FileEntry]
    var index = 0
    var offset = 0
    /// Whether the current file is taken (named, within limits) or only read past.
    var taking: Bool?
    var kept = 0
    var keptBytes = 0
    var refused = 0

    init(store: Store, entries: [BundleFile.FileEntry]) {
        self.store = store
        self.entries = entries
    }

    var framesExpected: Int {
        entries.reduce(0) { $0 + ($1.bytes + BundleFile.filePartBytes - 1) / BundleFile.filePartBytes }
    }

    var finished: Bool { index == entries.count }

    mutating func take(_ part: [UInt8]) throws(SyncNodeError) {
        guard index < entries.count else { throw BundleFile.corrupt("it holds more parts of files than its header lists") }
        let entry = entries[index]
        guard Attachment.isSHA256(entry.sha256), entry.bytes > 0, offset + part.count <= entry.bytes, !part.isEmpty else {
            throw BundleFile.corrupt("its file \(entry.sha256.prefix(12)) does not have the size its header says")
        }
        if taking == nil {
            switch try? store.acceptableAttachment(entry.sha256) {
            case .some(let named) where named.held:
                taking = false  // here already
            case .some(let named) where named.bytes == entry.bytes:
                taking = true
                store.files.discardPartial(entry.sha256)
            default:
                taking = false  // no record here names it, another size, or past a limit
                refused += 1
            }
        }
        if taking == true {
            switch try store.files.receive(entry.sha256, expectedBytes: entry.bytes, offset: offset, chunk: part) {
            case .complete:
                kept += 1
                keptBytes += entry.bytes
            case .damaged: refused += 1
            case .partial, .busy: break
            }
        }
        offset += part.count
        if offset == entry.bytes {
            index += 1
            offset = 0
            taking = nil
        }
    }
}
