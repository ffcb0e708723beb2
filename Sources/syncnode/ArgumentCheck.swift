import Foundation

/// Arguments that are not valid UTF-8 would be silently repaired by Swift (bytes replaced by
/// U+FFFD) and stored damaged; refuse them instead.
enum ArgumentCheck {
    static func refuseInvalidUTF8() {
        for index in 1..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[index] else { continue }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self), count: strlen(raw))
            if String(validating: bytes, as: UTF8.self) == nil {
                note("error: argument \(index) is not valid UTF-8 text; syncnode stores UTF-8 only (convert it with iconv first)")
                exit(65)
            }
        }
    }
}
