import Foundation
import SyncNode
import SyncProtocol

/// A report's cells for people (amounts in 万元, percents, local times), as CSV for Excel and as
/// JSON for machines: one rendering each, shared by the CLI, the exports and the web pages.
public enum ReportFormat {
    public static func display(_ cell: ReportTable.Cell, _ type: ReportTable.ColumnType) -> String {
        switch (cell, type) {
        case (.none, _): ""
        case (.text(let t), _): t
        case (.money(let n), _), (.int(let n), .money): Money.wan(n)
        case (.int(let n), .percent): String(format: "%.2f", Double(n) / 100)
        case (.int(let n), .time): localTime(UInt64(n))
        case (.int(let n), _): String(n)
        }
    }

    public static func localTime(_ millis: UInt64) -> String { LocalTime.text(millis, format: "yyyy-MM-dd HH:mm") }

    /// Text as a file for a spreadsheet keeps it: every control character but tab and line ends
    /// shown as its Unicode control picture (NUL as ␀: a file cell cannot carry it, and a cut or a
    /// drop would be silent), and text beyond `limit` UTF-16 units (Excel holds 32,767 in a cell)
    /// cut with a marker that says how long it was.
    public static func fileText(_ text: String, limit: Int = 32_767) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 && scalar != "\t" && scalar != "\n" && scalar != "\r" {
                out.append(Unicode.Scalar(0x2400 + scalar.value)!)
            } else if scalar.value == 0x7F {
                out.append("\u{2421}")
            } else {
                out.append(scalar)
            }
        }
        let shown = String(out)
        guard shown.utf16.count > limit else { return shown }
        let marker = "…［已截断：全文\(shown.count)字］"
        var kept = ""
        for c in shown {
            guard kept.utf16.count + c.utf16.count + marker.utf16.count <= limit else { break }
            kept.append(c)
        }
        return kept + marker
    }

    /// UTF-8 with a byte-order mark (Excel reads Chinese correctly), CRLF line ends.
    public static func csv(_ t: ReportTable) -> Data {
        let t = t.forPeople
        func quote(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        // Text any node can write (a project's name) that starts like a formula is kept as text:
        // Excel would otherwise run `=HYPERLINK(...)` from a county's record at HQ.
        func inert(_ cell: ReportTable.Cell, _ type: ReportTable.ColumnType) -> String {
            let shown = fileText(display(cell, type), limit: .max)
            guard case .text = cell, let first = shown.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) else { return shown }
            return "'" + shown
        }
        var lines = [t.columns.map { quote($0.label) }.joined(separator: ",")]
        for row in t.rows { lines.append(zip(row, t.columns).map { quote(inert($0, $1.type)) }.joined(separator: ",")) }
        return Data([0xEF, 0xBB, 0xBF]) + Data((lines.joined(separator: "\r\n") + "\r\n").utf8)
    }

    /// An array of objects keyed by column id: amounts in fen, percents in hundredths, times in ms (UTC).
    public static func json(_ t: ReportTable) -> String {
        let rows = t.rows.map { row in
            Dictionary(
                uniqueKeysWithValues: zip(row, t.columns).map { cell, column -> (String, Any) in
                    switch cell {
                    case .none: (column.id, NSNull())
                    case .text(let s): (column.id, s)
                    case .int(let n), .money(let n): (column.id, NSNumber(value: n))
                    }
                })
        }
        let data = (try? JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Times for people: in the local time zone (`TZ`); machines get UTC milliseconds.
public enum LocalTime {
    public static func text(_ millis: UInt64, format: String = "yyyy-MM-dd HH:mm:ss") -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone.current
        formatter.dateFormat = format
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }

    /// Today in the local time zone, `YYYY-MM-DD`: the default date of an entry.
    public static func today() -> String { text(UInt64(Date().timeIntervalSince1970 * 1000), format: "yyyy-MM-dd") }
}
