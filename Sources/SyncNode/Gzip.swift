import CCompressZlib
import CompressNIO
import NIOCore

/// gzip for bundles and HTTP bodies (zlib through CompressNIO).
public enum Gzip {
    public static func compress(_ bytes: [UInt8]) -> [UInt8] {
        var input = ByteBuffer(bytes: bytes)
        // Deflate into a buffer sized by zlib's own bound cannot overflow.
        guard let out = try? input.compress(with: .gzip()) else { return [] }
        return Array(out.readableBytesView)
    }

    /// Inflates gzip data, refusing output larger than `maxSize`.
    public static func decompress(_ bytes: [UInt8], maxSize: Int) throws(SyncNodeError) -> [UInt8] {
        var input = ByteBuffer(bytes: bytes)
        do {
            let out = Array(try input.decompress(with: .gzip(), maxSize: maxSize).readableBytesView)
            // zlib stops quietly at the end of its input, so a truncated stream must be caught
            // here: the gzip trailer holds the CRC-32 and the length of what it compressed.
            guard bytes.count >= 18 else { throw CompressNIOError.corruptData }
            let trailer = Array(bytes.suffix(8))
            let crc = trailer[0..<4].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let size = trailer[4..<8].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let actual = out.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
            guard size == UInt32(truncatingIfNeeded: out.count), crc == actual else { throw CompressNIOError.corruptData }
            return out
        } catch let error as CompressNIOError where error == .bufferOverflow {
            throw SyncNodeError.invalid("compressed data expands beyond \(maxSize) bytes")
        } catch {
            throw SyncNodeError.invalid("data is not valid gzip (truncated or corrupted)")
        }
    }
}
