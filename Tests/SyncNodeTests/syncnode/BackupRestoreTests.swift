import ChildProcess
import Foundation
import GRDB
import SyncNode
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
        let writer = try ChildProcess(
            "/bin/sh",
            ["-c", "for i in $(seq 1 300); do \"$SYNCNODE\" record put --data '\(county)' projects lt-$i n:=$i >/dev/null || exit 1; done"],
            environment: ProcessInfo.processInfo.environment.merging(["SYNCNODE": Binary.url.path]) { $1 }, stdin: .null)
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

/// What a backup holds is private, a damaged one restores nothing, `check` finds what was altered,
/// and a node refuses to open with another node's key.
@Suite struct BackupDamageTests {
    @Test func backupsArePrivateCheckFindsAlterationsAndAForeignKeyIsRefused() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        for i in 1...3 { #expect(try await Binary.runAsync(["record", "put", "--data", hq, "projects", "p-\(i)", "n:=\(i)"]).status == 0) }
        let file = dir.path("hq.backup").path
        #expect(try await Binary.runAsync(["backup", "--data", hq, "--out", file]).status == 0)
        func mode(_ path: String) throws -> Int { (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? 0) & 0o777 }
        #expect(try mode(file) == 0o600, "the backup holds the private key")

        // A checksum that does not match the content: nothing restored, the directory stays usable.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        bytes[18] ^= 0xFF
        let tampered = dir.path("tampered.backup").path
        try bytes.write(to: URL(fileURLWithPath: tampered))
        let target = dir.path("restored").path
        let refused = try await Binary.runAsync(["restore", "--data", target, tampered])
        #expect(refused.status == 65 && refused.stderr.contains("checksum"), "\(refused.stderr)")
        #expect(try await Binary.runAsync(["restore", "--data", target, file]).status == 0)
        #expect(try mode(target + "/node.key") == 0o600)
        #expect(try await Binary.runAsync(["check", "--data", target]).status == 0)

        // Altered in place: a signature, an own transaction's signature removed, a transaction deleted.
        let own = try Federation.identity(target)["node"] as? String ?? ""
        func alter(_ sql: String) throws {
            let db = try DatabaseQueue(path: target + "/node.sqlite")
            try db.write { db in try db.execute(sql: sql) }
            try db.close()
        }
        let ownRow = "origin = (SELECT ix FROM node WHERE id = x'\(own)')"
        try alter("UPDATE log SET sig = zeroblob(64) WHERE \(ownRow) AND seq = 2")
        var check = try await Binary.runAsync(["check", "--data", target, "--json"])
        #expect(check.status == 74 && check.stdout.contains("/2"), "\(check.stdout) \(check.stderr)")
        try alter("UPDATE log SET sig = NULL WHERE \(ownRow) AND seq = 3")
        check = try await Binary.runAsync(["check", "--data", target, "--json"])
        #expect(check.status == 74 && check.stdout.contains("own, unsigned"), "\(check.stdout)")
        try alter("DELETE FROM log WHERE \(ownRow) AND seq = 1")
        check = try await Binary.runAsync(["check", "--data", target, "--json"])
        #expect(check.status == 74 && check.stdout.contains("transactions logged"), "\(check.stdout)")

        // Another node's key file beside this database: refused before anything is signed with it.
        let other = dir.path("other").path
        #expect(try await Binary.runAsync(["init", "--data", other, "--site", "hq", "--role", "hq"]).status == 0)
        try FileManager.default.removeItem(atPath: hq + "/node.key")
        try FileManager.default.copyItem(atPath: other + "/node.key", toPath: hq + "/node.key")
        let foreign = try await Binary.runAsync(["record", "put", "--data", hq, "projects", "p-9", "n:=9"])
        #expect(foreign.status == 74 && foreign.stderr.contains("not node"), "\(foreign.stderr)")
    }
}

/// Operators' first steps: the version, a sync with nowhere to go, a port already taken.
@Suite struct OperatorMessagesTests {
    @Test func versionNoPeerAndTakenPortAnswerPlainly() async throws {
        let version = try await Binary.runAsync(["--version"])
        #expect(
            version.status == 0 && version.stdout.contains("protocol 3") && version.stdout.contains("schema \(Store.schemaVersion)"),
            "\(version.stdout)")
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
