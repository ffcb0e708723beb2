import Foundation
import NIOSSL
import PostgresNIO
import SyncNode

/// The PostgreSQL database a mirror writes to, from a `postgres://` URL and the standard `PG*`
/// variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`,
/// `PGSSLROOTCERT`), the URL's parts first, as libpq takes them. The password is never shown:
/// `description` leaves it out, and no message quotes the URL as typed.
public struct PostgresTarget: Sendable, CustomStringConvertible {
    /// How the connection uses TLS (libpq's `sslmode`).
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it, without checking its certificate (libpq's default).
        case prefer
        /// TLS or no connection; the certificate is not checked (libpq's meaning of `require`).
        case require
        /// TLS; the certificate chain is checked against `sslrootcert` (else the system's roots).
        case verifyCA = "verify-ca"
        /// As `verify-ca`, and the certificate must name the host.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// A PEM file of the certificates that may sign the server's (verify-ca, verify-full).
    public var rootCertificate: String?

    /// The target without credentials: what logs, `status` and messages show.
    public var description: String {
        let address = host.hasPrefix("/") ? "\(host) (socket), port \(port)" : "\(host):\(port)"
        return "postgres://\(user)@\(address)/\(database) (sslmode=\(tls.rawValue))"
    }

    /// Reads `url` (nil: the `PG*` variables alone) with `environment` for what it leaves out.
    public static func parse(_ url: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws(SyncNodeError)
        -> PostgresTarget
    {
        var parts = URLParts()
        if let url {
            parts = try URLParts(url)
        }
        func env(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let host = parts.host ?? env("PGHOST") ?? "localhost"
        let portText = parts.port ?? env("PGPORT") ?? "5432"
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw .invalid("the PostgreSQL port must be a number from 1 to 65535, not '\(portText)'; fix the URL's port or PGPORT")
        }
        let user = parts.user ?? env("PGUSER") ?? env("USER") ?? "postgres"
        let database = parts.database ?? env("PGDATABASE") ?? user
        let modeText = parts.sslmode ?? env("PGSSLMODE") ?? "prefer"
        guard let tls = TLSMode(rawValue: modeText) else {
            throw .invalid(
                "sslmode '\(modeText)' is not known; use one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", ")) (in the URL as ?sslmode=…, or PGSSLMODE)"
            )
        }
        let root = parts.sslrootcert ?? env("PGSSLROOTCERT")
        return PostgresTarget(
            host: host, port: port, user: user, password: parts.password ?? env("PGPASSWORD"), database: database, tls: tls, rootCertificate: root)
    }

    /// Set on each connection: a lock an analyst's long query holds fails the statement after a
    /// minute (the pass fails and is tried again) instead of waiting behind it for good.
    static let sessionSettings = [("lock_timeout", "60s"), ("application_name", "syncnode mirror")]

    /// The connection's configuration. Reading the root certificates can fail: said plainly.
    func configuration() throws(SyncNodeError) -> PostgresConnection.Configuration {
        if host.hasPrefix("/") {
            let socket = host.hasSuffix(".s.PGSQL.\(port)") ? host : "\(host)/.s.PGSQL.\(port)"
            var configuration = PostgresConnection.Configuration(unixSocketPath: socket, username: user, password: password, database: database)
            configuration.options.additionalStartupParameters = Self.sessionSettings
            return configuration
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: try tlsSetting())
        configuration.options.connectTimeout = .seconds(10)
        configuration.options.additionalStartupParameters = Self.sessionSettings
        return configuration
    }

    private func tlsSetting() throws(SyncNodeError) -> PostgresConnection.Configuration.TLS {
        var settings = TLSConfiguration.makeClientConfiguration()
        switch tls {
        case .disable: return .disable
        // As libpq: `require` with a root certificate checks the chain (verify-ca).
        case .require where rootCertificate != nil: settings.certificateVerification = .noHostnameVerification
        case .prefer, .require: settings.certificateVerification = .none
        case .verifyCA: settings.certificateVerification = .noHostnameVerification
        case .verifyFull: settings.certificateVerification = .fullVerification
        }
        if let rootCertificate, tls != .prefer {
            do {
                settings.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(rootCertificate))
            } catch {
                throw .invalid("cannot read the root certificates in \(rootCertificate) (sslrootcert): \(error); give a PEM file")
            }
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: settings)
        } catch {
            throw SyncNodeError(.storage, "cannot set up TLS for \(description): \(error)")
        }
        return tls == .prefer ? .prefer(context) : .require(context)
    }
}

/// The parts of a `postgres://` URL, percent-decoded; nil where the URL says nothing.
private struct URLParts {
    var host: String?
    var port: String?
    var user: String?
    var password: String?
    var database: String?
    var sslmode: String?
    var sslrootcert: String?

    init() {}

    init(_ url: String) throws(SyncNodeError) {
        // Never quoted back: the URL may carry a password.
        let usage = "give the mirror as postgres://USER@HOST:PORT/DATABASE (the password in PGPASSWORD, or after USER:)"
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw .invalid("the PostgreSQL address is not a URL; \(usage)")
        }
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw .invalid("the PostgreSQL address must start with postgres:// or postgresql://, not \(scheme)://; \(usage)")
        }
        // A password holding an unescaped '/', '?' or '#' ends the address early and would be
        // read as a host, a database or a parameter, then shown in messages: refused, unquoted.
        let afterScheme = url.drop { $0 != ":" }.dropFirst(3)
        if let at = afterScheme.lastIndex(of: "@"), afterScheme[..<at].contains(where: { "/?#".contains($0) }) {
            throw .invalid(
                "the PostgreSQL URL's user or password holds '/', '?' or '#'; write them as %2F, %3F and %23, or give the password in PGPASSWORD")
        }
        host = components.percentEncodedHost.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
        if let bracketed = host, bracketed.hasPrefix("["), bracketed.hasSuffix("]") { host = String(bracketed.dropFirst().dropLast()) }
        port = components.port.map(String.init)
        user = components.percentEncodedUser.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
        password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        let path = components.percentEncodedPath
        if path.count > 1 {
            database = String(path.dropFirst()).removingPercentEncoding
            if database?.contains("/") == true { throw .invalid("the PostgreSQL URL names one database after the host: /DATABASE; \(usage)") }
        }
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode": sslmode = item.value
            case "sslrootcert": sslrootcert = item.value
            case "host": host = item.value
            case "port": port = item.value
            case "user": user = item.value
            case "password": password = item.value
            case "dbname": database = item.value
            case "application_name", "connect_timeout": continue
            default:
                let name = item.name.allSatisfy { $0.isASCII && ($0.isLetter || $0 == "_") } ? "'\(item.name)'" : "given"
                throw .invalid(
                    "the PostgreSQL URL's parameter \(name) is not one the mirror reads (sslmode, sslrootcert, host, port, user, password, dbname)")
            }
        }
    }
}
