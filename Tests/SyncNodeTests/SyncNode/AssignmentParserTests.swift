import SyncNode
import SyncProtocol
import Testing

@testable import syncnode

@Suite struct AssignmentParserTests {
    @Test func textNumbersAndNullParse() throws {
        #expect(try AssignmentParser.parse("name=东丽小学") == FieldAssignment("name", .text("东丽小学")))
        #expect(try AssignmentParser.parse("note=a=b") == FieldAssignment("note", .text("a=b")))
        #expect(try AssignmentParser.parse("empty=") == FieldAssignment("empty", .text("")))
        #expect(try AssignmentParser.parse("amount:=5000000") == FieldAssignment("amount", .int(5_000_000)))
        #expect(try AssignmentParser.parse("delta:=-3") == FieldAssignment("delta", .int(-3)))
        #expect(try AssignmentParser.parse("ratio:=0.25") == FieldAssignment("ratio", .real(0.25)))
        #expect(try AssignmentParser.parse("gone:=null") == FieldAssignment("gone", .null))
        #expect(try AssignmentParser.parse("code=12") == FieldAssignment("code", .text("12")))
    }

    @Test(arguments: ["noequals", "=value", ":=3", "n:=twelve", "n:=", "n:=nan", "n:=inf"])
    func malformedAssignmentsAreRefusedWithAHint(_ text: String) {
        do {
            _ = try AssignmentParser.parse(text)
            Issue.record("'\(text)' was accepted")
        } catch {
            #expect(error.code == .invalidInput)
            #expect(error.message.contains("="))
        }
    }
}

@Suite struct DisplayWidthTests {
    @Test func chineseCountsDoubleAndTablesAlign() {
        #expect(DisplayWidth.of("abc") == 3)
        #expect(DisplayWidth.of("临潭县") == 6)
        #expect(DisplayWidth.of("东丽Lake") == 8)
        var table = TextTable(["county", "aid"])
        table.add(["临潭县", "1000"])
        table.add(["Gangu", "1000"])
        let lines = table.render().split(separator: "\n").map(String.init)
        let offsets = lines.dropFirst().map { DisplayWidth.of(String($0[..<$0.range(of: "1000")!.lowerBound])) }
        #expect(offsets == [8, 8])
    }
}
