import Foundation
import GRDB
import SyncProtocol
import Synchronization

/// Identity and settings of the node that owns a store.
public struct NodeInfo: Sendable, Equatable {
    public var nodeID: NodeID
    public var site: String
    public var label: String
    public var createdMillis: UInt64
    /// The role this node was created for (the registry at HQ is what counts for others).
    public var role: Role
    public var publicKey: PublicKeyText
    /// HQ's public key, whose registry this node trusts; nil for a node in open mode.
    public var trustAnchor: PublicKeyText?

    /// Whether this node verifies signatures and policy on everything it receives.
    public var enforcesTrust: Bool { trustAnchor != nil }
}

/// How a new node decides whom to trust.
public enum TrustSetup: Sendable, Equatable {
    /// This node is HQ: its own key is the trust anchor and it writes the registry.
    case hq
    /// Trust the registry written by the HQ with this public key.
    case anchor(PublicKeyText)
    /// Verify nothing: for library use and tests of the merge machinery only. The command line
    /// never creates such a node.
    case open
}

/// Limits that protect a node from oversized input.
public struct StoreLimits: Sendable {
    /// Largest text value, in UTF-8 bytes.
    public var maxValueBytes = 64 * 1024
    /// Most transactions applied in one SQLite transaction during remote apply, so that a local
    /// write never waits long behind a large import.
    public var applyChunkTransactions = 256
    /// Most changes (field writes and entries) applied in one SQLite transaction during remote
    /// apply (a transaction larger than this is still applied whole, alone): with the bytes and
    /// transaction bounds, what keeps one chunk's hold on the write lock near half a second.
    public var applyChunkChanges = 20_000
    /// A chunk that held the write lock longer than this is followed by a short pause, so that a
    /// write waiting in another process gets the lock between two chunks.
    public var applyChunkYieldAfter = Duration.milliseconds(250)
    /// Most encoded bytes applied in one SQLite transaction during remote apply.
    public var applyChunkBytes = 4 * 1024 * 1024
    /// Most transactions, and bytes, kept waiting for the registry to learn their origin.
    public var maxHeldTransactions = 50_000
    public var maxHeldBytes = 64 * 1024 * 1024
    /// Most unknown origins one sender may have waiting (pulls and bundles count as one sender).
    public var maxHeldOriginsPerSender = 16
    /// Most encoded bytes one sender may have waiting (a quarter of `maxHeldBytes`; pulls and
    /// bundles count as one sender), so that no sender can fill the whole for the others.
    public var maxHeldBytesPerSender = 16 * 1024 * 1024
    /// How long held work waits, from its arrival here: past this age (14 days) it is dropped, at
    /// open, before every apply and at each release of held work. Nothing is
    /// lost: its sender offers it again, and it is held afresh (docs/PROTOCOL.md, step 2).
    public var maxHeldAgeMillis: UInt64 = 14 * 24 * 3600 * 1000
    /// Largest attached file (25 MiB; `SYNCNODE_ATTACHMENT_MAX_MB`): refused when attached here,
    /// and neither fetched nor taken from a peer.
    public var maxAttachmentBytes = min(StoreLimits.mebibytes("SYNCNODE_ATTACHMENT_MAX_MB", default: 25), StoreLimits.largestAttachment)
    /// Most bytes of attached files this node keeps of each node's attaching (2 GiB;
    /// `SYNCNODE_ATTACHMENT_QUOTA_MB`): a node past it attaches nothing more, and its further
    /// files are neither fetched nor taken here.
    public var attachmentQuotaBytes = StoreLimits.mebibytes("SYNCNODE_ATTACHMENT_QUOTA_MB", default: 2048)

    public init() {}

    /// A size set in the environment in MiB (a positive whole number), or the default.
    static func mebibytes(_ variable: String, default fallback: Int) -> Int {
        let set = ProcessInfo.processInfo.environment[variable].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return (set.flatMap { $0 > 0 && $0 <= 1 << 30 ? $0 : nil } ?? fallback) * 1024 * 1024
    }

    /// The largest file: a per-file limit set higher is held to it (an attachment record's `bytes`
    /// past it is not read as an attachment).
    public static let largestAttachment = Int(Int32.max)
}

