import Foundation
import GRDB

/// Turns SQLite failures into errors that say what happened and what to do, and classifies them
/// as fatal (corrupt, disk full, read-only, I/O) or retryable (busy).
enum StorageErrors {
    static func map<T>(_ body: () throws -> T) throws(SyncNodeError) -> T {
        do {
            return try body()
        } catch let error as SyncNodeError {
            throw error
        } catch let error as DatabaseError {
            throw classify(error)
        } catch {
            throw SyncNodeError(.storage, "storage error: \(error)")
        }
    }

    static func classify(_ error: DatabaseError) -> SyncNodeError {
        // Messages never include bound values (user data); only SQLite's own description.
        switch error.resultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return SyncNodeError(
                .databaseCorrupt,
                "the node database is damaged or not a syncnode database (\(error.resultCode)); restore it from a backup, or re-create the node and sync from a peer"
            )
        case .SQLITE_FULL:
            return SyncNodeError(.diskFull, "the disk is full; nothing was written. Free some space and try again")
        case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN, .SQLITE_AUTH:
            return SyncNodeError(
                .readOnly, "the node database cannot be written (\(error.resultCode)); check the permissions of the data directory and its files")
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return SyncNodeError(.busy, "the node database is locked by another process; try again in a moment")
        case .SQLITE_IOERR:
            return SyncNodeError(.storage, "the disk reported an I/O error (\(error.extendedResultCode)); check the disk, nothing was written")
        default:
            return SyncNodeError(.storage, "storage error: \(error.resultCode) \(error.message ?? "")")
        }
    }
}
