/// A field value. Money and counts are integers (amounts in fen); `real` is for measurements.
public enum Value: Hashable, Sendable, CustomStringConvertible {
    case null
    case int(Int64)
    case real(Double)
    case text(String)

    /// True for non-zero integers: how the `_deleted` field is read.
    public var isTruthy: Bool {
        if case .int(let i) = self { return i != 0 }
        return false
    }

    /// Plain text for tables: no quotes, `null` shown as empty.
    public var description: String {
        switch self {
        case .null: return ""
        case .int(let i): return String(i)
        case .real(let d): return String(d)
        case .text(let s): return s
        }
    }

    /// False only for a real that is infinite or NaN: JSON cannot carry those.
    public var isFiniteOrNotReal: Bool {
        if case .real(let d) = self { return d.isFinite }
        return true
    }

    /// Size of the value's content in bytes, for limits.
    public var byteCount: Int {
        switch self {
        case .text(let s): return s.utf8.count
        default: return 8
        }
    }
}

/// Wire form: JSON null, integer, string; a real is `{"real": 1.5}` so that it never comes back as
/// an integer. JSON booleans are read as the integers 1 and 0 (SQLite has no boolean either).
extension Value: Codable {
    private enum RealKey: String, CodingKey { case real }

    public init(from decoder: any Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: RealKey.self) {
            self = .real(try keyed.decode(Double.self, forKey: .real))
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let b = try? single.decode(Bool.self) {
            self = .int(b ? 1 : 0)
        } else if let i = try? single.decode(Int64.self) {
            self = .int(i)
        } else if let s = try? single.decode(String.self) {
            self = .text(s)
        } else {
            throw DecodingError.dataCorruptedError(
                in: single, debugDescription: "a value is null, an integer, a string or {\"real\": number}")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .real(let d):
            var keyed = encoder.container(keyedBy: RealKey.self)
            try keyed.encode(d, forKey: .real)
        case .null:
            var single = encoder.singleValueContainer()
            try single.encodeNil()
        case .int(let i):
            var single = encoder.singleValueContainer()
            try single.encode(i)
        case .text(let s):
            var single = encoder.singleValueContainer()
            try single.encode(s)
        }
    }
}
