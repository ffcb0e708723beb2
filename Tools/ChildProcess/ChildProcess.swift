import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with `posix_spawn`, for the tests and the tools that drive the real
/// binary. Foundation's `Process.run()` on Linux (Swift 6.3.1) reads past the end of a directory
/// entry while it lists `/proc/self/fd` and crashes the parent now and then (a SIGSEGV in
/// `memmove`: swift-corelibs-foundation PR 5472); a test run that starts thousands of processes
/// met it in about one run of three. This spawns without listing anything: the child closes every
/// descriptor above 2 (`posix_spawn_file_actions_addclosefrom_np`), its signal mask is empty and
/// its signals have their default actions.
public final class ChildProcess: Sendable {
    /// Where one of the child's standard streams goes.
    public enum Stream: Sendable {
        /// The parent's own.
        case inherit
        /// `/dev/null`.
        case null
        /// A descriptor of the parent's (the child gets a copy; the parent keeps and closes its own).
        case descriptor(Int32)
    }

    public let pid: pid_t
    /// The raw wait status, once reaped.
    private let exit = Mutex<Int32?>(nil)

    /// Starts `executable` with `arguments`; `environment` nil passes the parent's.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: Stream = .inherit, stdout: Stream = .inherit,
        stderr: Stream = .inherit
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch stream {
            case .inherit: break
            case .null: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_RDWR, 0)
            case .descriptor(let fd): posix_spawn_file_actions_adddup2(&actions, fd, target)
            }
        }
        _ = Self.closeFrom?(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        var none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        let env = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for p in env ?? [] { free(p) } }
        var pid: pid_t = 0
        let status = argv.withUnsafeBufferPointer { args in
            if let env {
                return env.withUnsafeBufferPointer { envp in
                    posix_spawn(&pid, executable, &actions, &attributes, args.baseAddress!, envp.baseAddress!)
                }
            }
            return posix_spawn(&pid, executable, &actions, &attributes, args.baseAddress!, environ)
        }
        guard status == 0 else { throw ChildProcessError(message: "cannot start \(executable): \(String(cString: strerror(status)))") }
        self.pid = pid
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc
    /// module does not declare.
    private static let closeFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// The raw wait status, once the child has exited (reaped here, once).
    private func reapStatus(blocking: Bool) -> Int32? {
        exit.withLock { known in
            if let known { return known }
            var status: Int32 = 0
            while true {
                let r = waitpid(pid, &status, blocking ? 0 : WNOHANG)
                if r == -1 && errno == EINTR { continue }
                guard r == pid else { return nil }
                break
            }
            known = status
            return status
        }
    }

    /// The exit status (128 + the signal for a child a signal ended), once it has exited.
    private func reap(blocking: Bool) -> Int32? {
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift does not import.
        reapStatus(blocking: blocking).map { status in status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F) }
    }

    /// The signal that ended the child, if one did (nil while it runs or after a normal exit).
    public var terminationSignal: Int32? {
        reapStatus(blocking: false).flatMap { status in status & 0x7F == 0 ? nil : status & 0x7F }
    }

    public var isRunning: Bool { reap(blocking: false) == nil }

    /// Waits for the child to end; its exit status (128 + the signal when a signal ended it).
    @discardableResult
    public func waitUntilExit() -> Int32 { reap(blocking: true) ?? -1 }

    /// The exit status; -1 while it runs.
    public var terminationStatus: Int32 { reap(blocking: false) ?? -1 }

    /// Sends `signal` (SIGTERM by default) unless the child has been reaped.
    public func terminate(_ signal: Int32 = SIGTERM) {
        if exit.withLock({ $0 }) == nil { kill(pid, signal) }
    }

    /// Runs `executable` to its end and returns its exit status and everything it wrote to its
    /// standard output and error (both read as they come, so neither pipe fills and blocks it).
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (
        status: Int32, stdout: [UInt8], stderr: [UInt8]
    ) {
        var out: [Int32] = [0, 0]
        var err: [Int32] = [0, 0]
        guard Self.pipe(&out) else { throw ChildProcessError(message: "pipe: errno \(errno)") }
        guard Self.pipe(&err) else {
            close(out[0])
            close(out[1])
            throw ChildProcessError(message: "pipe: errno \(errno)")
        }
        let child: ChildProcess
        do {
            child = try ChildProcess(
                executable, arguments, environment: environment, stdin: .null, stdout: .descriptor(out[1]), stderr: .descriptor(err[1]))
        } catch {
            for fd in out + err { close(fd) }
            throw error
        }
        close(out[1])
        close(err[1])
        var collected: [[UInt8]] = [[], []]
        var fds = [pollfd(fd: out[0], events: Int16(POLLIN), revents: 0), pollfd(fd: err[0], events: Int16(POLLIN), revents: 0)]
        var open = 2
        var buffer = [UInt8](repeating: 0, count: 65536)
        while open > 0 {
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for i in 0..<2 where fds[i].fd >= 0 && fds[i].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(fds[i].fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    collected[i] += buffer[0..<n]
                } else if n == 0 || errno != EINTR {
                    close(fds[i].fd)
                    fds[i].fd = -1
                    open -= 1
                }
            }
        }
        return (child.waitUntilExit(), collected[0], collected[1])
    }
}

extension ChildProcess {
    /// A pipe whose ends close on exec (a child gets only the copies it is given).
    public static func pipe(_ fds: inout [Int32]) -> Bool {
        guard Glibc.pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }
}

public struct ChildProcessError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
