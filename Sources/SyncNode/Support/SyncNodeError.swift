import SyncProtocol

/// An error the node reports to its user: a stable code, an exit status for scripts, an HTTP
/// status for the API, and a message that says what happened and what to do. Never user data
/// beyond names the user typed.
public struct SyncNodeError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable, CaseIterable {
        /// Input the user or a peer gave is not acceptable (bad value, bad name, oversized).
        case invalidInput = "invalid_input"
        /// The data directory holds no node.
        case notANode = "not_a_node"
        /// `init` was asked to create a node where one already is.
        case nodeExists = "node_exists"
        /// The record, entry or conflict asked for does not exist.
        case notFound = "not_found"
        /// A bundle file is truncated, corrupted or of an unknown format.
        case corruptBundle = "corrupt_bundle"
        /// Transactions arrived out of order or malformed: the sender is faulty.
        case protocolViolation = "protocol_violation"
        /// A remote clock is further ahead than the drift limit.
        case clockSkew = "clock_skew"
        /// The database file is not a syncnode database or is damaged.
        case databaseCorrupt = "database_corrupt"
        /// The disk is full.
        case diskFull = "disk_full"
        /// The database or a file cannot be written (permissions, read-only file system).
        case readOnly = "read_only"
        /// Any other storage or file error.
        case storage = "storage"
        /// The database stayed locked by another process for too long; retrying may succeed.
        case busy = "busy"
        /// A peer could not be reached or did not answer in time.
        case unreachable = "unreachable"
        /// A peer answered with an error.
        case peerRefused = "peer_refused"
        /// The policy does not allow this node to write that.
        case forbidden = "forbidden"
        /// A sealed bundle was not sealed for this node: it cannot open it.
        case notForThisNode = "not_for_this_node"
        /// A write sent again with the submission key of one already recorded (a form resubmitted
        /// after a lost answer): nothing was recorded again; `recordedSeq` says which it was.
        case alreadyRecorded = "already_recorded"
    }

    public let code: Code
    public let message: String
    /// For a clock refusal from a peer: the peer's clock minus this node's, as far as it is known
    /// (the evidence `Store.clockWarning` shows at the next write).
    public var peerClockSkewMillis: Int64?
    /// For input checked against the plan: each problem, with the field it is about, so that a
    /// form can show it next to that field (`message` lists them all).
    public var problems: [ProgrammeCheck.Problem] = []
    /// The input is acceptable but needs the user's confirmation (a disbursement above what
    /// remains of the year's target).
    public var needsConfirmation = false
    /// What the person can do next, said by each interface in its own terms.
    public var nextStep: NextStep?
    /// For `alreadyRecorded`: the transaction that recorded the submission the first time.
    public var recordedSeq: UInt64?

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Bytes from a peer, a bundle or the log that are not in the wire form.
    public init(_ error: WireError) {
        self.init(.protocolViolation, error.description)
    }

    public var description: String { message }

    /// Process exit status, stable for scripts (documented in README and docs/CLI.md).
    public var exitCode: Int32 {
        switch code {
        case .invalidInput: return 65
        case .notANode: return 66
        case .notFound: return 3
        case .nodeExists: return 73
        case .corruptBundle: return 65
        case .protocolViolation: return 76
        case .clockSkew: return 77
        case .databaseCorrupt, .diskFull, .readOnly, .storage: return 74
        case .busy: return 75
        case .unreachable: return 69
        case .peerRefused: return 78
        case .forbidden: return 79
        case .notForThisNode: return 67
        case .alreadyRecorded: return 73
        }
    }

    public static func invalid(_ message: String) -> SyncNodeError { SyncNodeError(.invalidInput, message) }

    /// This error, with the same said in Chinese for people (a page, a CLI in a Chinese locale):
    /// one problem of no field.
    public func said(zh: String) -> SyncNodeError {
        var error = self
        error.problems = [ProgrammeCheck.Problem(field: nil, message: message, zh: zh, nextStep: nextStep)]
        return error
    }

    /// This error, with what to do next.
    public func next(_ step: NextStep) -> SyncNodeError {
        var error = self
        error.nextStep = step
        return error
    }
}
