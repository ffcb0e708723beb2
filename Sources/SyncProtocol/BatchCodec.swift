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

    /// Splits a run of frames.
    public static func frames(_ bytes: ArraySlice<UInt8>) throws(WireError) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var cursor = bytes
        while !cursor.isEmpty {
            guard let nl = cursor.firstIndex(of: 0x0A), nl - cursor.startIndex <= 12, nl > cursor.startIndex,
                cursor[cursor.startIndex..<nl].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let length = Int(String(decoding: cursor[cursor.startIndex..<nl], as: UTF8.self))
            else { throw .malformed("frame \(out.count + 1) has no valid length line") }
            let start = nl + 1
            guard cursor.endIndex - start >= length + 1, cursor[start + length] == 0x0A else {
                throw .malformed("frame \(out.count + 1) is truncated")
            }
            out.append(cursor[start..<(start + length)])
            cursor = cursor[(start + length + 1)...]
        }
        return out
    }
}
