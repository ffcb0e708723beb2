import ArgumentParser
import Foundation
import SyncNode

// Arguments that are not valid UTF-8 would be silently repaired by Swift; refuse them instead.
for index in 1..<Int(CommandLine.argc) {
    guard let raw = CommandLine.unsafeArgv[index] else { continue }
    let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self), count: strlen(raw))
    if String(validating: bytes, as: UTF8.self) == nil {
        note("error: argument \(index) is not valid UTF-8 text; syncnode stores UTF-8 only (convert it with iconv first)")
        exit(65)
    }
}

do {
    var command = try SyncNodeCommand.parseAsRoot()
    if var async = command as? any AsyncParsableCommand {
        try await async.run()
    } else {
        try command.run()
    }
} catch let failure as CLIFailure {
    note("error: \(failure.error.message)")
    exit(failure.error.exitCode)
} catch {
    SyncNodeCommand.exit(withError: error)
}
