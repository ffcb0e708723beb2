import Foundation
import Testing

/// Every `--json` shape docs/CLI.md documents, pinned against what the real binary prints: the
/// keys of each documented object (read from the document, not copied here) must be exactly the
/// keys of the command's output.
@Suite struct CLIJSONShapeTests {
    /// The documented keys per command, from the "JSON outputs" section of docs/CLI.md.
    static func documentedShapes() throws -> [String: Set<String>] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/CLI.md"), encoding: .utf8)
        guard let start = text.range(of: "## JSON outputs"), let end = text.range(of: "\n## ", range: start.upperBound..<text.endIndex) else {
            throw TestFailure("docs/CLI.md has no JSON outputs section")
        }
        let section = String(text[start.upperBound..<end.lowerBound])
        let marker = try Regex("`([a-z -]+) --json`")
        let matches = section.matches(of: marker)
        var shapes: [String: Set<String>] = [:]
        for (i, m) in matches.enumerated() {
            let command = String(section[m.range]).dropFirst().dropLast("--json`".count + 1).trimmingCharacters(in: .whitespaces)
            let segment = section[m.range.upperBound..<(i + 1 < matches.count ? matches[i + 1].range.lowerBound : section.endIndex)]
            if let keys = Self.objectKeys(segment) { shapes[command] = keys }
        }
        return shapes
    }

    /// The keys of the first `{...}` in `text`: quoted names right after `{` or `,` at its top level.
    static func objectKeys(_ text: Substring) -> Set<String>? {
        guard let open = text.firstIndex(of: "{") else { return nil }
        var depth = 0
        var keys = Set<String>()
        var previous: Character = " "
        var i = open
        while i < text.endIndex {
            let c = text[i]
            switch c {
            case "{", "[":
                depth += 1
            case "}", "]":
                depth -= 1
                if depth == 0 { return keys }
            case "\"":
                guard let close = text[text.index(after: i)...].firstIndex(of: "\"") else { return keys }
                if depth == 1 && (previous == "{" || previous == ",") { keys.insert(String(text[text.index(after: i)..<close])) }
                i = close
            default:
                break
            }
            if !c.isWhitespace { previous = c == "\"" ? "s" : c }
            i = text.index(after: i)
        }
        return keys
    }

    /// The keys of a JSON object, or of the first element of a JSON array.
    static func keys(_ output: String) throws -> Set<String> {
        let value = try JSONSerialization.jsonObject(with: Data(output.utf8))
        if let object = value as? [String: Any] { return Set(object.keys) }
        if let array = value as? [[String: Any]], let first = array.first { return Set(first.keys) }
        throw TestFailure("not a JSON object nor a non-empty array of objects: \(output)")
    }

    @Test func everyDocumentedShapeIsWhatTheBinaryPrints() async throws {
        let shapes = try Self.documentedShapes()
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        let county = dir.path("county").path
        var outputs: [String: String] = [:]
        func json(_ command: String, _ args: [String], exit: Int32 = 0) async throws {
            let r = try await Binary.runAsync(args + ["--json"])
            #expect(r.status == exit, "\(command): \(r.stderr)")
            outputs[command] = r.stdout
        }
        try await json("init", ["init", "--data", hq, "--site", "hq", "--role", "hq", "--label", "dongli-hq"])
        try Federation.member(county, site: "lintan", label: "lintan-1", hq: hq)
        for node in [hq, county] {
            #expect(
                try await Binary.runAsync(["record", "put", "--data", node, "projects", "lt-school", "name=\(node == hq ? "东丽小学" : "临潭东丽小学")"]).status
                    == 0)
        }
        #expect(try await Binary.runAsync(["ledger", "append", "--data", county, "trainings", "county=lintan", "attendees:=40"]).status == 0)
        let file = dir.path("county.bundle").path
        try await json("bundle export", ["bundle", "export", "--data", county, "--out", file])
        try await json("bundle import", ["bundle", "import", "--data", hq, file])
        try await json("record list", ["record", "list", "--data", hq, "projects"])
        try await json("record history", ["record", "history", "--data", hq, "projects", "lt-school"])
        try await json("ledger list", ["ledger", "list", "--data", hq, "trainings"])
        try await json("conflicts", ["conflicts", "--data", hq])
        try await json("status", ["status", "--data", hq])
        try await json("identity", ["identity", "--data", hq])
        try await json("node list", ["node", "list", "--data", hq])
        try await json("rejections", ["rejections", "--data", hq])
        try await json("sync", ["sync", "--data", county, "--peer", "http://127.0.0.1:9"], exit: 69)
        try await json("backup", ["backup", "--data", hq, "--out", dir.path("hq.backup").path])
        try await json("check", ["check", "--data", hq])
        let added = try Binary.shell("printf 'a long password\\n' | \"$SYNCNODE\" user add --data '\(hq)' zhang --role viewer")
        #expect(added.status == 0, "\(added.stderr)")
        try await json("user list", ["user", "list", "--data", hq])
        try await json("record get", ["record", "get", "--data", hq, "projects", "lt-school"])
        try await json("vector", ["vector", "--data", hq])
        #expect(
            try await Binary.runAsync(["add", "--data", hq, "project", "lt-road", "name=村道", "county=lintan", "work_area=infrastructure"]).status == 0
        )
        try await json("project show", ["project", "show", "--data", hq, "lt-road"])
        let photo = dir.path("photo.jpg").path
        try Data([0xFF, 0xD8, 0xFF, 0xE0] + [UInt8](repeating: 1, count: 100)).write(to: URL(fileURLWithPath: photo))
        try await json("attach", ["attach", "--data", hq, "projects", "lt-road", photo, "--caption", "村道"])
        try await json("attachment list", ["attachment", "list", "--data", hq, "projects", "lt-road"])
        // Work of a node HQ has not approved, brought by a bundle: held.
        let stranger = dir.path("stranger").path
        let hqKey = try Federation.identity(hq)["publicKey"] as? String ?? ""
        #expect(try await Binary.runAsync(["init", "--data", stranger, "--site", "lintan", "--role", "county", "--trust", hqKey]).status == 0)
        #expect(try await Binary.runAsync(["record", "put", "--data", stranger, "projects", "lt-well", "name=井"]).status == 0)
        let strangers = dir.path("stranger.bundle").path
        #expect(try await Binary.runAsync(["bundle", "export", "--data", stranger, "--out", strangers]).status == 0)
        #expect(try await Binary.runAsync(["bundle", "import", "--data", hq, strangers]).status == 0)
        try await json("held list", ["held", "list", "--data", hq])

        // Every documented shape is printed by this run.
        // `forks` needs a node that signed two histories: `ForkTests` checks its shape on a real one.
        let unchecked = Set(shapes.keys).subtracting(outputs.keys).subtracting(["forks"])
        #expect(unchecked.isEmpty, "documented shapes this test does not run: \(unchecked.sorted())")
        // Two shapes whose keys are data: the record's fields, and node ids.
        #expect(try Self.keys(outputs["record get"] ?? "") == ["name"], "\(outputs["record get"] ?? "")")
        #expect(try Self.keys(outputs["vector"] ?? "").allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) })
        // The shapes with fixed keys; each must be documented.
        for command in outputs.keys.sorted() where command != "record get" && command != "vector" {
            guard let documented = shapes[command] else {
                Issue.record("docs/CLI.md documents no shape for `\(command) --json`")
                continue
            }
            guard let output = outputs[command] else { continue }
            var expected = documented
            if command == "sync" { expected = ["peer", "ok", "error", "code"] }  // the documented failure form
            #expect(try Self.keys(output) == expected, "`\(command) --json` printed \(output)")
        }
    }
}
