import Foundation
import SyncProtocol

/// One file attached to a record, as its attachment record says, and whether the file is here.
public struct AttachmentInfo: Sendable, Equatable {
    public var reference: Attachment.Reference
    public var bytes: Int
    public var mediaType: String
    public var name: String?
    public var caption: String?
    public var attachedAt: String?
    public var attachedBy: String?
    public var takenAt: String?
    public var latitude: Double?
    public var longitude: Double?
    /// The node that wrote the attachment record: whose quota the file counts against.
    public var origin: NodeID
    /// When the attachment record was last written.
    public var updated: Timestamp
    /// Whether the file is held here, checked against its name when it arrived.
    public var held: Bool
    /// Detached (the attachment record deleted).
    public var deleted: Bool

    public var sha256: String { reference.sha256 }
}

/// Where the phone was, and when the photo was taken, if its user allowed it to say.
public struct CaptureDetails: Sendable, Equatable {
    public var takenAt: String?
    public var latitude: Double?
    public var longitude: Double?

    public init(takenAt: String? = nil, latitude: Double? = nil, longitude: Double? = nil) {
        self.takenAt = takenAt
        self.latitude = latitude
        self.longitude = longitude
    }
}

extension Store {
    /// Attaches a file to a record held here: the file is copied beside the database under its
    /// SHA-256, and an attachment record naming the record and the file is committed (one
    /// transaction, signed, under the record's policy). Refused, with nothing kept, for a record
    /// not held here or deleted, a file too large or of another kind, or past this node's quota.
    public func attach(
        collection: String, recordID: String, file: URL, name: String? = nil, caption: String?, capture: CaptureDetails = CaptureDetails(),
        now: Date = Date()
    ) throws(SyncNodeError) -> (AttachmentInfo, Transaction) {
        guard collection != Attachment.collection else { throw .invalid("an attachment cannot have attachments; attach the file to its record") }
        guard let owner = try record(collection, recordID) else {
            throw SyncNodeError(.notFound, "no \(collection) record \(recordID) is held here; record it (or sync) first, then attach the file")
                .said(zh: "本节点没有记录“\(recordID)”；请先录入（或同步），再添加文件")
        }
        guard !owner.deleted else {
            throw SyncNodeError.invalid("\(collection) record \(recordID) is deleted; nothing was attached").said(zh: "记录“\(recordID)”已删除，未添加")
        }
        if let latitude = capture.latitude, !(-90...90).contains(latitude) { throw .invalid("a latitude is between -90 and 90, not \(latitude)") }
        if let longitude = capture.longitude, !(-180...180).contains(longitude) {
            throw .invalid("a longitude is between -180 and 180, not \(longitude)")
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
        let used = try heldAttachmentBytes()[info.nodeID] ?? 0
        if used + size > limits.attachmentQuotaBytes {
            throw .invalid(
                "this node keeps \(ByteText.describe(used)) of attached files and may keep \(ByteText.describe(limits.attachmentQuotaBytes)); \(file.lastPathComponent) (\(ByteText.describe(size))) was not attached. The node's operator can raise the quota (SYNCNODE_ATTACHMENT_QUOTA_MB)"
            ).said(zh: "本节点的附件已占 \(ByteText.describe(used))，上限 \(ByteText.describe(limits.attachmentQuotaBytes))，未添加。请节点管理员调高上限")
        }
        let (sha, bytes, type, new) = try files.take(from: file, named: name ?? file.lastPathComponent, maxBytes: limits.maxAttachmentBytes)
        let reference = Attachment.Reference(collection: collection, recordID: recordID, sha256: sha)
        do throws(SyncNodeError) {
            if let problem = Names.problem(with: reference.attachmentID, what: "the attachment's id") {
                throw SyncNodeError.invalid("\(problem): the record id \(recordID) is too long to attach files to")
            }
            let caption = caption?.trimmingCharacters(in: .whitespacesAndNewlines).prefix(500)
            let iso = ISO8601DateFormatter()
            var fields: [FieldAssignment] = [
                .init(Attachment.Field.sha256, .text(sha)), .init(Attachment.Field.bytes, .int(Int64(bytes))),
                .init(Attachment.Field.mediaType, .text(type.rawValue)),
                .init(Attachment.Field.name, .text(String((name ?? file.lastPathComponent).prefix(200)))),
                .init(Attachment.Field.attachedAt, .text(iso.string(from: now))),
                .init(Attachment.Field.attachedBy, Self.author.map { .text(Self.authorName($0)) } ?? .null),
                .init(Attachment.Field.caption, caption.map { $0.isEmpty ? .null : .text(String($0)) } ?? .null),
            ]
            if let takenAt = capture.takenAt { fields.append(.init(Attachment.Field.takenAt, .text(String(takenAt.prefix(40))))) }
            if let latitude = capture.latitude { fields.append(.init(Attachment.Field.latitude, .real(latitude))) }
            if let longitude = capture.longitude { fields.append(.init(Attachment.Field.longitude, .real(longitude))) }
            let transaction = try commit([.put(collection: Attachment.collection, recordID: reference.attachmentID, fields: fields)])
            guard let info = try attachments(of: collection, recordID).first(where: { $0.sha256 == sha }) else {
                throw SyncNodeError(.storage, "the attachment was recorded but cannot be read back")
            }
            return (info, transaction)
        } catch {
            // Nothing kept: the file goes again unless another record already had it.
            if new { try? FileManager.default.removeItem(at: files.url(sha)) }
            throw error
        }
    }

    /// Whether this node's policy lets it attach files to the record (a county: its own records).
    public func mayAttach(collection: String, recordID: String) throws(SyncNodeError) -> Bool {
        let rules = try read { db in try Self.loadRules(db, shared: interns) }
        let author = Author(node: info.nodeID, site: info.site, role: info.role, label: info.label)
        let probe = Attachment.Reference(collection: collection, recordID: recordID, sha256: String(repeating: "0", count: 64))
        let change = Change.set(
            FieldWrite(collection: Attachment.collection, recordID: probe.attachmentID, field: Attachment.Field.caption, value: .null))
        return rules.violation(of: change, by: author) == nil
    }

    /// The files attached to one record, detached ones left out, oldest first.
    public func attachments(of collection: String, _ recordID: String) throws(SyncNodeError) -> [AttachmentInfo] {
        try records(Attachment.collection, idPrefix: Attachment.Reference.prefix(collection: collection, recordID: recordID))
            .compactMap(attachmentInfo).filter { !$0.deleted && $0.reference.recordID == recordID }
            .sorted { ($0.attachedAt ?? "", $0.sha256) < ($1.attachedAt ?? "", $1.sha256) }
    }

    /// Every attachment record held here, detached ones included.
    public func allAttachments() throws(SyncNodeError) -> [AttachmentInfo] {
        try records(Attachment.collection, includeDeleted: true).compactMap(attachmentInfo)
    }

    /// The files this node should hold and does not (named by a live record, within the per-file
    /// limit and their node's quota), `origin`'s first, then oldest first, at most `limit`: what a
    /// sync round fetches, and what a peer is asked to send.
    public func missingAttachments(limit: Int = 1000, preferring origin: NodeID? = nil) throws(SyncNodeError) -> [AttachmentInfo] {
        let all = try allAttachments()
        let here = Set(all.filter(\.held).map(\.sha256))
        var used = Self.heldBytes(all)
        var out: [AttachmentInfo] = []
        var listed = Set<String>()
        let wanted = all.filter { !$0.held && !$0.deleted && !here.contains($0.sha256) }
            .sorted { ($0.origin != origin ? 1 : 0, $0.updated) < ($1.origin != origin ? 1 : 0, $1.updated) }
        for a in wanted where out.count < limit {
            guard a.bytes > 0, a.bytes <= limits.maxAttachmentBytes, (used[a.origin] ?? 0) + a.bytes <= limits.attachmentQuotaBytes,
                listed.insert(a.sha256).inserted
            else { continue }
            used[a.origin, default: 0] += a.bytes
            out.append(a)
        }
        return out
    }

    /// The attachment whose file a peer may send: named by a live record held here (the one the
    /// sender wrote, if it wrote one: another node's record naming the same file with another
    /// size is not believed over it), within the per-file limit and its node's quota, the parts
    /// of its node's files already received counted. Nil when no record here names it.
    public func acceptableAttachment(_ sha256: String, from sender: NodeID? = nil) throws(SyncNodeError) -> AttachmentInfo? {
        let all = try allAttachments()
        let naming = all.filter { $0.sha256 == sha256 && !$0.deleted }
        guard let a = naming.first(where: { $0.origin == sender }) ?? naming.min(by: { $0.updated < $1.updated }) else { return nil }
        if a.bytes > limits.maxAttachmentBytes {
            throw SyncNodeError(
                .invalidInput,
                "the file \(sha256.prefix(12)) is \(ByteText.describe(a.bytes)); this node takes at most \(ByteText.describe(limits.maxAttachmentBytes))"
            )
        }
        guard !a.held else { return a }
        var partial = 0
        var seen = Set<String>()
        for other in all where other.origin == a.origin && !other.held && other.sha256 != sha256 && seen.insert(other.sha256).inserted {
            partial += files.partialSize(other.sha256)
        }
        if (Self.heldBytes(all)[a.origin] ?? 0) + partial + a.bytes > limits.attachmentQuotaBytes {
            throw SyncNodeError(
                .invalidInput,
                "node \(a.origin.short)'s attached files would pass the \(ByteText.describe(limits.attachmentQuotaBytes)) this node keeps of each node's; the file \(sha256.prefix(12)) was not taken"
            )
        }
        guard files.hasRoom(for: a.bytes) else {
            throw SyncNodeError(.diskFull, "this node's disk is nearly full; the file \(sha256.prefix(12)) was not taken. Free some space")
        }
        return a
    }

    /// Throws away files half received that no live record here names any more, and temporary
    /// files a crash left behind; at most once every ten minutes.
    public func sweepAttachmentLeftovers() {
        guard files.sweepDue(), let all = try? allAttachments() else { return }
        let here = Set(all.filter(\.held).map(\.sha256))
        files.sweep(keeping: Set(all.filter { !$0.deleted && !here.contains($0.sha256) }.map(\.sha256)))
    }

    /// The attached files named by live records here: how many are here and their bytes, and how
    /// many are still to come, as a round would fetch them (`status`, `/metrics`).
    public func attachmentSummary() throws(SyncNodeError) -> (held: Int, heldBytes: Int, missing: Int) {
        var held: [String: Int] = [:]
        for a in try allAttachments() where !a.deleted && a.held { held[a.sha256] = a.bytes }
        return (held.count, held.values.reduce(0, +), try missingAttachments(limit: .max).count)
    }

    /// Bytes of attached files held here, by the node that attached them.
    public func heldAttachmentBytes() throws(SyncNodeError) -> [NodeID: Int] { Self.heldBytes(try allAttachments()) }

    private static func heldBytes(_ all: [AttachmentInfo]) -> [NodeID: Int] {
        var seen = Set<String>()
        var out: [NodeID: Int] = [:]
        for a in all where a.held && seen.insert(a.sha256).inserted { out[a.origin, default: 0] += a.bytes }
        return out
    }

    private func attachmentInfo(_ view: RecordView) -> AttachmentInfo? {
        guard let reference = Attachment.Reference(attachmentID: view.recordID) else { return nil }
        func text(_ field: String) -> String? { if case .text(let t)? = view.fields[field] { t } else { nil } }
        func number(_ field: String) -> Double? {
            switch view.fields[field] {
            case .real(let d)?: d
            case .int(let i)?: Double(i)
            default: nil
            }
        }
        guard case .int(let bytes)? = view.fields[Attachment.Field.bytes], bytes >= 0, bytes <= Int64(StoreLimits.largestAttachment) else {
            return nil
        }
        return AttachmentInfo(
            reference: reference, bytes: Int(bytes), mediaType: text(Attachment.Field.mediaType) ?? "application/octet-stream",
            name: text(Attachment.Field.name), caption: text(Attachment.Field.caption), attachedAt: text(Attachment.Field.attachedAt),
            attachedBy: text(Attachment.Field.attachedBy), takenAt: text(Attachment.Field.takenAt), latitude: number(Attachment.Field.latitude),
            longitude: number(Attachment.Field.longitude), origin: view.updated.node, updated: view.updated,
            held: files.size(reference.sha256) != nil, deleted: view.deleted)
    }
}
