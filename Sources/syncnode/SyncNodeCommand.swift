import ArgumentParser
import Foundation
import Logging
import SyncNode
import SyncProtocol

/// `syncnode`: the command-line face of a node. Parses, calls SyncNode, prints.
@main
struct SyncNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syncnode",
        abstract: "An offline-first sync node for the Dongli paired-assistance programme.",
        discussion: "Every command takes --data DIR (default $SYNCNODE_DATA, else ./syncnode-data). Exit codes are listed in docs/CLI.md.",
        version: "syncnode \(SyncNodeVersion.text) (protocol \(WireCodec.protocolVersion), storage schema \(Store.schemaVersion))",
        subcommands: [
            Init.self, Record.self, Ledger.self, Bundle.self, VectorCommand.self, Conflicts.self, Status.self, Sync.self, Peer.self, Serve.self,
            Identity.self, Node.self, Rejections.self, Held.self, Forks.self, RepairClock.self,
            Add.self, Update.self, Correct.self, Import.self, Project.self, Plan.self, Report.self, Export.self, Backup.self, Restore.self,
            Check.self, Submission.self, Mirror.self, Attach.self, AttachmentCommand.self,
            User.self, Demo.self,
        ]
    )

    static func main() async {
        ArgumentCheck.refuseInvalidUTF8()
        // Everything a command writes (the node's files, backups, bundles, exports) holds the
        // programme's data: owner-only, whatever the operator's umask.
        umask(0o077)
        // Logs go to stderr (stdout carries results); SYNCNODE_LOG_LEVEL raises or lowers them,
        // SYNCNODE_LOG_FORMAT=json (or `serve --log-format json`) writes them as JSON lines.
        let environment = ProcessInfo.processInfo.environment
        let level = environment["SYNCNODE_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
        if let format = environment["SYNCNODE_LOG_FORMAT"].flatMap(LogFormat.init(rawValue:)) { LogFormat.current = format }
        LoggingSystem.bootstrap { label in
            switch LogFormat.current {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level ?? .warning
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level ?? .warning
                return handler
            }
        }
        // Every transaction a command records names the OS user who ran it (the person behind
        // sudo, when there is one); a web page's writes name the web user instead.
        await Store.$author.withValue(Self.osUser) { await Self.main(nil) }
    }

    static var osUser: String? {
        if let sudo = ProcessInfo.processInfo.environment["SUDO_USER"], !sudo.isEmpty, geteuid() == 0 { return sudo }
        guard let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name else { return nil }
        return String(cString: name)
    }
}

/// Options every node command shares.
struct NodeOptions: ParsableArguments {
    @Option(name: .long, help: "The node's data directory (default: $SYNCNODE_DATA, else ./syncnode-data).")
    var data: String?

    var directory: URL {
        let path = data ?? ProcessInfo.processInfo.environment["SYNCNODE_DATA"] ?? "syncnode-data"
        return URL(fileURLWithPath: path)
    }

    /// Records `intents` as one transaction, after warning when the node has evidence its clock is
    /// wrong (the skew seen at its last sync).
    @discardableResult
    func record(_ intents: [Intent]) throws -> Transaction {
        try withStore { store in
            if let warning = try store.clockWarning() { note("warning: \(warning)") }
            return try store.commit(intents)
        }
    }

    /// Opens the node, runs `body`, and turns node errors into a message and a stable exit code.
    func withStore<T>(_ body: (Store) throws -> T) throws -> T {
        do {
            let store = try Store.open(directory, clock: CLIClock.current)
            defer { try? store.close() }
            return try body(store)
        } catch let error as SyncNodeError {
            throw failure(error)
        }
    }
}

struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print stable JSON instead of a table.")
    var json = false
}

/// The wall clock the CLI uses: the system clock, shifted by SYNCNODE_CLOCK_OFFSET_MS when set
/// (the fault harness uses it to run a node with a wrong clock).
enum CLIClock {
    static var current: any WallClock {
        if let raw = ProcessInfo.processInfo.environment["SYNCNODE_CLOCK_OFFSET_MS"], let offset = Int64(raw) {
            return OffsetClock(offsetMillis: offset)
        }
        return SystemClock()
    }
}

/// The language of the CLI's messages: Chinese when `SYNCNODE_LANG=zh`, or, without it, when the
/// locale (`LC_ALL`, `LC_MESSAGES`, `LANG`) is Chinese; English otherwise. Exit codes, flags and
/// JSON are the same in both.
enum CLILanguage {
    static let chinese: Bool = {
        let env = ProcessInfo.processInfo.environment
        if let chosen = env["SYNCNODE_LANG"], !chosen.isEmpty { return chosen.lowercased().hasPrefix("zh") }
        let locale = [env["LC_ALL"], env["LC_MESSAGES"], env["LANG"]].compactMap { $0 }.first { !$0.isEmpty } ?? ""
        return locale.lowercased().hasPrefix("zh")
    }()
}

