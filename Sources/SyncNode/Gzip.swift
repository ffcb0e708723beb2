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
            let out = try input.decompress(with: .gzip(), maxSize: maxSize)
            return Array(out.readableBytesView)
        } catch let error as CompressNIOError where error == .bufferOverflow {
            throw SyncNodeError.invalid("compressed data expands beyond \(maxSize) bytes")
        } catch {
            throw SyncNodeError.invalid("data is not valid gzip (truncated or corrupted)")
        }
    }
}
