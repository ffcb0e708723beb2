/// The framing shared by pull responses, push requests and bundle bodies:
///
/// ```
/// <header JSON>\n
/// <decimal length>\n<transaction bytes>\n      (repeated)
/// ```
///
/// Length-prefixed frames carry each transaction's exact bytes without re-encoding.
public enum BatchCodec {
    public static func encode(header: [UInt8], frames: [[UInt8]]) -> [UInt8] {
        var out = header
        out.reserveCapacity(header.count + 1 + frames.reduce(0) { $0 + $1.count + 12 })
        out.append(0x0A)
        for frame in frames {
            out += Array(String(frame.count).utf8)
            out.append(0x0A)
            out += frame
            out.append(0x0A)
        }
        return out
    }

    /// Splits a batch into its header bytes and frames. Throws when the framing is broken.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> (header: ArraySlice<UInt8>, frames: [ArraySlice<UInt8>]) {
        guard let nl = bytes.firstIndex(of: 0x0A) else { throw .malformed("the batch has no header line") }
        return (bytes[..<nl], try frames(bytes[(nl + 1)...]))
    }

    /// A pull answer or push body read whole: its header, checked to announce as many frames as
    /// arrived, and its frames still encoded (`ReceivedTransaction(frame:)` reads each). The one
    /// reader of a batch.
    public static func read(_ bytes: [UInt8]) throws(WireError) -> (header: BatchHeader, frames: [ArraySlice<UInt8>]) {
        let (headerBytes, frames): (ArraySlice<UInt8>, [ArraySlice<UInt8>])
        do {
            (headerBytes, frames) = try decode(bytes)
        } catch {
            throw .framing("the body is not a batch: \(error)")
        }
        let header: BatchHeader
        do {
            header = try WireCodec.decodeMessage(BatchHeader.self, from: headerBytes)
        } catch {
            throw .framing("the batch header is not valid JSON of the expected shape (protocolVersion, from, count, more, clock)")
        }
        guard header.count == frames.count else {
            throw .framing("the batch header announces \(header.count) transactions but \(frames.count) arrived")
        }
        return (header, frames)
    }

    /// Splits a run of frames.
    public static func frames(_ bytes: ArraySlice<UInt8>) throws(WireError) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var cursor = bytes
        while !cursor.isEmpty {
            let (length, start) = try lengthLine(cursor, frame: out.count + 1)
            guard let length else { throw .malformed("frame \(out.count + 1) has no valid length line") }
            guard cursor.endIndex - start >= length + 1, cursor[start + length] == 0x0A else {
                throw .malformed("frame \(out.count + 1) is truncated")
            }
            out.append(cursor[start..<(start + length)])
            cursor = cursor[(start + length + 1)...]
        }
        return out
    }

    /// The length line at the start of `bytes`: the length and where the frame's bytes start, or a
    /// nil length when the line is not complete yet. Throws when it cannot be a length line.
    static func lengthLine(_ bytes: ArraySlice<UInt8>, frame: Int) throws(WireError) -> (length: Int?, start: Int) {
        let digits = bytes.prefix(13)
        guard let nl = digits.firstIndex(of: 0x0A) else {
            if digits.count <= 12 && digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) { return (nil, bytes.startIndex) }
            throw .malformed("frame \(frame) has no valid length line")
        }
        guard nl > bytes.startIndex, bytes[bytes.startIndex..<nl].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let length = Int(String(decoding: bytes[bytes.startIndex..<nl], as: UTF8.self))
        else { throw .malformed("frame \(frame) has no valid length line") }
        return (length, nl + 1)
    }

    /// Reads frames from bytes that arrive in pieces (a bundle inflated as it is read), holding at
    /// most one frame and one piece in memory.
    public struct FrameReader: Sendable {
        private var pending: [UInt8] = []
        private var offset = 0
        public private(set) var framesRead = 0
        /// Largest frame accepted.
        public let maxFrameBytes: Int

        public init(maxFrameBytes: Int) { self.maxFrameBytes = maxFrameBytes }

        /// Adds the next piece of the stream.
        public mutating func feed(_ bytes: some Collection<UInt8>) {
            if offset > 0 && offset >= pending.count / 2 {
                pending.removeFirst(offset)
                offset = 0
            }
            pending += bytes
        }

        /// The next complete frame, or nil until more bytes are fed.
        public mutating func next() throws(WireError) -> [UInt8]? {
            let rest = pending[offset...]
            guard !rest.isEmpty else { return nil }
            let (length, start) = try BatchCodec.lengthLine(rest, frame: framesRead + 1)
            guard let length else { return nil }
            guard length <= maxFrameBytes else {
                throw .malformed("frame \(framesRead + 1) is \(length) bytes; at most \(maxFrameBytes) are accepted")
            }
            guard pending.count - start >= length + 1 else { return nil }
            guard pending[start + length] == 0x0A else { throw .malformed("frame \(framesRead + 1) is truncated") }
            let frame = Array(pending[start..<(start + length)])
            offset = start + length + 1
            framesRead += 1
            return frame
        }

        /// Call at the end of the stream: throws if a frame was left incomplete.
        public func finish() throws(WireError) {
            if offset < pending.count { throw .malformed("frame \(framesRead + 1) is truncated") }
        }
    }
}