/// The node's local replica: a SQLite file (WAL) holding the materialised records, the ledgers,
/// the field history, the change log and the version vector.
///
/// Every write is one synchronous GRDB `write` closure; the clock high-water mark is persisted in
/// the same SQLite transaction as every stamped write.
public final class Store: Sendable {
    public static let fileName = "node.sqlite"
    /// The version of the local storage layout: the number of the last migration (`v13-submission-key`),
    /// kept in `meta` at create and after every upgrade.
    public static let schemaVersion = 13

    public let info: NodeInfo
    public let limits: StoreLimits
    let pool: DatabasePool
    let clock: any WallClock
    /// The files attached to records, beside the database (`Store+Attachments`).
    public let files: AttachmentFiles

    /// This node's wall clock now (ms since 1970): what its sessions and reports measure time by.
    public func nowMillis() -> UInt64 { clock.nowMillis() }
    let maxDriftMillis: UInt64
    let key: NodeKey
    /// Interned names and node ids this process has seen committed (see `Interner`).
    let interns = InternCache()
    /// One deflate stream for log bodies, reused by every write of this process.
    let deflater = Mutex(Deflate())
    /// The plan last decoded from the `programme` collection, by the version of its record
    /// (`Store.planState`): reports and forms read it many times per request.
    let planCache = Mutex<(version: Timestamp, state: PlanState)?>(nil)
    /// The money figures that read every project's totals (projects' money, the review's money
    /// rows), kept for the vector they were computed at: every write that could change them is
    /// a transaction, which moves the vector (`Store.cachedMoney`).
    let moneyCache = Mutex<MoneyCache?>(nil)
    /// How many applies ran on `BlockingWork`'s threads, and how many elsewhere (a test holds a
    /// sync round's applies off the cooperative pool with it).
    let applyThreads = Mutex<(blocking: Int, other: Int)>((0, 0))

    private init(
        pool: DatabasePool, directory: URL, info: NodeInfo, key: NodeKey, clock: any WallClock, limits: StoreLimits, maxDriftMillis: UInt64
    ) {
        self.pool = pool
        self.files = AttachmentFiles(directory: directory.appendingPathComponent(AttachmentFiles.folderName))
        self.info = info
        self.key = key
        self.clock = clock
        self.limits = limits
        self.maxDriftMillis = maxDriftMillis
    }

