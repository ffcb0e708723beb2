import Foundation
import NIOSSL
import PostgresNIO
import SyncNode

/// What went wrong with the PostgreSQL side, said as a `SyncNodeError` with the next step. No
/// message quotes the URL or the password; the target is named by its description.
enum MirrorErrors {
    static func said(_ error: any Error, _ target: PostgresTarget) -> SyncNodeError {
        if let said = error as? SyncNodeError { return said }
        if error is ConnectionClosed { return closed(target) }
        guard let psql = error as? PSQLError else {
            return SyncNodeError(.storage, "the mirror to \(target) failed: \(error)")
        }
        switch psql.code {
        case .server:
            return server(psql, target)
        case .connectionError:
            let why = psql.underlying.map { "\($0)" } ?? "no connection"
            if psql.underlying is NIOSSLError {
                let hint =
                    why.contains("CERTIFICATE_VERIFY_FAILED")
                    ? "the server's certificate is not signed by a root this node trusts; give its CA with sslrootcert=FILE (or PGSSLROOTCERT)"
                    : why
                return SyncNodeError(.unreachable, "TLS with PostgreSQL at \(target) failed: \(hint)")
            }
            return SyncNodeError(
                .unreachable, "cannot reach PostgreSQL at \(target): \(why); check that the server runs and the host and port are right")
        case .sslUnsupported:
            return SyncNodeError(
                .unreachable,
                "PostgreSQL at \(target) does not offer TLS, which sslmode=\(target.tls.rawValue) requires; turn TLS on at the server (ssl = on)")
        case .failedToAddSSLHandler:
            return SyncNodeError(.unreachable, "TLS with PostgreSQL at \(target) failed: \(psql.underlying.map { "\($0)" } ?? "no reason given")")
        case .authMechanismRequiresPassword:
            return SyncNodeError(
                .peerRefused, "PostgreSQL at \(target) asks user \(target.user) for a password; set PGPASSWORD (or put it in the URL) and run again")
        case .serverClosedConnection, .uncleanShutdown, .clientClosedConnection:
            return closed(target)
        default:
            return SyncNodeError(.storage, "the mirror to \(target) failed: \(psql.code)\(psql.underlying.map { ": \($0)" } ?? "")")
        }
    }

    private static func closed(_ target: PostgresTarget) -> SyncNodeError {
        SyncNodeError(
            .unreachable,
            "PostgreSQL at \(target) closed the connection during the mirror; what was committed stays, and the next run continues from there")
    }

    private static func server(_ psql: PSQLError, _ target: PostgresTarget) -> SyncNodeError {
        let state = psql.serverInfo?[.sqlState] ?? ""
        let message = psql.serverInfo?[.message] ?? "no message"
        switch state {
        case "28P01":
            return SyncNodeError(
                .peerRefused,
                "PostgreSQL at \(target) refused user \(target.user): the password is wrong; set the right one in PGPASSWORD (or the URL) and run again"
            )
        case "28000":
            return SyncNodeError(.peerRefused, "PostgreSQL at \(target) refused user \(target.user): \(message); allow it in pg_hba.conf")
        case "3D000":
            return SyncNodeError(.notFound, "PostgreSQL at \(target) has no database \(target.database); create it (createdb \(target.database))")
        case "42501":
            return SyncNodeError(
                .forbidden,
                "user \(target.user) may not write the mirror's tables in \(target.database): \(message); grant it CREATE on the database's schema"
            )
        case "57P01", "57P02", "57P03":
            return SyncNodeError(
                .unreachable,
                "PostgreSQL at \(target) is shutting down or starting (\(message)); the next run continues from the last batch committed")
        default:
            return SyncNodeError(.storage, "PostgreSQL at \(target) refused a statement of the mirror: \(message) (SQLSTATE \(state))")
        }
    }
}
