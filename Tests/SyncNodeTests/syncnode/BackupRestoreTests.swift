import Foundation
import Testing

/// Backup while the node is being written to by another process, restore into a new directory,
/// check, and sync: the restored node takes back what it recorded after the backup.
@Suite struct BackupRestoreTests {
    @Test func aBackupDuringWritesRestoresAndTheRestoredNodeLosesNothing() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        let county = dir.path("lintan").path
        try Federation.member(county, site: "lintan", label: "lintan-1", hq: hq)
        let server = try ServeProcess(data: hq)
        defer { _ = server.stop() }
        #expect(try await Binary.runAsync(["sync", "--data", county, "--peer", server.url]).status == 0)

        // 300 writes by another process while the backup runs.
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/bin/sh")
        writer.arguments = [
            "-c", "for i in $(seq 1 300); do \"$SYNCNODE\" record put --data '\(county)' projects lt-$i n:=$i >/dev/null || exit 1; done",
        ]
        writer.environment = ProcessInfo.processInfo.environment.merging(["SYNCNODE": Binary.url.path]) { $1 }
        try writer.run()
        try await Task.sleep(for: .seconds(2))
        let file = dir.path("lintan.backup").path
        let backup = try await Binary.runAsync(["backup", "--data", county, "--out", file, "--json"])
        #expect(backup.status == 0, "\(backup.stderr)")
        while writer.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        #expect(writer.terminationStatus == 0)
        #expect(try await Binary.runAsync(["sync", "--data", county, "--peer", server.url]).status == 0)

        // A live node is never overwritten; a damaged file restores nothing.
        let over = try await Binary.runAsync(["restore", "--data", county, file])
        #expect(over.status == 73, "\(over.stderr)")
        var damaged = try Data(contentsOf: URL(fileURLWithPath: file))
        damaged[damaged.count - 10] ^= 0xFF
        let damagedFile = dir.path("damaged.backup").path
        try damaged.write(to: URL(fileURLWithPath: damagedFile))
        let refused = try await Binary.runAsync(["restore", "--data", dir.path("nothing").path, damagedFile])
        #expect(refused.status == 65 && refused.stderr.contains("damaged"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.path("nothing").path + "/node.sqlite"))

        let restored = dir.path("restored").path
        let r = try await Binary.runAsync(["restore", "--data", restored, file])
        #expect(r.status == 0, "\(r.stderr)")
        let check = try await Binary.runAsync(["check", "--data", restored, "--json"])
        #expect(check.status == 0 && check.stdout.contains("\"healthy\":true"), "\(check.stdout) \(check.stderr)")
        let own = try Federation.identity(county)["node"] as? String ?? ""
        func seq(_ node: String) async throws -> Int {
            let v =
                try JSONSerialization.jsonObject(with: Data(try await Binary.runAsync(["vector", "--data", node, "--json"]).stdout.utf8))
                as? [String: Int]
            return v?[own] ?? 0
        }
        let atBackup = try await seq(restored)
        let final = try await seq(county)
        #expect(atBackup < final, "the backup was taken while writing: \(atBackup) of \(final)")
        // The restored node syncs: it takes back its own later work from HQ, and loses nothing.
        #expect(try await Binary.runAsync(["sync", "--data", restored, "--peer", server.url]).status == 0)
        #expect(try await seq(restored) == final)
        let records = try await Binary.runAsync(["record", "list", "--data", restored, "projects", "--json"])
        let list = try JSONSerialization.jsonObject(with: Data(records.stdout.utf8)) as? [[String: Any]]
        #expect(list?.count == 300)
        #expect(try await Binary.runAsync(["check", "--data", restored]).status == 0)
    }
}

/// Operators' first steps: the version, a sync with nowhere to go, a port already taken.
@Suite struct OperatorMessagesTests {
    @Test func versionNoPeerAndTakenPortAnswerPlainly() async throws {
        let version = try await Binary.runAsync(["--version"])
        #expect(version.status == 0 && version.stdout.contains("protocol 3") && version.stdout.contains("schema 8"), "\(version.stdout)")
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        #expect(try await Binary.runAsync(["init", "--data", hq, "--site", "hq", "--role", "hq"]).status == 0)
        let sync = try await Binary.runAsync(["sync", "--data", hq])
        #expect(sync.status == 64 && sync.stderr.contains("no peer to sync with"), "\(sync.stderr)")
        let first = try ServeProcess(data: hq)
        defer { _ = first.stop() }
        let second = try await Binary.runAsync(["serve", "--data", hq, "--listen", "127.0.0.1:\(first.port)"])
        #expect(second.status == 71 && second.stderr.contains("in use"), "\(second.stderr)")
    }
}
