/// One field write of a last-writer-wins record.
///
/// `base` is the timestamp of the value this write replaced on its origin (nil when the field had
/// none). `resolves` lists further concurrent versions the writer saw and deliberately replaced:
/// that is how a conflict is resolved.
public struct FieldWrite: Hashable, Sendable {
    public var collection: String
    public var recordID: String
    public var field: String
    public var value: Value
    public var base: Timestamp?
    public var resolves: [Timestamp]

    public init(
        collection: String, recordID: String, field: String, value: Value, base: Timestamp? = nil,
        resolves: [Timestamp] = []
    ) {
        self.collection = collection
        self.recordID = recordID
        self.field = field
        self.value = value
        self.base = base
        self.resolves = resolves
    }
}

/// One immutable ledger entry. Ledgers merge by set union on `(ledger, entryID)`.
public struct LedgerEntry: Hashable, Sendable {
    public var ledger: String
    public var entryID: String
    public var fields: [String: Value]

    public init(ledger: String, entryID: String, fields: [String: Value]) {
        self.ledger = ledger
        self.entryID = entryID
        self.fields = fields
    }

    /// The entry this one reverses, if it is a correction.
    public var reverses: String? {
        if case .text(let id)? = fields[Names.reversesField] { return id }
        return nil
    }
}

/// One change inside a transaction.
public enum Change: Hashable, Sendable {
    case set(FieldWrite)
    case append(LedgerEntry)
    /// Who made the transaction at its origin node (the web user, or the OS user of a command),
    /// signed with it: the origin's word, as everything it signs. At most one per transaction.
    case author(String)
    /// A change of a kind this version does not know, kept verbatim so it can be stored and relayed.
    case unknown(kind: String, payload: JSONValue)
}

/// Reserved names and the rules for user-chosen ones.
public enum Names {
    /// The field whose truthy value marks a record deleted.
    public static let deletedField = "_deleted"
    /// The ledger-entry field naming the entry a reversal corrects.
    public static let reversesField = "_reverses"
    /// The ledger-entry field naming the origin (node id, hex) of the entry a reversal corrects:
    /// the entry is then identified whatever other node used the same id.
    public static let reversesOriginField = "_reverses_origin"
    /// Whether `name` is a reserved field a ledger entry may carry.
    public static func isReservedEntryField(_ name: String) -> Bool { name == reversesField || name == reversesOriginField }
    /// Longest author name, in UTF-8 bytes.
    public static let maxAuthorBytes = 200

    /// Why `name` cannot be an author's name, or nil.
    public static func authorProblem(_ name: String) -> String? {
        if name.isEmpty { return "an author's name is empty" }
        if name.utf8.count > maxAuthorBytes { return "an author's name is longer than \(maxAuthorBytes) bytes" }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) { return "an author's name holds a control character" }
        return nil
    }

    /// Longest collection, ledger, record id, entry id or field name, in UTF-8 bytes.
    public static let maxNameBytes = 200

    /// Whether the text holds a control character (Unicode category Cc: U+0000–U+001F, U+007F,
    /// U+0080–U+009F), by a scan of its UTF-8 bytes.
    static func containsControlCharacter(_ text: String) -> Bool {
        var previous: UInt8 = 0
        for byte in text.utf8 {
            if byte < 0x20 || byte == 0x7F || (previous == 0xC2 && (0x80...0x9F).contains(byte)) { return true }
            previous = byte
        }
        return false
    }

    /// Why `name` cannot be used as a collection, ledger, record id or field name, or nil if it can.
    /// Reserved names (leading `_`) are allowed only where `allowReserved` is true.
    public static func problem(with name: String, what: String, allowReserved: Bool = false) -> String? {
        if name.isEmpty { return "\(what) is empty" }
        if name.utf8.count > maxNameBytes { return "\(what) is longer than \(maxNameBytes) bytes" }
        if containsControlCharacter(name) { return "\(what) contains a control character" }
        if !allowReserved && name.hasPrefix("_") { return "\(what) '\(name)' starts with '_', which is reserved" }
        return nil
    }
}
