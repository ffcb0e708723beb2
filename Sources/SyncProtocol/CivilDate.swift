/// A day of the calendar, read from `YYYY-MM-DD`: days between two dates without a time zone or
/// Foundation (the proleptic Gregorian calendar's day count from 1970-01-01).
public struct CivilDate: Sendable, Equatable, Comparable {
    /// Days since 1970-01-01.
    public let day: Int

    /// Nil unless the text is a real date (`2017-02-30` is not).
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m), d >= 1,
            d <= Self.daysIn(month: m, year: y)
        else { return nil }
        // Howard Hinnant's days-from-civil: years start in March, so the leap day ends a year.
        let yy = m <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        day = era * 146_097 + doe - 719_468
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    public static func < (a: CivilDate, b: CivilDate) -> Bool { a.day < b.day }
}
