import Foundation
import Testing

/// Each class of bad input gets a clear message, a stable non-zero exit code, and writes nothing.
@Suite struct CLIBadInputTests {
    /// A node with one record, and a fingerprint of everything it holds.
    private func node() throws -> (TempDirectory, String) {
        let dir = try TempDirectory()
        let data = dir.path("n").path
        try Federation.hq(data)
        try Binary.run(["record", "put", "--data", data, "projects", "cd-clinic", "name=东丽卫生院"])
        return (dir, data)
    }

    private func fingerprint(_ data: String) throws -> String {
        try Binary.run(["status", "--data", data, "--json"]).stdout
            + (try Binary.run(["record", "list", "--data", data, "projects", "--json"]).stdout)
    }

    @Test(arguments: [
        (["frobnicate"], "Unexpected argument"),
        (["record", "put", "--colour", "projects", "x", "a=b"], "Unknown option"),
        (["record", "put", "projects", "x", "nonsense"], "FIELD=VALUE"),
        (["record", "put", "projects", "x", "=value"], "no field name"),
        (["record", "put", "projects", "x", "funds:=lots"], "not a number"),
        (["record", "put", "projects", "x"], "at least one"),
    ])
    func usageErrorsExit64AndWriteNothing(arguments: [String], message: String) throws {
        let (dir, data) = try node()
        defer { dir.remove() }
        let before = try fingerprint(data)
        var args = arguments
        if args.count > 2 { args.insert(contentsOf: ["--data", data], at: 2) }
        let result = try Binary.run(args)
        #expect(result.status == 64, "\(arguments): \(result.stderr)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(try fingerprint(data) == before)
    }

    @Test func reservedFieldNameIsRefusedWithExit65() throws {
        let (dir, data) = try node()
        defer { dir.remove() }
        let before = try fingerprint(data)
        let result = try Binary.run(["record", "put", "--data", data, "projects", "x", "_deleted=1"])
        #expect(result.status == 65)
        #expect(result.stderr.contains("reserved"))
        #expect(try fingerprint(data) == before)
    }

    @Test func missingNodeDirectoryExits66AndCreatesNothing() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let missing = dir.path("nowhere").path
        let result = try Binary.run(["record", "list", "--data", missing, "projects"])
        #expect(result.status == 66)
        #expect(result.stderr.contains("syncnode init"))
        #expect(!FileManager.default.fileExists(atPath: missing))
    }

    @Test func nonUTF8ArgumentExits65AndWritesNothing() throws {
        let (dir, data) = try node()
        defer { dir.remove() }
        let before = try fingerprint(data)
        let result = try Binary.shell(#""$SYNCNODE" record put --data "\#(data)" projects x "$(printf 'name=\377\376')""#)
        #expect(result.status == 65)
        #expect(result.stderr.contains("UTF-8"))
        #expect(try fingerprint(data) == before)
    }

    @Test func oversizedValueExits65AndWritesNothing() throws {
        let (dir, data) = try node()
        defer { dir.remove() }
        let before = try fingerprint(data)
        let result = try Binary.run(["record", "put", "--data", data, "projects", "x", "notes=" + String(repeating: "长", count: 30_000)])
        #expect(result.status == 65)
        #expect(result.stderr.contains("limit"))
        #expect(try fingerprint(data) == before)
    }

    @Test func corruptedDatabaseExits74AndIsLeftAsItWas() throws {
        let (dir, data) = try node()
        defer { dir.remove() }
        let file = URL(fileURLWithPath: data).appendingPathComponent("node.sqlite")
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: file.path + suffix) }
        var bytes = [UInt8](try Data(contentsOf: file))
        for i in 0..<min(bytes.count, 4096) { bytes[i] = UInt8(truncatingIfNeeded: i * 31) }
        try Data(bytes).write(to: file)
        let result = try Binary.run(["record", "put", "--data", data, "projects", "x", "a=b"])
        #expect(result.status == 74)
        #expect(result.stderr.contains("damaged"))
        #expect(try Data(contentsOf: file) == Data(bytes))
    }

    @Test func initOverAnExistingNodeExits73() throws {
        let (dir, data) = try node()
        defer { dir.remove() }
        let before = try fingerprint(data)
        let result = try Binary.run(["init", "--data", data, "--site", "hq", "--role", "hq"])
        #expect(result.status == 73)
        #expect(result.stderr.contains("already exists"))
        #expect(try fingerprint(data) == before)
    }

    @Test func unreadableVectorFileAndMissingRecordAreReportedClearly() throws {
        let (dir, data) = try node()
        defer { dir.remove() }
        let junk = dir.path("junk.json")
        try Data("not json".utf8).write(to: junk)
        let export = try Binary.run(["bundle", "export", "--data", data, "--out", dir.path("o").path, "--since", junk.path])
        #expect(export.status == 65)
        #expect(export.stderr.contains("syncnode vector --json"))
        let get = try Binary.run(["record", "get", "--data", data, "projects", "nope"])
        #expect(get.status == 3)
        #expect(get.stderr.contains("no record"))
    }
}
