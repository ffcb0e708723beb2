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
            subcommands: [Add.self, List.self, Remove.self, Passwd.self])

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
                let password = try readNewPassword(prompt: "password for \(name): ")
                let hash = Bcrypt.hash(password, cost: WebUser.passwordCost)
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

        struct Passwd: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Set a web user's password and end their sessions. The password is read as `user add` reads it.",
                discussion: "e.g. syncnode user passwd zhang; printf '%s\\n' \"$NEW_PASSWORD\" | syncnode user passwd zhang")
            @OptionGroup var node: NodeOptions
            @Argument(help: "The user name.") var name: String

            func run() throws {
                // Before asking for a password: nobody types one for a name that does not exist.
                guard try node.withStore({ store in try store.webUser(name) }) != nil else { throw Self.unknown(name) }
                let password = try readNewPassword(prompt: "new password for \(name): ")
                let hash = Bcrypt.hash(password, cost: WebUser.passwordCost)
                guard let ended = try node.withStore({ store in try store.setWebUserPassword(name, passwordHash: hash) }) else {
                    throw Self.unknown(name)
                }
                note("changed the password of web user \(name); \(ended == 1 ? "1 session" : "\(ended) sessions") ended")
            }

            static func unknown(_ name: String) -> ExitCode {
                note("error: no web user \(name); see `syncnode user list`")
                return ExitCode(3)
            }
        }
    }
}

/// A password a user chooses, read as `readPassword` reads it: at least 8 characters, at most
/// 72 bytes (exit 65 otherwise).
func readNewPassword(prompt: String) throws -> String {
    let password = try readPassword(prompt: prompt)
    switch WebUser.PasswordProblem(password) {
    case .tooShort(let characters):
        note("error: the password is \(characters) characters; use at least 8")
        throw ExitCode(65)
    case .tooLong:
        note("error: the password is longer than 72 bytes, which bcrypt cannot use; choose a shorter one")
        throw ExitCode(65)
    case nil: return password
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
