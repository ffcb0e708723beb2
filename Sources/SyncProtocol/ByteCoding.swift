/// The byte-level pieces shared by the binary transaction form (`BinaryCodec`) and the node's
/// packed records (SyncNode's `RecordCodec`): LEB128 varints, big-endian 64-bit words, text as a
/// varint length then UTF-8, and values as a tag then the content (0 null, 1 integer as a zigzag
/// varint, 2 real as its IEEE 754 bits, 3 text).
public enum ByteWriting {
    @inlinable
    public static func varint(_ v: UInt64, into out: inout [UInt8]) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    @inlinable
    public static func fixed(_ v: UInt64, into out: inout [UInt8]) {
        withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) }
    }

    @inlinable
    public static func text(_ s: String, into out: inout [UInt8]) {
        var s = s
        s.withUTF8 { bytes in
            varint(UInt64(bytes.count), into: &out)
            out.append(contentsOf: bytes)
        }
    }

    /// Any value, reals included whatever they hold (callers that must refuse non-finite reals
    /// check first).
    @inlinable
    public static func value(_ v: Value, into out: inout [UInt8]) {
        switch v {
        case .null:
            out.append(0)
        case .int(let i):
            out.append(1)
            varint(zigzag(i), into: &out)
        case .real(let d):
            out.append(2)
            fixed(d.bitPattern, into: &out)
        case .text(let s):
            out.append(3)
            text(s, into: &out)
        }
    }

    /// Small magnitudes of either sign as small unsigned numbers: 0, -1, 1, -2 … → 0, 1, 2, 3 …
    @inlinable
    public static func zigzag(_ i: Int64) -> UInt64 { UInt64(bitPattern: (i << 1) ^ (i >> 63)) }

    @inlinable
    public static func unzigzag(_ z: UInt64) -> Int64 { Int64(bitPattern: z >> 1) ^ -Int64(bitPattern: z & 1) }
}

/// The reading side of `ByteWriting`, without an error type: `nil` means the bytes end too soon
/// (or a varint overflows 64 bits). The binary transaction decoder and the packed-record reader
/// each turn that into their own error and add their own checks.
public enum ByteReading {
    /// A LEB128 varint at `at`, advancing `at` past it; `shortest` is false for an overlong form
    /// (a final zero byte after the first).
    @inlinable
    public static func varint(_ bytes: UnsafeBufferPointer<UInt8>, _ at: inout Int) -> (value: UInt64, shortest: Bool)? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var i = at
        while i < bytes.count {
            let b = bytes[i]
            i += 1
            if shift == 63 && b > 1 { return nil }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 {
                at = i
                return (result, b != 0 || shift == 0)
            }
            shift += 7
        }
        return nil
    }

    /// A big-endian 64-bit word at `at`, advancing `at` past it.
    @inlinable
    public static func fixed(_ bytes: UnsafeBufferPointer<UInt8>, _ at: inout Int) -> UInt64? {
        guard bytes.count - at >= 8 else { return nil }
        var v: UInt64 = 0
        for k in at..<(at + 8) { v = v << 8 | UInt64(bytes[k]) }
        at += 8
        return v
    }
}
