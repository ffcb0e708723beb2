import Crypto
import Foundation
import GRDB
import SyncProtocol

/// What `backup` wrote.
public struct BackupReport: Sendable {
    public var file: String
    public var bytes: Int
    public var transactions: Int
    public var sha256: String
}

/// What `check` found; `isHealthy` when nothing.
public struct CheckReport: Sendable {
    /// `PRAGMA integrity_check` lines other than "ok".
    public var integrity: [String] = []
    /// Origins whose log and vector disagree.
    public var vectorMismatches: [String] = []
    public var transactionsChecked = 0
    /// Transactions whose stored signature does not verify with their origin's key.
    public var badSignatures: [String] = []
    /// Other nodes' transactions with no signature kept (accepted through HQ's vouch or from an
    /// open node; this node's own are always signed, and one without is a bad signature).
    public var unsigned = 0
    /// Transactions of origins whose key this node does not know (an open node's peers).
    public var unknownKeys = 0
    /// Files of the node readable or writable by others (they hold password hashes, the key
    /// and all the data): each with its mode and what to do.
    public var widePermissions: [String] = []
    /// Log rows whose history chain (`HistoryChain`) is not the one their signatures make: the
    /// chain a peer compares would report a fork that is not there, or hide one.
    public var chainMismatches: [String] = []
    /// Nodes seen signing two histories (`Store.forks`): a warning, not damage here.
    public var forks: [ForkSummary] = []

    public var isHealthy: Bool { integrity.isEmpty && vectorMismatches.isEmpty && badSignatures.isEmpty && chainMismatches.isEmpty }
}

/// A backup file: `SYNCNODE-BACKUP 1\n`, the SHA-256 of the content (32 bytes), then the content
/// gzipped: the key file's length (8 bytes, big-endian) and bytes, then the database's.
enum BackupFile {
    static let magic = Array("SYNCNODE-BACKUP 1\n".utf8)
}

extension Store {
    /// A consistent copy of the node while it serves (SQLite's online backup), with its key,
    /// compressed and checksummed, written atomically to `file`.
    public func backup(to file: URL) throws(SyncNodeError) -> BackupReport {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("syncnode-backup-\(UUID().uuidString).sqlite")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let transactions = try StorageErrors.map { () throws -> Int in
            let copy = try DatabaseQueue(path: scratch.path)
            try pool.backup(to: copy)
            let count = try copy.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM log") ?? 0 }
            try copy.close()
            return count
        }
        let database: Data
        do {
            database = try Data(contentsOf: scratch)
        } catch {
            throw SyncNodeError(.storage, "cannot read the copy to back up: \(error.localizedDescription)")
        }
        var content: [UInt8] = []
        for part in [key.fileText, Array(database)] {
            ByteWriting.fixed(UInt64(part.count), into: &content)
            content += part
        }
        let digest = Array(SHA256.hash(data: content))
        let out = BackupFile.magic + digest + Gzip.compress(content)
        // It holds the node's private key: only the node's user may read it.
        try PrivateFile.replace(file, out)
        return BackupReport(file: file.path, bytes: out.count, transactions: transactions, sha256: digest.map { String(format: "%02x", $0) }.joined())
    }

