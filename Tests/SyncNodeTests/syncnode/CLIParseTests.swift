import ArgumentParser
import Testing

@testable import syncnode

@Suite struct CLIParseTests {
    @Test func recordPutParsesCollectionIdAndAssignments() throws {
        let command = try SyncNodeCommand.parseAsRoot(["record", "put", "--data", "/tmp/x", "projects", "p1", "name=学校", "funds:=5"])
        let put = try #require(command as? SyncNodeCommand.Record.Put)
        #expect(put.collection == "projects")
        #expect(put.id == "p1")
        #expect(put.assignments == ["name=学校", "funds:=5"])
        #expect(put.node.data == "/tmp/x")
    }

    @Test func initRequiresASite() {
        #expect(throws: (any Error).self) { try SyncNodeCommand.parseAsRoot(["init", "--data", "/tmp/x"]) }
    }

    @Test(arguments: [
        ["record", "put", "c", "r"], ["record", "put", "c", "r", "nonsense"], ["record", "put", "c", "r", "n:=abc"],
        ["frobnicate"], ["status", "--colour"], ["ledger", "append", "funds"],
    ])
    func badCommandLinesFailToParse(_ arguments: [String]) {
        #expect(throws: (any Error).self) { try SyncNodeCommand.parseAsRoot(arguments) }
        do {
            _ = try SyncNodeCommand.parseAsRoot(arguments)
        } catch {
            #expect(SyncNodeCommand.exitCode(for: error).rawValue == 64)
        }
    }

    @Test func conflictsDefaultsToList() throws {
        let command = try SyncNodeCommand.parseAsRoot(["conflicts", "--json"])
        #expect(command is SyncNodeCommand.Conflicts.List)
    }

    @Test func refusedTransactionNumbersReadAsRanges() {
        #expect(SeqRanges.text([5, 1, 2, 3, 9, 12, 13, 3]) == "1–3, 5, 9, 12–13")
        #expect(SeqRanges.text([7]) == "7")
        #expect(SeqRanges.text(Array(stride(from: 1, through: 20, by: 2)), limit: 3) == "1, 3, 5 and 7 more ranges")
    }
}
