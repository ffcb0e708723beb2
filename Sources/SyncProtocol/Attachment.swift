/// A file attached to a record as evidence (a photo of a school's construction, a signed PDF).
///
/// The file is named by its SHA-256 and stored beside a node's database; what replicates in the
/// signed log is a record of the `attachments` collection whose id names the record it belongs to
/// and the file: `COLLECTION/RECORD-ID/SHA256`. The file itself travels after the records
/// (`/v1/attachments/…`) and is checked against its name on arrival. Because the owning record is
/// part of the id, an attachment follows that record's policy (`PolicyRules.violation`): a county
/// attaches only to its own records.
public enum Attachment {
    public static let collection = "attachments"

    /// The fields of an attachment record.
    public enum Field {
        public static let sha256 = "sha256"
        public static let bytes = "bytes"
        public static let mediaType = "media_type"
        public static let name = "name"
        public static let caption = "caption"
        /// When the file was attached (ISO 8601, UTC), and by whom (the author's name).
        public static let attachedAt = "attached_at"
        public static let attachedBy = "attached_by"
        /// Where and when the photo was taken, when the person allowed the phone to say.
        public static let takenAt = "taken_at"
        public static let latitude = "latitude"
        public static let longitude = "longitude"
    }

    /// The record the file belongs to, and the file.
    public struct Reference: Hashable, Sendable {
        public var collection: String
        public var recordID: String
        public var sha256: String

        public init(collection: String, recordID: String, sha256: String) {
            self.collection = collection
            self.recordID = recordID
            self.sha256 = sha256
        }

        /// The attachment record's id: `COLLECTION/RECORD-ID/SHA256`.
        public var attachmentID: String { "\(collection)/\(recordID)/\(sha256)" }

        /// Reads an attachment record's id; nil when it is not of that form (a collection holding
        /// no `/`, a record id, 64 lower-case hex digits). The owner may not be an attachment.
        public init?(attachmentID id: String) {
            guard let firstSlash = id.firstIndex(of: "/"), let lastSlash = id.lastIndex(of: "/"), firstSlash < lastSlash else { return nil }
            let collection = String(id[..<firstSlash])
            let recordID = String(id[id.index(after: firstSlash)..<lastSlash])
            let sha = String(id[id.index(after: lastSlash)...])
            guard !collection.isEmpty, !recordID.isEmpty, collection != Attachment.collection, Attachment.isSHA256(sha) else { return nil }
            self.init(collection: collection, recordID: recordID, sha256: sha)
        }

        /// The id prefix of every attachment of one record.
        public static func prefix(collection: String, recordID: String) -> String { "\(collection)/\(recordID)/" }
    }

    /// Whether `text` is a SHA-256 as files are named: 64 lower-case hex digits.
    public static func isSHA256(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// The kinds of file that may be attached, recognised by their first bytes (never by a name
    /// or by what a sender claims).
    public enum MediaType: String, CaseIterable, Sendable {
        case jpeg = "image/jpeg"
        case png = "image/png"
        case webp = "image/webp"
        case heic = "image/heic"
        case pdf = "application/pdf"

        /// The file's kind from its first 16 bytes, or nil when it is none of these.
        public init?(leadingBytes b: [UInt8]) {
            func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
                b.count >= offset + prefix.count && Array(b[offset..<offset + prefix.count]) == prefix
            }
            if starts([0xFF, 0xD8, 0xFF]) {
                self = .jpeg
            } else if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
                self = .png
            } else if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) {
                self = .webp
            } else if starts(Array("ftyp".utf8), at: 4), ["heic", "heix", "mif1", "msf1", "heif"].contains(where: { starts(Array($0.utf8), at: 8) }) {
                self = .heic
            } else if starts(Array("%PDF-".utf8)) {
                self = .pdf
            } else {
                return nil
            }
        }

        /// Whether people see it as a picture.
        public var isImage: Bool { self != .pdf }
    }

    /// Said when a file is none of the kinds above.
    public static let kindsAccepted = "a photo (JPEG, PNG, WebP or HEIC) or a PDF file"
}