    /// Makes a node in `directory` from a backup file. Refuses a directory that holds a node (a
    /// live node is never overwritten) and a file whose checksum does not match; opens the result
    /// to prove it is a node. The restored node recovers the work it did after the backup from
    /// its peers at its first sync (docs/PROTOCOL.md, own history).
    public static func restore(from file: URL, into directory: URL) throws(SyncNodeError) -> NodeInfo {
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent(fileName).path)
            || FileManager.default.fileExists(atPath: directory.appendingPathComponent(NodeKey.fileName).path)
        {
            throw SyncNodeError(.nodeExists, "\(directory.path) holds a node; restore into an empty directory (a live node is never overwritten)")
        }
        guard let raw = FileManager.default.contents(atPath: file.path) else { throw .invalid("cannot read \(file.path)") }
        let bytes = [UInt8](raw)
        guard bytes.count > BackupFile.magic.count + 32, Array(bytes.prefix(BackupFile.magic.count)) == BackupFile.magic else {
            throw SyncNodeError(.corruptBundle, "\(file.path) is not a syncnode backup")
        }
        let digest = Array(bytes[BackupFile.magic.count..<(BackupFile.magic.count + 32)])
        let content: [UInt8]
        do {
            content = try Gzip.decompress(Array(bytes[(BackupFile.magic.count + 32)...]), maxSize: 1 << 40)
        } catch {
            throw SyncNodeError(.corruptBundle, "\(file.path) is damaged (it does not decompress); nothing was restored")
        }
        guard Array(SHA256.hash(data: content)) == digest else {
            throw SyncNodeError(.corruptBundle, "\(file.path) is damaged (its checksum does not match); nothing was restored")
        }
        var parts: [[UInt8]] = []
        var at = 0
        content.withUnsafeBufferPointer { bytes in
            while parts.count < 2, let n = ByteReading.fixed(bytes, &at), n <= UInt64(bytes.count - at) {
                parts.append(Array(bytes[at..<(at + Int(n))]))
                at += Int(n)
            }
        }
        guard parts.count == 2, at == content.count, let key = NodeKey.parse(parts[0]) else {
            throw SyncNodeError(.corruptBundle, "\(file.path) is damaged (its parts do not add up); nothing was restored")
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw SyncNodeError(.readOnly, "cannot write into \(directory.path): \(error.localizedDescription)")
        }
        do {
            try PrivateFile.create(directory.appendingPathComponent(fileName), parts[1])
            try key.save(in: directory)
            // Opening proves it is a node, and that the key is the node's own.
            let store = try Store.open(directory)
            defer { try? store.close() }
            return store.info
        } catch {
            // Not a node after all, or not written whole: take back what was written, so the
            // directory is as it was and a later restore into it is not refused.
            for name in [fileName, fileName + "-wal", fileName + "-shm", NodeKey.fileName] {
                try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
            }
            throw error
        }
    }

    /// Checks the node's storage: SQLite's integrity check, the log against the vector, and every
    /// stored transaction's signature against its origin's key.
    public func check() throws(SyncNodeError) -> CheckReport {
        var report = try checkStorage()
        report.widePermissions = Self.ownerOnly(URL(fileURLWithPath: pool.path).deletingLastPathComponent())
        report.forks = try forks()
        return report
    }

    private func checkStorage() throws(SyncNodeError) -> CheckReport {
        try read { db in
            var report = CheckReport()
            report.integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check").filter { $0 != "ok" }
            let logged = try Row.fetchAll(
                db, sql: "SELECT n.id AS id, max(l.seq) AS seq, count(*) AS n FROM log l JOIN node n ON n.ix = l.origin GROUP BY l.origin")
            var vector: [NodeID: UInt64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT origin, seq FROM vector") {
                if let node = NodeID(bytes: row["origin"] as Data) { vector[node] = UInt64(row["seq"] as Int64) }
            }
            for row in logged {
                guard let node = NodeID(bytes: row["id"] as Data) else { continue }
                let top = UInt64(row["seq"] as Int64)
                let count = UInt64(row["n"] as Int64)
                if vector[node] != top {
                    report.vectorMismatches.append("\(node.short): log up to \(top), vector \(vector[node].map(String.init) ?? "none")")
                }
                if count != top { report.vectorMismatches.append("\(node.short): \(count) transactions logged for seqs 1...\(top)") }
            }
            let inflater = Inflate()
            var keys: [NodeID: PublicKeyText?] = [:]
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT n.id AS id, l.seq AS seq, l.body AS body, l.size AS size, l.sig AS sig, l.chain AS chain, l.refused AS refused
                    FROM log l JOIN node n ON n.ix = l.origin ORDER BY l.origin, l.seq
                    """)
            var previous: (node: NodeID, seq: Int64, chain: Data?)?
            while let row = try rows.next() {
                guard let node = NodeID(bytes: row["id"] as Data) else { continue }
                report.transactionsChecked += 1
                let seq: Int64 = row["seq"]
                let before = previous.flatMap { $0.node == node && $0.seq == seq - 1 ? $0.chain : nil }
                let chain = row["chain"] as Data?
                if chain != HistoryChain.link(before, signature: [UInt8]((row["sig"] as Data?) ?? Data()), refused: row["refused"] as String? != nil)
                {
                    report.chainMismatches.append("\(node.short)/\(seq) (history chain)")
                }
                previous = (node, seq, chain)
                guard let signature = row["sig"] as Data?, !signature.isEmpty else {
                    // A node signs all its own work: its own transaction without a signature was
                    // altered here. Others' may be kept unsigned (accepted through HQ's vouch).
                    if node == info.nodeID {
                        report.badSignatures.append("\(node.short)/\(row["seq"] as Int64) (own, unsigned)")
                    } else {
                        report.unsigned += 1
                    }
                    continue
                }
                if keys[node] == nil {
                    keys[node] = node == info.nodeID ? info.publicKey : try Self.registryEntry(db, node).map(\.key)
                }
                guard let key = keys[node] ?? nil else {
                    report.unknownKeys += 1
                    continue
                }
                let stored = row["body"] as Data
                let body = try (row["size"] as Int64?).map { try inflater.unpack(stored, size: Int($0)) } ?? [UInt8](stored)
                if !key.verifies([UInt8](signature), for: SigningPayload.transaction(body)) {
                    report.badSignatures.append("\(node.short)/\(row["seq"] as Int64)")
                }
            }
            return report
        }
    }
}
