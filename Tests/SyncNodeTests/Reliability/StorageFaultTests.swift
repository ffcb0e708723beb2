import Crypto
import Foundation
import SyncProtocol
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Storage faults with real files and the real binary: a read-only database, a full disk, a
/// damaged page. Each must give a clear message and exit 74, never a crash, and leave what was
/// there intact.
@Suite(.serialized) struct StorageFaultTests {
    static var isRoot: Bool { getuid() == 0 }

    /// Mounts a tmpfs of `size` at a fresh directory; nil (with a note) where mounting is not
    /// permitted.
    static func mountTmpfs(size: String) throws -> String? {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("syncnode-mnt-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let r = try Binary.shell("mount -t tmpfs -o size=\(size) tmpfs '\(directory)' 2>&1")
        guard r.status == 0 else {
            // The test is enabled only where mounting works, or in CI: reaching here is a failure.
            Issue.record("cannot mount a tmpfs here: \(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
            try? FileManager.default.removeItem(atPath: directory)
            return nil
        }
        return directory
    }

    static func unmount(_ directory: String) {
        _ = try? Binary.shell("umount '\(directory)' 2>/dev/null || umount -l '\(directory)'")
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func digest(_ path: String) -> String {
        let data = FileManager.default.contents(atPath: path) ?? Data()
        return Hex.string(SHA256.hash(data: data))
    }

    static func files(_ data: String) -> [String: String] {
        var out: [String: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: data)) ?? [] { out[name] = digest(data + "/" + name) }
        return out
    }

    @discardableResult
    static func mustRun(_ args: [String]) throws -> Binary.Result {
        let r = try Binary.run(args)
        guard r.status == 0 else { throw TestFailure("`syncnode \(args.joined(separator: " "))` exited \(r.status): \(r.stderr)") }
        return r
    }

    @Test(.enabled(if: !isRoot || Capability.canMount || Capability.inCI, "as root, needs a tmpfs mount"))
    func readOnlyDatabaseIsRefusedWithExit74AndLeftUnchanged() throws {
        // Root ignores permission bits, so as root the file system itself is made read-only.
        if Self.isRoot {
            guard let mount = try Self.mountTmpfs(size: "8m") else { return }
            defer { Self.unmount(mount) }
            let data = mount + "/node"
            try Self.mustRun(["init", "--data", data, "--site", "hq", "--role", "hq"])
            try Self.mustRun(["record", "put", "--data", data, "projects", "p1", "name=东丽小学"])
            let before = Self.files(data)
            #expect(try Binary.shell("mount -o remount,ro '\(mount)'").status == 0)
            let put = try Binary.run(["record", "put", "--data", data, "projects", "p2", "name=x"])
            #expect(put.status == 74)
            #expect(put.stderr.contains("cannot be written"), "\(put.stderr)")
            let append = try Binary.run(["ledger", "append", "--data", data, "trainings", "county=hq", "people:=3"])
            #expect(append.status == 74)
            // Reading still works, and nothing changed.
            let get = try Binary.run(["record", "get", "--data", data, "projects", "p1", "--json"])
            #expect(get.status == 0 && get.stdout.contains("东丽小学"))
            #expect(Self.files(data) == before)
        } else {
            let dir = try TempDirectory()
            defer {
                _ = try? Binary.shell("chmod -R u+w '\(dir.url.path)'")
                dir.remove()
            }
            let data = dir.path("node").path
            try Self.mustRun(["init", "--data", data, "--site", "hq", "--role", "hq"])
            try Self.mustRun(["record", "put", "--data", data, "projects", "p1", "name=kept"])
            let before = Self.files(data)
            chmod(data + "/node.sqlite", 0o444)
            #expect(try Binary.run(["record", "put", "--data", data, "projects", "p2", "name=x"]).status == 74)
            chmod(data, 0o555)
            #expect(try Binary.run(["record", "put", "--data", data, "projects", "p3", "name=x"]).status == 74)
            #expect(Self.files(data)["node.sqlite"] == before["node.sqlite"])
        }
    }

    @Test(.enabled(if: Capability.canMount || Capability.inCI, "needs root and a tmpfs mount"))
    func fullDiskIsRefusedWithExit74AndEarlierDataSurvives() throws {
        guard let mount = try Self.mountTmpfs(size: "1m") else { return }
        defer { Self.unmount(mount) }
        let data = mount + "/node"
        try Self.mustRun(["init", "--data", data, "--site", "hq", "--role", "hq"])
        try Self.mustRun(["record", "put", "--data", data, "projects", "p1", "name=kept", "funds:=5000000"])
        let entry = try Self.mustRun(["ledger", "append", "--data", data, "disbursements", "county=lintan", "amount_fen:=700"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // Fill the file system.
        _ = try Binary.shell("dd if=/dev/zero of='\(mount)/filler' bs=4k 2>/dev/null")
        var refusals = 0
        for i in 0..<6 {
            let r = try Binary.run(["record", "put", "--data", data, "projects", "big-\(i)", "text=\(String(repeating: "长", count: 6000))"])
            #expect(r.status == 74 || r.status == 0, "\(r.stderr)")
            if r.status == 74 {
                refusals += 1
                #expect(r.stderr.contains("disk is full"), "\(r.stderr)")
            }
        }
        #expect(refusals > 0)
        // Free the space: what was recorded before is intact, and writing works again.
        try FileManager.default.removeItem(atPath: mount + "/filler")
        let get = try Binary.run(["record", "get", "--data", data, "projects", "p1", "--json"])
        #expect(get.status == 0 && get.stdout.contains("\"funds\":5000000") && get.stdout.contains("kept"), "\(get.stdout)")
        #expect(try Binary.run(["ledger", "list", "--data", data, "disbursements", "--json"]).stdout.contains(entry))
        #expect(try Binary.run(["record", "put", "--data", data, "projects", "p2", "name=after"]).status == 0)
        let status = try Binary.run(["status", "--data", data, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any] ?? [:]
        let vector = object["vector"] as? [String: Int] ?? [:]
        #expect(object["transactions"] as? Int == vector.values.reduce(0, +))
    }

    /// Damages one page at a time (every page after the header page) of a checkpointed database
    /// and runs every read command: each answers 0 (the page is not on its path) or 74 with a
    /// clear message; none crashes; none modifies the file.
    @Test(.enabled(if: Capability.sqliteTool || Capability.inCI, "needs sqlite3 or python3's sqlite3 module"))
    func damagedPagesGiveExit74NeverACrash() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let data = dir.path("node").path
        try Self.mustRun(["init", "--data", data, "--site", "hq", "--role", "hq"])
        for i in 0..<40 {
            try Self.mustRun(["record", "put", "--data", data, "projects", "p\(i)", "name=\(String(repeating: "东丽", count: 80))", "n:=\(i)"])
        }
        try Self.mustRun(["ledger", "append", "--data", data, "disbursements", "county=lintan", "amount_fen:=700"])
        // Move everything into the main file (a checkpoint), so pages hold the data; and leave no
        // free page (VACUUM), so that the page GRDB's WAL set-up takes on open is a new one at the
        // end, not a free page inside the file that this test would see change.
        let checkpoint = try Binary.shell(
            "command -v sqlite3 >/dev/null && sqlite3 '\(data)/node.sqlite' 'PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);' || python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA wal_checkpoint(TRUNCATE)'); c.execute('VACUUM'); c.execute('PRAGMA wal_checkpoint(TRUNCATE)'); c.close()\" '\(data)/node.sqlite'"
        )
        guard checkpoint.status == 0 else {
            Issue.record("neither sqlite3 nor python3 could checkpoint the database: \(checkpoint.stderr)")
            return
        }
        // The pages of the schema table: GRDB's WAL set-up on open creates and drops a table,
        // which rewrites them (and may append a page); every other page must stay as it was.
        let schema = try Binary.shell(
            "command -v sqlite3 >/dev/null && sqlite3 '\(data)/node.sqlite' \"SELECT pageno FROM dbstat WHERE name = 'sqlite_schema'\" || python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print('\\n'.join(str(r[0]) for r in c.execute(\\\"SELECT pageno FROM dbstat WHERE name = 'sqlite_schema'\\\")))\" '\(data)/node.sqlite'"
        )
        let schemaPages = Set(schema.stdout.split(separator: "\n").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) })
        #expect(schemaPages.contains(1), "\(schema.stderr)")
        let original = try Data(contentsOf: URL(fileURLWithPath: data + "/node.sqlite"))
        let pageSize = 4096
        let pages = original.count / pageSize
        #expect(pages > 4)
        let reads: [[String]] = [
            ["status", "--json"], ["record", "list", "projects", "--json"], ["record", "get", "projects", "p5"], ["ledger", "list", "disbursements"],
            ["vector"], ["conflicts"], ["record", "history", "projects", "p7"], ["rejections"],
        ]
        var answered74 = 0
        for page in 1..<min(pages, 40) {
            let copy = dir.path("copy-\(page)").path
            try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: data + "/node.key", toPath: copy + "/node.key")
            var damaged = original
            for i in (page * pageSize + 8)..<((page + 1) * pageSize) { damaged[i] = UInt8(truncatingIfNeeded: i &* 37 &+ 11) }
            try damaged.write(to: URL(fileURLWithPath: copy + "/node.sqlite"))
            for args in reads {
                let r = try Binary.run(args + ["--data", copy])
                #expect(r.status == 0 || r.status == 74, "page \(page + 1), \(args): exit \(r.status) \(r.stderr)")
                if r.status == 74 {
                    answered74 += 1
                    #expect(r.stderr.contains("damaged"), "page \(page + 1), \(args): \(r.stderr)")
                }
            }
            // What was there is not touched: every page but the schema table's is as it was.
            // (Opening a database whose WAL file is absent makes GRDB set up WAL with a
            // create-and-drop table in a savepoint, which rewrites the schema table's pages and may
            // append one free page; see docs/RELIABILITY.md.)
            let after = try Data(contentsOf: URL(fileURLWithPath: copy + "/node.sqlite"))
            #expect(after.count >= damaged.count)
            for p in 0..<pages where !schemaPages.contains(p + 1) {
                let range = (p * pageSize)..<((p + 1) * pageSize)
                #expect(after[range] == damaged[range], "page \(page + 1) damaged: a read modified page \(p + 1)")
            }
            try? FileManager.default.removeItem(atPath: copy)
        }
        #expect(answered74 > 0)
    }
}

/// Issue 15, defect 10: reads on a data directory mounted read-only failed with 74 (the WAL's
/// -shm file could not be made). Needs root (a read-only bind mount).
@Suite struct ReadOnlyDirectoryTests {
    @Test(.enabled(if: getuid() == 0)) func readsWorkOnAReadOnlyMountAndWritesSayWhy() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let source = dir.path("source").path
        let mounted = dir.path("mounted").path
        try FileManager.default.createDirectory(atPath: mounted, withIntermediateDirectories: true)
        try Federation.hq(source + "/n")
        try Binary.run(["record", "put", "--data", source + "/n", "projects", "p1", "name=x"])
        // As after a clean close: everything checkpointed, no -wal or -shm file left.
        let closed = try Binary.shell("sqlite3 \(source)/n/node.sqlite 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null")
        #expect(closed.status == 0, "\(closed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: source + "/n/node.sqlite-wal"))
        let bind = try Binary.shell("mount --bind \(source) \(mounted) && mount -o remount,ro,bind \(mounted)")
        guard bind.status == 0 else {
            Issue.record("cannot make a read-only bind mount here: \(bind.stderr)")
            return
        }
        defer { _ = try? Binary.shell("umount \(mounted)") }
        let list = try Binary.run(["record", "list", "--data", mounted + "/n", "projects", "--json"])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains("p1"))
        #expect(try Binary.run(["status", "--data", mounted + "/n"]).status == 0)
        // The review cannot keep its lists here: it checks every entry and record itself.
        let review = try Binary.run(["report", "review", "--data", mounted + "/n", "--json"])
        #expect(review.status == 0 && review.stdout.contains("projects/p1"), "\(review.stdout) \(review.stderr)")
        let put = try Binary.run(["record", "put", "--data", mounted + "/n", "projects", "p2", "name=y"])
        #expect(put.status == 74)
        #expect(put.stderr.contains("cannot be written"))
    }
}