    /// Creates a new node in `directory` (created if missing). Refuses if a node is already there.
    public static func create(
        in directory: URL, site: String, label: String?, role: Role = .hq, trust: TrustSetup = .open, clock: any WallClock = SystemClock(),
        limits: StoreLimits = StoreLimits(), maxDriftMillis: UInt64 = HybridClock.defaultMaxDriftMillis
    ) throws(SyncNodeError) -> Store {
        if trust == .hq && role != .hq {
            throw .invalid("only an HQ node can be its own trust anchor; every other node is created trusting HQ's public key")
        }
        if let p = Names.problem(with: site, what: "site name") { throw .invalid(p + "; a site is a name such as lintan") }
        let file = directory.appendingPathComponent(fileName)
        if FileManager.default.fileExists(atPath: file.path) {
            throw SyncNodeError(.nodeExists, "a node already exists in \(directory.path)")
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw SyncNodeError(.readOnly, "cannot create the data directory \(directory.path): \(error.localizedDescription)")
        }
        _ = ownerOnly(directory)
        var rng = SystemRandomNumberGenerator()
        let id = NodeID.random(using: &rng)
        let key = NodeKey.generate()
        var anchor: PublicKeyText?
        switch trust {
        case .hq: anchor = key.publicKey
        case .anchor(let hqKey): anchor = hqKey
        case .open: anchor = nil
        }
        let info = NodeInfo(
            nodeID: id, site: site, label: label ?? "\(site)-\(id.short)", createdMillis: clock.nowMillis(), role: role, publicKey: key.publicKey,
            trustAnchor: anchor)
        if let p = Names.problem(with: info.label, what: "label") { throw .invalid(p) }
        try key.save(in: directory)
        // The database and its -wal and -shm files take the mode of the database file: made 0600
        // before SQLite makes it, whatever the umask.
        _ = FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600])
        let store = try StorageErrors.map {
            let pool = try DatabasePool(path: file.path, configuration: configuration())
            try migrator.migrate(pool)
            try pool.write { db in
                try Meta.set(db, .nodeID, id.hex)
                try Meta.set(db, .site, info.site)
                try Meta.set(db, .label, info.label)
                try Meta.set(db, .created, Int64(info.createdMillis))
                try Meta.set(db, .schemaVersion, Int64(schemaVersion))
                try Meta.set(db, .role, role.rawValue)
                try Meta.set(db, .publicKey, key.publicKey.hex)
                if let anchor { try Meta.set(db, .trustAnchor, anchor.hex) }
            }
            return Store(pool: pool, directory: directory, info: info, key: key, clock: clock, limits: limits, maxDriftMillis: maxDriftMillis)
        }
        if trust == .hq {
            // HQ enters itself in the registry: the first transaction every node receives from it.
            try store.commit([.approve(node: id, key: key.publicKey, site: site, role: .hq, label: info.label)])
        }
        return store
    }

    /// Opens the node in `directory`.
    public static func open(
        _ directory: URL, clock: any WallClock = SystemClock(), limits: StoreLimits = StoreLimits(),
        maxDriftMillis: UInt64 = HybridClock.defaultMaxDriftMillis
    ) throws(SyncNodeError) -> Store {
        let file = directory.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw SyncNodeError(
                .notANode,
                "no node in \(directory.path)")
        }
        // A node made under a looser umask (or by an earlier version) is made owner-only now.
        _ = ownerOnly(directory)
        return try StorageErrors.map {
            let pool: DatabasePool
            var readOnly = false
            do {
                let writable = try DatabasePool(path: file.path, configuration: configuration())
                try migrator.migrate(writable)
                if try writable.read({ db in try Meta.int(db, .schemaVersion) }) != Int64(schemaVersion) {
                    try writable.write { db in try Meta.set(db, .schemaVersion, Int64(schemaVersion)) }
                }
                pool = writable
            } catch let error as DatabaseError where [.SQLITE_CANTOPEN, .SQLITE_READONLY].contains(error.resultCode.primaryResultCode) {
                // A data directory mounted read-only (a copy to inspect, a backup): reads work,
                // writes say why they cannot.
                var config = configuration()
                config.readonly = true
                // With no WAL file there is nothing un-checkpointed and no writer: `immutable`
                // reads the file as it is, without the -shm file that cannot be made here.
                let idle = !FileManager.default.fileExists(atPath: file.path + "-wal")
                pool = try DatabasePool(path: idle ? "file:\(file.path)?immutable=1" : file.path, configuration: config)
                guard try pool.read({ db in try migrator.hasCompletedMigrations(db) }) else {
                    throw SyncNodeError(
                        .readOnly,
                        "\(file.path) needs an upgrade of its storage and the directory cannot be written; open it once where it can be written")
                }
                readOnly = true
            }
            let key = try NodeKey.load(from: directory)
            let info = try pool.read { db -> NodeInfo? in
                guard let hex = try Meta.string(db, .nodeID), let id = NodeID(hex: hex) else { return nil }
                return NodeInfo(
                    nodeID: id, site: try Meta.string(db, .site) ?? "", label: try Meta.string(db, .label) ?? "",
                    createdMillis: UInt64(try Meta.int(db, .created) ?? 0), role: Role(rawValue: try Meta.string(db, .role) ?? "") ?? .hq,
                    publicKey: key.publicKey, trustAnchor: try Meta.string(db, .trustAnchor).flatMap(PublicKeyText.init(hex:)))
            }
            guard let info else {
                throw SyncNodeError(.databaseCorrupt, "\(file.path) is a SQLite file without a node identity; it is not a syncnode database")
            }
            // The key must be the one the node was created with: another node's key file beside
            // this database would sign its work as someone else.
            if let recorded = try pool.read({ db in try Meta.string(db, .publicKey) }), recorded != key.publicKey.hex {
                throw SyncNodeError(
                    .databaseCorrupt,
                    "the key file in \(directory.path) is not node \(info.nodeID.short)'s own key (its public key differs from the one the node recorded); put back the node's own key file, or restore the node from its backup"
                )
            }
            let store = Store(pool: pool, directory: directory, info: info, key: key, clock: clock, limits: limits, maxDriftMillis: maxDriftMillis)
            if !readOnly, try pool.read({ db in try Meta.int(db, .rematerialise) }) == 1 {
                try store.writeInterned { db, interner in
                    try store.rematerialise(db, &interner)
                    try db.execute(sql: "DELETE FROM meta WHERE key = ?", arguments: [Meta.Key.rematerialise.rawValue])
                }
            }
            // Held work past its age goes when the node is opened (every command, `serve` at its
            // start); a node that cannot be written now drops it at a later open or apply.
            if !readOnly { _ = try? store.expireHeldWork() }
            return store
        }
    }

    /// One write transaction whose writes go through `interner` (prepared statements and the
    /// names and node ids it interns); what it interned reaches the process's cache only once the
    /// transaction has committed.
    func writeInterned<T>(_ body: (Database, inout Interner) throws -> T) throws(SyncNodeError) -> T {
        var interner = Interner(interns)
        let result = try StorageErrors.map {
            try pool.write { db -> T in
                interner = Interner(interns)
                interner.hot = HotStatements(db)
                defer { interner.hot = nil }
                return try body(db, &interner)
            }
        }
        interner.publish()
        return result
    }

    static func configuration() -> Configuration {
        var config = Configuration()
        config.busyMode = .timeout(10)
        // FULL: a commit is on disk (the WAL synced) before the call returns, so a power cut can
        // never take back a write this node acknowledged, or sent to a peer, and have its number
        // reused for other work (docs/PERFORMANCE.md measures what it costs local writes).
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // After a burst, the WAL file goes back to at most 4 MB once it is checkpointed,
            // instead of keeping its largest size on disk for good.
            try db.execute(sql: "PRAGMA journal_size_limit = 4194304")
        }
        return config
    }

    /// The persisted hybrid clock (its high-water mark).
    func loadClock(_ db: Database) throws -> HybridClock {
        HybridClock(
            node: info.nodeID, millis: UInt64(try Meta.int(db, .clockMillis) ?? 0),
            counter: UInt16(clamping: try Meta.int(db, .clockCounter) ?? 0), maxDriftMillis: maxDriftMillis)
    }

    func saveClock(_ db: Database, _ clock: HybridClock) throws {
        try Meta.set(db, .clockMillis, Int64(clock.millis))
        try Meta.set(db, .clockCounter, Int64(clock.counter))
    }

    /// The clock's high-water mark as persisted.
    public func clockHighWater() throws(SyncNodeError) -> Timestamp {
        try StorageErrors.map { try pool.read { db in try loadClock(db).current } }
    }

    /// Closes the database; further use of the store fails.
    public func close() throws {
        try pool.close()
    }

    /// Path of the SQLite file.
    public var path: String { pool.path }
}

