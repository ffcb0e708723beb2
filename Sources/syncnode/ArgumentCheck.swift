import Foundation

/// Arguments that are not valid UTF-8 would be silently repaired by Swift (bytes replaced by
/// U+FFFD) and stored damaged; refuse them instead.
enum ArgumentCheck {
    static func refuseInvalidUTF8() {
        // (No arguments at all when the runtime cannot read them: a chroot without /proc.)
        for index in stride(from: 1, to: Int(CommandLine.argc), by: 1) {
            guard let raw = CommandLine.unsafeArgv[index] else { continue }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self), count: strlen(raw))
            if String(validating: bytes, as: UTF8.self) == nil {
                note("error: argument \(index) is not valid UTF-8 text; syncnode stores UTF-8 only (convert it with iconv first)")
                exit(65)
            }
        }
    }
}
