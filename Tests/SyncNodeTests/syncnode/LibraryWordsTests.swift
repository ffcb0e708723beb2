import Foundation
import Testing

/// Issue 24: the library spoke CLI (the web form told browser users "add --confirm"). Messages in
/// SyncNode, SyncProtocol and SyncWeb (and the web's templates) name no command and no option; the
/// CLI adds those from `NextStep`.
@Suite struct LibraryWordsTests {
    @Test func noLibraryStringNamesACommandOrAnOption() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let literal = /"(?:[^"\\]|\\.)*"/
        let command = /`syncnode\s|(?:^|[\s(])--[a-z]/
        var found: [String] = []
        var scanned = 0
        for module in ["SyncNode", "SyncProtocol", "SyncWeb"] {
            let folder = root.appendingPathComponent("Sources/\(module)")
            let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
            for file in files where ["swift", "mustache"].contains(file.pathExtension) {
                let text = try String(contentsOf: file, encoding: .utf8)
                scanned += 1
                for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                    let code = line.trimmingCharacters(in: .whitespaces)
                    if code.hasPrefix("//") { continue }
                    let pieces = file.pathExtension == "mustache" ? [Substring(line)] : line.matches(of: literal).map { line[$0.range] }
                    for piece in pieces where piece.contains(command) {
                        found.append("\(file.lastPathComponent):\(n + 1): \(piece.prefix(120))")
                    }
                }
            }
        }
        #expect(scanned > 50, "the scan found the sources")
        #expect(found.isEmpty, "library strings naming a command or option:\n\(found.joined(separator: "\n"))")
    }
}
