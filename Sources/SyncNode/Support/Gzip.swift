import CZlib
import CompressNIO
import Foundation
import NIOCore

/// gzip for bundles and HTTP bodies (zlib through CompressNIO).
public enum Gzip {
    public static func compress(_ bytes: [UInt8]) -> [UInt8] {
        var input = ByteBuffer(bytes: bytes)
        // Deflate into a buffer sized by zlib's own bound cannot overflow.
        guard let out = try? input.compress(with: .gzip()) else { return [] }
        return Array(out.readableBytesView)
    }

    /// Inflates gzip data, refusing output larger than `maxSize` as soon as it passes it (a small
    /// body that inflates to gigabytes is stopped there). CompressNIO's `maxSize` did not bound
    /// the output (300 KiB came out of a 334-byte body under a 260 KiB bound), so this goes
    /// through the same bounded reader as bundles.
    public static func decompress(_ bytes: [UInt8], maxSize: Int) throws(SyncNodeError) -> [UInt8] {
        var given = false
        let reader = GzipReader(maxOutput: maxSize) { () throws(SyncNodeError) -> [UInt8] in
            defer { given = true }
            return given ? [] : bytes
        }
        var out: [UInt8] = []
        while let piece = try reader.next() { out += piece }
        return out
    }
}

/// Inflates a gzip stream read from a file in pieces, so a bundle of any size is read in bounded
/// memory; refuses to produce more than `maxOutput` bytes in all (a small file that inflates to
/// gigabytes is refused as soon as it passes the bound). zlib checks the CRC-32 and length in the
/// trailer; a stream that ends early, or has bytes after its end, is refused.
final class GzipReader {
    private var stream = z_stream()
    private var ready = false
    private var input: [UInt8] = []
    private var consumed = 0
    private var ended = false
    /// The next piece of the compressed stream; empty at its end.
    private let source: () throws(SyncNodeError) -> [UInt8]
    private let maxOutput: Int
    private(set) var totalOutput = 0
    /// Compressed bytes inflated so far.
    var compressedRead: Int { readFromFile - (input.count - consumed) }
    private var readFromFile = 0

    init(maxOutput: Int, source: @escaping () throws(SyncNodeError) -> [UInt8]) {
        self.source = source
        self.maxOutput = maxOutput
        ready = czlib_inflate_init2(&stream, 15 + 16) == Z_OK
    }

    /// Reads the compressed stream from `handle`'s position to the end of the file.
    convenience init(handle: FileHandle, maxOutput: Int) {
        self.init(maxOutput: maxOutput) { () throws(SyncNodeError) in
            do {
                return [UInt8](try handle.read(upToCount: 1 << 20) ?? Data())
            } catch {
                throw SyncNodeError(.invalidInput, "cannot read the file: \(error.localizedDescription)")
            }
        }
    }

    deinit {
        if ready { inflateEnd(&stream) }
    }

    /// The next inflated piece, or nil at the end of the stream.
    func next() throws(SyncNodeError) -> [UInt8]? {
        guard ready else { throw SyncNodeError(.storage, "zlib could not be set up") }
        if ended { return nil }
        var out = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            if consumed == input.count {
                input = try source()
                readFromFile += input.count
                consumed = 0
                if input.isEmpty { throw SyncNodeError.invalid("data is not valid gzip (truncated or corrupted)") }
            }
            var produced = 0
            let status: Int32 = input.withUnsafeMutableBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    stream.next_in = src.baseAddress! + consumed
                    stream.avail_in = uInt(src.count - consumed)
                    stream.next_out = dst.baseAddress
                    stream.avail_out = uInt(dst.count)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    consumed = src.count - Int(stream.avail_in)
                    produced = dst.count - Int(stream.avail_out)
                    stream.next_in = nil
                    stream.next_out = nil
                    return status
                }
            }
            totalOutput += produced
            if totalOutput > maxOutput { throw SyncNodeError.invalid("compressed data expands beyond \(maxOutput) bytes") }
            switch status {
            case Z_STREAM_END:
                ended = true
                var trailing = consumed < input.count
                if !trailing { trailing = try !source().isEmpty }
                if trailing { throw SyncNodeError.invalid("data is not valid gzip (bytes follow its end)") }
            case Z_OK, Z_BUF_ERROR:
                if produced == 0 { continue }
            default:
                throw SyncNodeError.invalid("data is not valid gzip (truncated or corrupted)")
            }
            out.removeSubrange(produced...)
            return out
        }
    }
}
