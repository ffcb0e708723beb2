/// A string compared and hashed by its UTF-8 bytes.
///
/// Swift's `String ==` treats canonically equivalent spellings as equal (`"é"` precomposed and `"e"`
/// + combining accent), while SQLite, the wire and every other replica compare bytes. Names and ids
/// that decide which record or field a write lands in are therefore compared with this type, so a
/// decision never depends on which spelling a process happened to see first.
public struct ExactText: Hashable, Sendable {
    public let text: String

    public init(_ text: String) {
        self.text = text
    }

    public static func == (lhs: ExactText, rhs: ExactText) -> Bool { lhs.text.sameBytes(as: rhs.text) }

    public func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

extension String {
    /// Byte-wise equality of the UTF-8 encodings (not Unicode canonical equivalence).
    @inlinable @inline(__always)
    public func sameBytes(as other: String) -> Bool {
        // Two strings with the same representation (the same short string stored inline, or the
        // same storage) have the same bytes: the usual case on hot paths, where one name is
        // compared with copies of itself.
        if unsafeBitCast(self, to: (UInt64, UInt64).self) == unsafeBitCast(other, to: (UInt64, UInt64).self) { return true }
        return compareBytes(other)
    }

    @usableFromInline
    func compareBytes(_ other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        var a = self
        var b = other
        // Names are short: a plain loop beats a call to memcmp.
        return a.withUTF8 { pa in
            b.withUTF8 { pb in
                var k = 0
                while k < pa.count {
                    if pa[k] != pb[k] { return false }
                    k += 1
                }
                return true
            }
        }
    }

    /// Byte-wise order of the UTF-8 encodings.
    public func bytesPrecede(_ other: String) -> Bool { utf8.lexicographicallyPrecedes(other.utf8) }
}