/// Prints a node error for the user and gives the exit code scripts rely on.
func failure(_ error: SyncNodeError) -> ExitCode {
    note(CLILanguage.chinese ? "错误：\(explained(error))" : "error: \(explained(error))")
    return ExitCode(error.exitCode)
}

/// An error's message and what to do next, in the CLI's terms. In Chinese, what a clerk typed
/// wrong is said field by field in the plan's words (the same words as the web form's); other
/// messages are the library's English still.
func explained(_ error: SyncNodeError) -> String {
    if CLILanguage.chinese, !error.problems.isEmpty {
        return error.problems.map(\.chinese).joined(separator: "\n") + "\n未记录任何内容" + (error.nextStep.map(hintZh(for:)) ?? "")
    }
    return error.message + (error.nextStep.map(hint(for:)) ?? hint(for: error.code))
}

/// The next step in the CLI's terms, in Chinese.
func hintZh(for step: NextStep) -> String {
    switch step {
    case .repairClock: "；请运行 `syncnode repair-clock`"
    case .listPeers: "；见 `syncnode peer list`"
    case .enrolAnew: "（在那台机器上运行 `syncnode init`）"
    case .compareKeys: "；本节点的密钥见 `syncnode identity`，总部用 `syncnode node approve NODE --key KEY` 重新批准"
    case .awaitApproval: "；请总部用 `syncnode node approve` 批准（`syncnode init` 打印的命令）"
    case .listLedger(let ledger): "；见 `syncnode ledger list \(ledger ?? "LEDGER")`"
    case .listNodes: "；见 `syncnode node list`"
    case .removeUserFirst(let name): "（先 `syncnode user remove \(name)`）"
    case .update: "；修改已有记录请用 `syncnode update`"
    case .confirm: "；如已核实无误，加 --confirm 仍按此记录"
    case .forceWithReason: "（加 --force 并写明 reason=原因）"
    case .nameTheLedger: "；请用 --ledger 指明账本"
    case .undoAndAddAnew: "（先 --undo 撤销，再用 `syncnode add` 重新录入）"
    case .newValueOrUndo: "（写 字段=新值，或 --undo 撤销）"
    case .listProjects: "；项目见 `syncnode report projects`"
    case .dropCountiesKnowingly: "（--drop-counties-with-data）"
    }
}

/// The next step in the CLI's terms.
func hint(for step: NextStep) -> String {
    switch step {
    case .repairClock: "; run `syncnode repair-clock`"
    case .listPeers: "; see `syncnode peer list`"
    case .enrolAnew: " (`syncnode init` there)"
    case .compareKeys: "; this node's key is the one `syncnode identity` prints; HQ approves it again with `syncnode node approve NODE --key KEY`"
    case .awaitApproval: "; HQ approves it with `syncnode node approve` (the command `syncnode init` printed)"
    case .listLedger(let ledger): "; see `syncnode ledger list \(ledger ?? "LEDGER")`"
    case .listNodes: "; see `syncnode node list`"
    case .removeUserFirst(let name): " (`syncnode user remove \(name)`)"
    case .update: " with `syncnode update`"
    case .confirm: "; add --confirm to record it anyway"
    case .forceWithReason: " (--force and reason=WHY)"
    case .nameTheLedger: " with --ledger"
    case .undoAndAddAnew: " (--undo, then `syncnode add`)"
    case .newValueOrUndo: " (FIELD=VALUE, or --undo)"
    case .listProjects: "; list them with `syncnode report projects`"
    case .dropCountiesKnowingly: " (--drop-counties-with-data)"
    }
}

/// What to do next, in the CLI's terms (the library's messages name no flags).
private func hint(for code: SyncNodeError.Code) -> String {
    switch code {
    case .notANode: "; create one with `syncnode init --data DIR --site SITE --role ROLE`, or pass the right --data (or SYNCNODE_DATA)"
    case .nodeExists: "; use another --data directory, or keep using this node"
    default: ""
    }
}

/// Runs `body`, turning a node error into its message and exit code.
func withFailure<T>(_ body: () throws(SyncNodeError) -> T) throws -> T {
    do {
        return try body()
    } catch {
        throw failure(error)
    }
}

/// Checks `FIELD=VALUE` arguments at parse time, so a usage error exits 64 before anything is opened.
func validateAssignments(_ assignments: [String], example: String) throws {
    if assignments.isEmpty { throw ValidationError("give at least one FIELD=VALUE, such as \(example)") }
    for a in assignments {
        do { _ = try AssignmentParser.parse(a) } catch { throw ValidationError(error.message) }
    }
}

func emit(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

func note(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
