import CZlib
import Foundation
import Synchronization

/// zlib (deflate) for log bodies at rest. Streams are set up once and reset between bodies: setting
/// one up allocates up to 256 KiB and resetting clears its hash table, which cost more than
/// compressing a one-record body. Small bodies use a stream with a small window and hash table.
final class Deflate {
    /// Bodies shorter than this are stored as they are.
    static let threshold = 200
    /// Bodies shorter than this use the small stream.
    static let smallLimit = 4096

    private var small = z_stream()
    private var large = z_stream()
    private var smallReady = false
    private var largeReady = false

    init() {
        smallReady = czlib_deflate_init2(&small, 1, Z_DEFLATED, 10, 2, Z_DEFAULT_STRATEGY) == Z_OK
        largeReady = czlib_deflate_init2(&large, 1, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY) == Z_OK
    }

    deinit {
        if smallReady { deflateEnd(&small) }
        if largeReady { deflateEnd(&large) }
    }

    /// The deflated bytes (zlib format), or nil when deflating would not save space.
    func pack(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= Self.threshold else { return nil }
        if bytes.count < Self.smallLimit {
            return smallReady ? Self.pack(bytes, with: &small) : nil
        }
        return largeReady ? Self.pack(bytes, with: &large) : nil
    }

    private static func pack(_ bytes: [UInt8], with stream: inout z_stream) -> [UInt8]? {
        guard deflateReset(&stream) == Z_OK else { return nil }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))))
        let status = finish(&stream, input: bytes, output: &out) { deflate(&$0, Z_FINISH) }
        let size = Int(stream.total_out)
        guard status == Z_STREAM_END, size < bytes.count else { return nil }
        out.removeSubrange(size...)
        return out
    }
}

/// Runs one zlib call over all of `input` into `output`, the stream pointing at them only meanwhile.
private func finish(_ stream: inout z_stream, input: [UInt8], output: inout [UInt8], _ call: (inout z_stream) -> Int32) -> Int32 {
    var input = input
    return input.withUnsafeMutableBufferPointer { src in
        output.withUnsafeMutableBufferPointer { dst in
            stream.next_in = src.baseAddress
            stream.avail_in = uInt(src.count)
            stream.next_out = dst.baseAddress
            stream.avail_out = uInt(dst.count)
            defer {
                stream.next_in = nil
                stream.next_out = nil
            }
            return call(&stream)
        }
    }
}

/// Inflates log bodies; one stream reused for every body of a read.
final class Inflate {
    private var stream = z_stream()
    private var ready = false

    init() {
        ready = czlib_inflate_init2(&stream, 15) == Z_OK
    }

    deinit {
        if ready { inflateEnd(&stream) }
    }

    /// Inflates a body deflated by `Deflate.pack` to exactly `size` bytes.
    func unpack(_ bytes: Data, size: Int) throws(SyncNodeError) -> [UInt8] {
        guard size >= 0, size <= 1 << 30 else { throw SyncNodeError(.databaseCorrupt, "a stored transaction has an impossible size") }
        guard ready, inflateReset(&stream) == Z_OK else { throw SyncNodeError(.storage, "zlib could not be set up to read the log") }
        var out = [UInt8](repeating: 0, count: size)
        let status = finish(&stream, input: [UInt8](bytes), output: &out) { inflate(&$0, Z_FINISH) }
        guard status == Z_STREAM_END, Int(stream.total_out) == size else {
            throw SyncNodeError(.databaseCorrupt, "a stored transaction is damaged (it does not inflate); restore the node from a backup")
        }
        return out
    }
}

/// A transaction body as the log keeps it: deflated when that is smaller (`size` is then the
/// length of the original bytes), otherwise as it is.
struct LogBody: Sendable {
    let stored: [UInt8]
    let size: Int?

    static let empty = LogBody(stored: [], size: nil)

    private init(stored: [UInt8], size: Int?) {
        self.stored = stored
        self.size = size
    }

    init(_ body: [UInt8], _ deflater: borrowing Mutex<Deflate>) {
        if let packed = deflater.withLock({ $0.pack(body) }) {
            stored = packed
            size = body.count
        } else {
            stored = body
            size = nil
        }
    }
}
