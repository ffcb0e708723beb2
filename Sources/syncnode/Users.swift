import ArgumentParser
import Foundation
import HummingbirdBcrypt
import SyncNode
import SyncWeb

#if canImport(Glibc)
    import Glibc
#endif

extension SyncNodeCommand {
    struct User: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The people who may use this node's web pages (local to this node, never synced).",
            subcommands: [Add.self, List.self, Remove.self])

        struct Add: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add a web user. The password is read from the terminal (not echoed), or from the first line of stdin.",
                discussion: "e.g. syncnode user add zhang --role clerk; printf '%s\\n' \"$PASSWORD\" | syncnode user add hq-viewer --role viewer")
            @OptionGroup var node: NodeOptions
            @Argument(help: "The user name: letters, digits, . _ - @.") var name: String
            @Option(help: "viewer (looks), clerk (also records work), admin (also resolves conflicts).") var role: String = "clerk"

            func validate() throws {
                guard WebUser.Role(rawValue: role) != nil else { throw ValidationError("--role takes viewer, clerk or admin") }
            }

            func run() throws {
                let password = try readPassword(prompt: "password for \(name): ")
                guard password.count >= 8 else {
                    note("error: the password is \(password.count) characters; use at least 8")
                    throw ExitCode(65)
                }
                guard password.utf8.count <= 72 else {
                    note("error: the password is longer than 72 bytes, which bcrypt cannot use; choose a shorter one")
                    throw ExitCode(65)
                }
                let hash = Bcrypt.hash(password, cost: 12)
                try node.withStore { store in try store.addWebUser(name: name, role: WebUser.Role(rawValue: role)!, passwordHash: hash) }
                note("added web user \(name) (\(role)); they log in at this node's address, e.g. http://127.0.0.1:PORT/")
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the web users.")
            @OptionGroup var node: NodeOptions
            @OptionGroup var output: OutputOptions

            func run() throws {
                let users = try node.withStore { store in try store.webUsers() }
                if output.json {
                    emit(
                        Presenter.json(
                            users.map { ["name": $0.name, "role": $0.role.rawValue, "created": NSNumber(value: $0.created)] as [String: Any] }))
                } else {
                    var table = TextTable(["user", "role", "added (\(Presenter.localZone))"])
                    for u in users { table.add([u.name, u.role.rawValue, Presenter.localTime(u.created)]) }
                    emit(table.render())
                }
            }
        }

        struct Remove: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove a web user and end their sessions.")
            @OptionGroup var node: NodeOptions
            @Argument(help: "The user name.") var name: String

            func run() throws {
                guard try node.withStore({ store in try store.removeWebUser(name) }) else {
                    note("error: no web user \(name); see `syncnode user list`")
                    throw ExitCode(3)
                }
                note("removed web user \(name)")
            }
        }
    }
}

/// A password from the terminal without echo, or the first line of a pipe.
func readPassword(prompt: String) throws -> String {
    if isatty(STDIN_FILENO) == 1 {
        FileHandle.standardError.write(Data(prompt.utf8))
        var saved = termios()
        tcgetattr(STDIN_FILENO, &saved)
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet)
        defer {
            tcsetattr(STDIN_FILENO, TCSANOW, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return readLine(strippingNewline: true) ?? ""
    }
    guard let line = readLine(strippingNewline: true) else {
        note("error: no password given; type it at the prompt or pipe it on stdin")
        throw ExitCode(64)
    }
    return line
}
