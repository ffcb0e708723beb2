import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a test needs of the machine beyond the project's own code. A test that cannot run here is
/// reported as skipped with its reason (`.enabled(if:)`), never as passed; in CI, where root and
/// every tool are there, nothing is skipped (`scripts/test` fails on a skip) and a missing
/// capability fails the test instead.
enum Capability {
    static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Root, and a tmpfs can be mounted (the full-disk and read-only faults).
    static let canMount: Bool = {
        guard getuid() == 0 else { return false }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("syncnode-probe-\(UUID().uuidString)").path
        guard (try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)) != nil else { return false }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        guard let r = try? Binary.shell("mount -t tmpfs -o size=64k tmpfs '\(directory)' 2>&1 && umount '\(directory)'") else { return false }
        return r.status == 0
    }()

    /// `sqlite3` or Python's sqlite3 module, to damage and inspect a database file from outside.
    static let sqliteTool: Bool = {
        let r = try? Binary.shell("command -v sqlite3 >/dev/null || python3 -c 'import sqlite3'")
        return r?.status == 0
    }()

    /// `/proc/PID/status` can be read (peak memory of a child process).
    static let procStatus: Bool = FileManager.default.isReadableFile(atPath: "/proc/self/status")
}
