// A libFuzzer entry point for the pure decoders of SyncProtocol (no I/O, no dependencies), built
// by scripts/fuzz-wire with `swiftc -sanitize=fuzzer,address` together with the SyncProtocol
// sources (it is not a SwiftPM target: SwiftPM would also build it without the sanitizer).
//
// Every input goes through the transaction decoder, the batch framing and the wire messages;
// libFuzzer reports any trap or memory error and saves the input.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWireInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? WireCodec.decode(bytes)
    if let (header, frames) = try? BatchCodec.decode(bytes) {
        _ = try? WireCodec.decodeMessage(BatchHeader.self, from: header)
        for frame in frames where frame.first == UInt8(ascii: "T") && frame.count > 65 {
            _ = try? WireCodec.decode(frame.dropFirst(65))
        }
    }
    _ = try? BatchCodec.frames(bytes[...])
    _ = try? WireCodec.decodeMessage(VersionVector.self, from: bytes)
    _ = try? WireCodec.decodeMessage(PullRequest.self, from: bytes)
    _ = try? WireCodec.decodeMessage(StatusMessage.self, from: bytes)
    _ = try? WireCodec.decodeMessage(PushResponse.self, from: bytes)
    return 0
}
