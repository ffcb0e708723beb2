import Foundation
import Testing

/// The node's files hold web users' password hashes, its private key and all the programme's
/// data: owner-only whatever the operator's umask, tightened when a node made under a looser one
/// is opened, and `check` reports what stays wider.
@Suite struct FilePermissionTests {
    static func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func theNodesFilesAreOwnerOnlyWhateverTheUmask() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let data = dir.path("hq").path
        let made = try Binary.shell(
            "umask 022 && \"$SYNCNODE\" init --data '\(data)' --site hq --role hq >/dev/null && \"$SYNCNODE\" record put --data '\(data)' notes n1 text=x >/dev/null && \"$SYNCNODE\" backup --data '\(data)' --out '\(data)/b.sqlite' >/dev/null"
        )
        #expect(made.status == 0, "\(made.stderr)")
        #expect(try Self.mode(data) & 0o777 == 0o700)
        let files = try FileManager.default.contentsOfDirectory(atPath: data)
        #expect(files.contains("node.sqlite") && files.contains("b.sqlite"), "\(files)")
        for name in files {
            let mode = try Self.mode(data + "/" + name)
            #expect(mode & 0o077 == 0, "\(name) is \(String(mode, radix: 8))")
        }
        // A node made under a looser umask by an earlier version: made owner-only when opened.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: data)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: data + "/node.sqlite")
        let check = try await Binary.runAsync(["check", "--data", data, "--json"])
        #expect(check.status == 0, "\(check.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any]
        #expect((report?["widePermissions"] as? [String])?.isEmpty == true, "\(check.stdout)")
        #expect(try Self.mode(data) & 0o777 == 0o700)
        #expect(try Self.mode(data + "/node.sqlite") & 0o777 == 0o600)
    }
}
