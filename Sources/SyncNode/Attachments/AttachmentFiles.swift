import Crypto
import Foundation
import SyncProtocol
import Synchronization

/// The attached files a node holds, beside its database: `attachments/ab/abcd…`, each named by
/// the SHA-256 of its bytes, and `attachments/partial/abcd…` for one being received, which a cut
/// transfer resumes from where it stopped. A file is in its place only once its bytes were
/// checked against its name, so a file here is what its name says (unless the disk damaged it
/// since: `verified` reads it again).
public final class AttachmentFiles: Sendable {
    public static let folderName = "attachments"
    /// The bytes read or written at a time.
    static let chunkBytes = 1 << 20

    public let directory: URL
    /// Files being received: one append at a time per file.
    private let receiving = Mutex<Set<String>>([])
    /// When leftovers were last swept (`sweep`).
    private let lastSweep = Mutex<ContinuousClock.Instant?>(nil)
    /// Free space a file must leave on the disk: the database must still be writable after it.
    static let freeSpaceFloor = 256 << 20

    init(directory: URL) { self.directory = directory }

    /// Where the file of `sha256` is kept.
    public func url(_ sha256: String) -> URL {
        directory.appendingPathComponent(String(sha256.prefix(2))).appendingPathComponent(sha256)
    }

    private func partialURL(_ sha256: String) -> URL { directory.appendingPathComponent("partial").appendingPathComponent(sha256) }

    /// The size of the held file, or nil when it is not held here.
    public func size(_ sha256: String) -> Int? {
        guard Attachment.isSHA256(sha256), let attributes = try? FileManager.default.attributesOfItem(atPath: url(sha256).path) else { return nil }
        return (attributes[.size] as? NSNumber)?.intValue
    }

    /// How many bytes of a file being received are here.
    public func partialSize(_ sha256: String) -> Int {
        guard Attachment.isSHA256(sha256), let attributes = try? FileManager.default.attributesOfItem(atPath: partialURL(sha256).path) else {
            return 0
        }
        return (attributes[.size] as? NSNumber)?.intValue ?? 0
    }

    /// A file taken in from outside (the `attach` command, a web upload): read once, hashed as it
    /// is copied, refused past `maxBytes` or when it is neither a photo nor a PDF. Nothing is
    /// left behind when it is refused.
    /// `new` is false when the same file was held already.
    public func take(from source: URL, named name: String, maxBytes: Int) throws(SyncNodeError) -> (
        sha256: String, bytes: Int, type: Attachment.MediaType, new: Bool
    ) {
        guard let input = FileHandle(forReadingAtPath: source.path) else {
            throw SyncNodeError.invalid("cannot read \(source.path): no such file, or it may not be read").said(
                zh: "读不到文件 \(source.lastPathComponent)")
        }
        defer { try? input.close() }
        let temporary = try makeTemporary()
        var keep = false
        defer { if !keep { try? FileManager.default.removeItem(at: temporary.url) } }
        var hash = SHA256()
        var total = 0
        var leading: [UInt8] = []
        do {
            defer { try? temporary.handle.close() }
            while let data = try input.read(upToCount: Self.chunkBytes), !data.isEmpty {
                total += data.count
                if total > maxBytes {
                    throw SyncNodeError.invalid(
                        "\(name) is larger than the \(ByteText.describe(maxBytes)) a file may be; nothing was attached. Reduce the photo (or split the PDF) and attach it again"
                    ).said(zh: "文件超过 \(ByteText.describe(maxBytes))，未添加。请缩小照片（或拆分 PDF）后再添加")
                }
                if leading.count < 16 { leading += data.prefix(16 - leading.count) }
                hash.update(data: data)
                try temporary.handle.write(contentsOf: data)
            }
            try temporary.handle.synchronize()
        } catch let error as SyncNodeError {
            throw error
        } catch {
            throw Self.ioError(error, "cannot copy \(source.path)")
        }
        guard total > 0 else { throw SyncNodeError.invalid("\(name) is empty; nothing was attached").said(zh: "文件是空的，未添加") }
        guard let type = Attachment.MediaType(leadingBytes: leading) else {
            throw SyncNodeError.invalid("\(name) is not \(Attachment.kindsAccepted); nothing was attached")
                .said(zh: "只能添加照片（JPEG、PNG、WebP、HEIC）或 PDF 文件，未添加")
        }
        let sha = Hex.string(hash.finalize())
        let new = try place(temporary.url, as: sha)
        keep = true
        return (sha, total, type, new)
    }

