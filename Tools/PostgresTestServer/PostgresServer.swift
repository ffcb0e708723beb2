import ChildProcess
import Foundation

/// A real PostgreSQL server for a test or a benchmark: Debian's `postgresql` binaries, a cluster made with
/// `initdb` in a temporary directory (run as the `postgres` user, as initdb requires), listening
/// on a free loopback port with password (SCRAM) authentication. `scripts/install-deps` and
/// `.ci/run` install the package.
public final class PostgresServer: @unchecked Sendable {
    public let directory: URL
    public let port: Int
    public let user = "syncnode"
    public let password = "mirror-test-pw-2017"
    private let bin: String

    /// The server's certificate (self-signed, for 127.0.0.1) when it was started with TLS.
    public var certificate: String { directory.appendingPathComponent("server.crt").path }
    private let tls: Bool

    /// - Parameter tls: serve TLS only (`hostssl` in pg_hba.conf: a connection without TLS is refused).
    public init(tls: Bool = false) throws {
        self.tls = tls
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = versions.compactMap(Int.init).max() else {
            throw PostgresServerError("PostgreSQL is not installed (apt-get install postgresql; scripts/install-deps does it)")
        }
        bin = "/usr/lib/postgresql/\(version)/bin"
        directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("syncnode-pg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data((password + "\n").utf8).write(to: directory.appendingPathComponent("pw"))
        port = try Self.freePort()
        try Self.check(Self.shell("chown -R postgres '\(directory.path)'"), "chown")
        try Self.check(
            Self.asPostgres(
                "'\(bin)/initdb' -D '\(directory.path)/data' -U \(user) --pwfile='\(directory.path)/pw' -A scram-sha-256 -E UTF8 --no-locale"),
            "initdb")
        if tls {
            let d = directory.path
            try Self.check(
                Self.shell(
                    """
                    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
                        -keyout '\(d)/server.key' -out '\(d)/server.crt' 2>/dev/null &&
                    chown postgres '\(d)/server.key' '\(d)/server.crt' && chmod 600 '\(d)/server.key' &&
                    sed -i 's/^host /hostssl /' '\(d)/data/pg_hba.conf'
                    """), "TLS set-up")
        }
        try start()
    }

    /// Starts the server (again, after `kill`), waiting until it accepts connections.
    public func start() throws {
        try Self.check(
            Self.asPostgres(
                "'\(bin)/pg_ctl' -D '\(directory.path)/data' -l '\(directory.path)/log' -w -t 30 start -o \"-p \(port) -k '\(directory.path)' -c listen_addresses=127.0.0.1\(tlsOptions)\""
            ), "pg_ctl start")
    }

    private var tlsOptions: String {
        tls ? " -c ssl=on -c ssl_cert_file='\(directory.path)/server.crt' -c ssl_key_file='\(directory.path)/server.key'" : ""
    }

    /// Stops the server at once (`immediate`: as a crash, no shutdown checkpoint).
    public func kill() throws {
        try Self.check(Self.asPostgres("'\(bin)/pg_ctl' -D '\(directory.path)/data' -m immediate -w stop"), "pg_ctl stop")
    }

    public func remove() {
        _ = try? Self.asPostgres("'\(bin)/pg_ctl' -D '\(directory.path)/data' -m immediate -w stop")
        try? FileManager.default.removeItem(at: directory)
    }

    /// A new empty database; its URL without the password (which goes in PGPASSWORD).
    public func database(_ name: String) throws -> String {
        _ = try psql("postgres", "CREATE DATABASE \(name)")
        return "postgres://\(user)@127.0.0.1:\(port)/\(name)"
    }

    /// The environment a client needs for the password.
    public var environment: [String: String] { ["PGPASSWORD": password] }

    /// Runs SQL with `psql` (an independent client) and returns its rows, `|`-separated.
    public func psql(_ database: String, _ sql: String) throws -> [String] {
        var env = ProcessInfo.processInfo.environment
        env["PGPASSWORD"] = password
        let (status, out, err) = try ChildProcess.run(
            "/usr/bin/psql",
            ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", database, "-c", sql],
            environment: env)
        guard status == 0 else { throw PostgresServerError("psql \(sql): \(String(decoding: err, as: UTF8.self))") }
        return String(decoding: out, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    private static func asPostgres(_ command: String) throws -> (Int32, String) {
        try shell("cd / && runuser -u postgres -- sh -c \"\(command.replacingOccurrences(of: "\"", with: "\\\""))\"")
    }

    private static func shell(_ script: String) throws -> (Int32, String) {
        let (status, out, err) = try ChildProcess.run("/bin/sh", ["-c", script], environment: ProcessInfo.processInfo.environment)
        return (status, String(decoding: out + err, as: UTF8.self))
    }

    private static func check(_ result: (Int32, String), _ what: String) throws {
        guard result.0 == 0 else { throw PostgresServerError("\(what) failed (\(result.0)): \(result.1)") }
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw PostgresServerError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A server that would not start, or a statement `psql` refused.
public struct PostgresServerError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
