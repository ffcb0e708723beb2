import Foundation
import SyncNode
import SyncProtocol
import Testing

/// Text a node may hold but a spreadsheet cell cannot (a NUL, control bytes, more than Excel's
/// 32,767 characters) is never cut or dropped silently by the exports: controls are shown as
/// their control pictures, an over-long text is cut with a marker that says so.
@Suite struct ExportTextTests {
    @Test func exportsKeepEveryTextVisibly() async throws {
        let node = try TestNode(site: "hq", role: .hq)
        defer { node.remove() }
        let long = String(repeating: "长", count: 10_000) + String(repeating: "a", count: 30_000)
        try node.store.commit([
            .put(collection: "projects", recordID: "lt-nul", fields: [.init("name", .text("东丽\u{0}小学\u{7}")), .init("county", .text("lintan"))]),
            .put(collection: "projects", recordID: "lt-long", fields: [.init("name", .text(long)), .init("county", .text("lintan"))]),
        ])
        try node.store.close()
        let data = node.directory.path("node").path
        let out = node.directory.path("out").path
        let csv = try await Binary.runAsync(["export", "--data", data, "--format", "csv", "--out", out, "projects"])
        #expect(csv.status == 0, "\(csv.stderr)")
        let xlsx = try await Binary.runAsync(["export", "--data", data, "--format", "xlsx", "--out", out + "/book.xlsx", "projects"])
        #expect(xlsx.status == 0, "\(xlsx.stderr)")
        let text = try String(contentsOfFile: out + "/projects.csv", encoding: .utf8)
        #expect(text.contains("东丽␀小学␇") && !text.unicodeScalars.contains { $0.value == 0 || $0.value == 7 }, "\(text.prefix(300))")
        #expect(text.contains(long), "the CSV has no cell limit: the long name whole")
        let read = try Binary.shell(
            """
            /usr/bin/python3 -c '
            import openpyxl
            ws = openpyxl.load_workbook("\(out)/book.xlsx")["项目"]
            for row in ws.iter_rows(min_row=2, values_only=True):
                print(row[0], len(row[1]), row[1][:4], row[1][-16:])
            '
            """)
        #expect(read.status == 0, "\(read.stderr)")
        let lines = read.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("lt-nul 6 东丽␀小") }, "\(lines)")
        #expect(
            lines.contains { $0.hasPrefix("lt-long ") && $0.contains("已截断：全文40000字") && (Int($0.split(separator: " ")[1]) ?? 0) <= 32_767 },
            "\(lines)")
    }
}