    /// Up to `maxBytes` of a held file from `offset`.
    public func read(_ sha256: String, offset: Int, maxBytes: Int) throws(SyncNodeError) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: url(sha256).path) else {
            throw SyncNodeError(.notFound, "file \(sha256.prefix(12)) is not held here")
        }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: UInt64(max(0, offset)))
            return Array(try handle.read(upToCount: max(0, maxBytes)) ?? Data())
        } catch {
            throw Self.ioError(error, "cannot read attachment \(sha256.prefix(12))")
        }
    }

    /// What an append to a file being received came to.
    public enum Received: Equatable, Sendable {
        /// Part of it is here (this many bytes): send the rest from there.
        case partial(Int)
        /// All of it is here, checked against its name.
        case complete
        /// Its bytes do not hash to its name (damaged or altered on the way): what was received
        /// of it is thrown away, and it is asked for again from the start.
        case damaged
        /// Another transfer of the same file is under way.
        case busy
    }

    /// Appends `chunk` at `offset` to the file being received, of `expectedBytes` in all. A
    /// chunk that does not start where the received part ends is not written: the answer says
    /// where to start.
    public func receive(_ sha256: String, expectedBytes: Int, offset: Int, chunk: [UInt8]) throws(SyncNodeError) -> Received {
        guard Attachment.isSHA256(sha256) else { throw .invalid("'\(sha256.prefix(80))' is not a SHA-256 (64 hex digits)") }
        if size(sha256) != nil { return .complete }
        let claimed = receiving.withLock { $0.insert(sha256).inserted }
        guard claimed else { return .busy }
        defer { _ = receiving.withLock { $0.remove(sha256) } }
        let partial = partialURL(sha256)
        let have = partialSize(sha256)
        guard offset == have else { return .partial(have) }
        do {
            try FileManager.default.createDirectory(at: partial.deletingLastPathComponent(), withIntermediateDirectories: true)
            if have == 0 { _ = FileManager.default.createFile(atPath: partial.path, contents: nil, attributes: [.posixPermissions: 0o600]) }
            guard let handle = FileHandle(forWritingAtPath: partial.path) else { throw SyncNodeError(.storage, "cannot write \(partial.path)") }
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: chunk)
            try handle.synchronize()
        } catch let error as SyncNodeError {
            throw error
        } catch {
            throw Self.ioError(error, "cannot store attachment \(sha256.prefix(12))")
        }
        let now = have + chunk.count
        if now < expectedBytes { return .partial(now) }
        guard now == expectedBytes, (try? Self.digest(of: partial)) == sha256 else {
            try? FileManager.default.removeItem(at: partial)
            return .damaged
        }
        try place(partial, as: sha256)
        return .complete
    }

    /// Whether the disk has room for `bytes` more and the floor the database keeps.
    public func hasRoom(for bytes: Int) -> Bool {
        var folder = directory
        while !FileManager.default.fileExists(atPath: folder.path) && folder.pathComponents.count > 1 { folder.deleteLastPathComponent() }
        guard let free = (try? FileManager.default.attributesOfFileSystem(forPath: folder.path))?[.systemFreeSize] as? NSNumber else { return true }
        return free.int64Value - Int64(bytes) >= Int64(Self.freeSpaceFloor)
    }

    /// Whether a sweep is due (ten minutes since the last); marks it done.
    func sweepDue() -> Bool {
        lastSweep.withLock { last in
            let now = ContinuousClock.now
            if let last, now - last < .seconds(600) { return false }
            last = now
            return true
        }
    }

    /// Removes partial files not in `keeping` (named by no live record, or held whole by now) and
    /// temporary files older than an hour.
    func sweep(keeping: Set<String>) {
        let folder = directory.appendingPathComponent("partial")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
        for name in names {
            let url = folder.appendingPathComponent(name)
            if Attachment.isSHA256(name) {
                if !keeping.contains(name) && !receiving.withLock({ $0.contains(name) }) { try? FileManager.default.removeItem(at: url) }
            } else if let modified = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date,
                Date().timeIntervalSince(modified) > 3600
            {
                try? FileManager.default.removeItem(at: url)
            }
        }
    }

    /// Throws away what was received of a file (a bundle brings all of it).
    public func discardPartial(_ sha256: String) {
        guard Attachment.isSHA256(sha256) else { return }
        try? FileManager.default.removeItem(at: partialURL(sha256))
    }

    /// Whether the held file still hashes to its name.
    public func verified(_ sha256: String) -> Bool { (try? Self.digest(of: url(sha256))) == sha256 }

    /// Copies a held file out to `destination`, checked against its name as it is read; the
    /// destination is written only once all of it was read and found right.
    public func copy(_ sha256: String, to destination: URL) throws(SyncNodeError) {
        guard size(sha256) != nil else { throw SyncNodeError(.notFound, "file \(sha256) is not held here; it arrives with a sync") }
        guard verified(sha256) else {
            throw SyncNodeError(
                .databaseCorrupt,
                "the file kept for \(sha256.prefix(12)) no longer matches its SHA-256 (damaged on this disk); nothing was written. Remove \(url(sha256).path) and sync: it is fetched again"
            )
        }
        let temporary = destination.deletingLastPathComponent().appendingPathComponent(".\(destination.lastPathComponent).\(UUID().uuidString)")
        do {
            try FileManager.default.copyItem(at: url(sha256), to: temporary)
            if FileManager.default.fileExists(atPath: destination.path) {
                _ = try FileManager.default.replaceItemAt(destination, withItemAt: temporary)
            } else {
                try FileManager.default.moveItem(at: temporary, to: destination)
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw Self.ioError(error, "cannot write \(destination.path)")
        }
    }

    // MARK: - Places

    private func makeTemporary() throws(SyncNodeError) -> (url: URL, handle: FileHandle) {
        let folder = directory.appendingPathComponent("partial")
        let url = folder.appendingPathComponent("take-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600]),
                let handle = FileHandle(forWritingAtPath: url.path)
            else { throw SyncNodeError(.storage, "cannot write in \(folder.path)") }
            return (url, handle)
        } catch let error as SyncNodeError {
            throw error
        } catch {
            throw Self.ioError(error, "cannot write in \(folder.path)")
        }
    }

    /// Moves a checked file into its place (a file already there is the same bytes); whether it
    /// was not there before.
    @discardableResult
    private func place(_ file: URL, as sha256: String) throws(SyncNodeError) -> Bool {
        let target = url(sha256)
        do {
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            if FileManager.default.fileExists(atPath: target.path) {
                try FileManager.default.removeItem(at: file)
                return false
            }
            try FileManager.default.moveItem(at: file, to: target)
            return true
        } catch {
            throw Self.ioError(error, "cannot keep attachment \(sha256.prefix(12))")
        }
    }

    static func digest(of file: URL) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: file.path) else { throw SyncNodeError(.notFound, "no file \(file.path)") }
        defer { try? handle.close() }
        var hash = SHA256()
        while let data = try handle.read(upToCount: chunkBytes), !data.isEmpty { hash.update(data: data) }
        return Hex.string(hash.finalize())
    }

    private static func ioError(_ error: any Error, _ what: String) -> SyncNodeError {
        if (error as NSError).code == Int(ENOSPC) || "\(error)".contains("No space") {
            return SyncNodeError(.diskFull, "\(what): the disk is full. Free some space and try again")
        }
        return SyncNodeError(.storage, "\(what): \(error.localizedDescription)")
    }
}