extension Store {
    /// The node's files hold web users' password hashes, its private key and all the programme's
    /// data: the directory is 0700 and each file in it 0600, whatever the umask it was made under.
    /// Tightens what is wider (where this process may); returns what stays wider (a read-only
    /// mount, another owner), for `check` to report.
    @discardableResult
    public static func ownerOnly(_ directory: URL) -> [String] {
        let manager = FileManager.default
        var wide: [String] = []
        func tighten(_ path: String, to mode: Int) {
            guard let attributes = try? manager.attributesOfItem(atPath: path), let current = attributes[.posixPermissions] as? Int,
                attributes[.type] as? FileAttributeType != .typeSymbolicLink
            else { return }
            guard current & 0o077 != 0 else { return }
            try? manager.setAttributes([.posixPermissions: current & mode], ofItemAtPath: path)
            if let now = (try? manager.attributesOfItem(atPath: path))?[.posixPermissions] as? Int, now & 0o077 != 0 {
                wide.append("\(path) is mode \(String(now, radix: 8)); make it \(String(mode == 0o700 ? 0o700 : 0o600, radix: 8)) (chmod)")
            }
        }
        tighten(directory.path, to: 0o700)
        for name in (try? manager.contentsOfDirectory(atPath: directory.path)) ?? [] {
            let path = directory.appendingPathComponent(name).path
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            tighten(path, to: isDirectory.boolValue ? 0o700 : 0o600)
        }
        return wide
    }
}
