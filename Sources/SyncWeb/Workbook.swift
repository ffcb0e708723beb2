import CXlsxWriter
import Foundation
import SyncNode

/// Reports as an Excel workbook through libxlsxwriter: one sheet per report, a bold header row
/// frozen above the data, amounts and counts as numbers (amounts in 万元, two decimals), percents
/// as percents, dates and times as dates.
public enum Workbook {
    public static func write(_ tables: [ReportTable], to path: String) throws(SyncNodeError) {
        let tables = tables.map(\.forPeople)
        guard let book = workbook_new(path) else { throw SyncNodeError(.readOnly, "cannot create \(path)") }
        let header = workbook_add_format(book)
        format_set_bold(header)
        let money = workbook_add_format(book)
        format_set_num_format(money, "#,##0.00")
        let percent = workbook_add_format(book)
        format_set_num_format(percent, "0.00%")
        let date = workbook_add_format(book)
        format_set_num_format(date, "yyyy-mm-dd")
        let time = workbook_add_format(book)
        format_set_num_format(time, "yyyy-mm-dd hh:mm")
        for t in tables {
            // People read the sheet's tab: the report's Chinese title (资金, 项目, …), not its id.
            let sheetName = Self.sheetName(t)
            guard let sheet = workbook_add_worksheet(book, sheetName) else {
                throw SyncNodeError(.invalidInput, "cannot add a sheet named \(sheetName)")
            }
            for (c, column) in t.columns.enumerated() {
                worksheet_write_string(sheet, 0, lxw_col_t(c), column.label, header)
                worksheet_set_column(sheet, lxw_col_t(c), lxw_col_t(c), column.type == .text ? 16 : 14, nil)
            }
            worksheet_freeze_panes(sheet, 1, 0)
            for (r, row) in t.rows.enumerated() {
                let rowIndex = lxw_row_t(r + 1)
                for (c, (cell, column)) in zip(row, t.columns).enumerated() {
                    let col = lxw_col_t(c)
                    switch (cell, column.type) {
                    case (.none, _):
                        continue
                    case (.text(let s), .date):
                        if var d = dateTime(day: s) {
                            worksheet_write_datetime(sheet, rowIndex, col, &d, date)
                        } else {
                            worksheet_write_string(sheet, rowIndex, col, ReportFormat.fileText(s), nil)
                        }
                    case (.text(let s), _):
                        worksheet_write_string(sheet, rowIndex, col, ReportFormat.fileText(s), nil)
                    case (.money(let n), _), (.int(let n), .money):
                        worksheet_write_number(sheet, rowIndex, col, Double(n) / 1_000_000, money)
                    case (.int(let n), .percent):
                        worksheet_write_number(sheet, rowIndex, col, Double(n) / 10_000, percent)
                    case (.int(let n), .time):
                        var d = dateTime(millis: UInt64(n))
                        worksheet_write_datetime(sheet, rowIndex, col, &d, time)
                    case (.int(let n), _):
                        worksheet_write_number(sheet, rowIndex, col, Double(n), nil)
                    }
                }
            }
        }
        let status = workbook_close(book)
        guard status == LXW_NO_ERROR else {
            throw SyncNodeError(.readOnly, "cannot write \(path): \(String(cString: lxw_strerror(status)))")
        }
    }

    /// A sheet's tab: the report title's first word (its Chinese name), or the report's id when
    /// that word is not a name Excel allows (at most 31 characters, none of []:*?/\).
    static func sheetName(_ table: ReportTable) -> String {
        let word = table.title.split(separator: " ").first.map(String.init) ?? ""
        let allowed = !word.isEmpty && word.count <= 31 && !word.contains(where: { "[]:*?/\\".contains($0) })
        return allowed ? word : table.name
    }

    private static func dateTime(day: String) -> lxw_datetime? {
        let p = day.split(separator: "-").compactMap { Int32($0) }
        guard p.count == 3 else { return nil }
        return lxw_datetime(year: p[0], month: p[1], day: p[2], hour: 0, min: 0, sec: 0)
    }

    /// A time in the local time zone (the workbook has no zone, like the text report).
    private static func dateTime(millis: UInt64) -> lxw_datetime {
        let c = Calendar(identifier: .gregorian).dateComponents(in: TimeZone.current, from: Date(timeIntervalSince1970: Double(millis) / 1000))
        return lxw_datetime(
            year: Int32(c.year ?? 1970), month: Int32(c.month ?? 1), day: Int32(c.day ?? 1), hour: Int32(c.hour ?? 0), min: Int32(c.minute ?? 0),
            sec: Double(c.second ?? 0))
    }
}
