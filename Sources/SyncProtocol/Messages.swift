/// Who is speaking: sent with every request and response so each side can name the other.
public struct PeerIdentity: Codable, Hashable, Sendable {
    public var node: NodeID
    public var site: String
    public var label: String

    public init(node: NodeID, site: String, label: String) {
        self.node = node
        self.site = site
        self.label = label
    }
}

/// `GET /v1/status`: what a node holds and what time it thinks it is.
public struct StatusMessage: Codable, Equatable, Sendable {
    public var identity: PeerIdentity
    public var protocolVersion: Int
    public var schemaVersion: Int
    /// The node's wall clock, milliseconds since 1970, when it answered.
    public var clock: UInt64
    public var vector: VersionVector

    public init(identity: PeerIdentity, protocolVersion: Int, schemaVersion: Int, clock: UInt64, vector: VersionVector) {
        self.identity = identity
        self.protocolVersion = protocolVersion
        self.schemaVersion = schemaVersion
        self.clock = clock
        self.vector = vector
    }
}

/// `POST /v1/pull`: "here is my vector; send what I lack", within the given limits.
public struct PullRequest: Codable, Equatable, Sendable {
    public var protocolVersion: Int
    public var from: PeerIdentity
    public var vector: VersionVector
    public var maxTransactions: Int
    public var maxBytes: Int
    /// The caller's own transaction at this seq, by its SHA-256 (hex): the answer says whether the
    /// peer holds a different one (`BatchHeader.ownDiffers`), which means the caller lost part of
    /// its history (restored from an older copy) and recorded other work under the same numbers.
    public var ownCheck: OwnCheck?
    /// The caller's history of other origins, one check per origin at the last seq both sides
    /// hold: the answer names the origins whose history differs there (`BatchHeader.forks`), where
    /// the origin signed two histories (a fork; docs/PROTOCOL.md).
    public var forkChecks: [ForkCheck]?

    public struct ForkCheck: Codable, Equatable, Sendable {
        public var origin: NodeID
        public var seq: UInt64
        /// The caller's history chain of `origin` at `seq` (hex).
        public var chain: String

        public init(origin: NodeID, seq: UInt64, chain: String) {
            self.origin = origin
            self.seq = seq
            self.chain = chain
        }
    }

    public struct OwnCheck: Codable, Equatable, Sendable {
        public var seq: UInt64
        public var digest: String

        public init(seq: UInt64, digest: String) {
            self.seq = seq
            self.digest = digest
        }
    }

    public init(
        protocolVersion: Int = WireCodec.protocolVersion, from: PeerIdentity, vector: VersionVector, maxTransactions: Int, maxBytes: Int,
        ownCheck: OwnCheck? = nil, forkChecks: [ForkCheck]? = nil
    ) {
        self.protocolVersion = protocolVersion
        self.from = from
        self.vector = vector
        self.maxTransactions = maxTransactions
        self.maxBytes = maxBytes
        self.ownCheck = ownCheck
        self.forkChecks = forkChecks
    }
}

/// The header line of a batch of transactions (a pull response or a push request).
public struct BatchHeader: Codable, Equatable, Sendable {
    public var protocolVersion: Int
    public var from: PeerIdentity
    /// Number of transaction frames that follow.
    public var count: Int
    /// Whether the sender holds more that the receiver lacks (pull responses).
    public var more: Bool
    /// The sender's wall clock when it sent the batch.
    public var clock: UInt64
    /// In a pull response: the caller's own transactions the sender knows were refused.
    public var rejections: [Refusal]?
    /// In a pull response from the trust anchor (HQ) only: HQ's signature (hex) over the digest of
    /// the frames, vouching that it verified every transaction in them. A receiver that trusts this
    /// HQ may then skip verifying each origin's signature; anyone else's vouch is ignored.
    public var vouch: String?
    /// Answer to `PullRequest.ownCheck`: true when the sender holds a different transaction of the
    /// caller at that seq.
    public var ownDiffers: Bool?
    /// In a vouched response: the frames (by index) the trust anchor refused, with its reasons. The
    /// vouch covers them, so a receiver that trusts it takes HQ's verdict on every frame instead of
    /// judging again under a registry or policy that changed since.
    public var refusedFrames: [RefusedFrame]?
    /// Answer to `PullRequest.forkChecks`: the origins whose history the sender holds otherwise.
    public var forks: [NodeID]?

    public struct RefusedFrame: Codable, Equatable, Sendable {
        public var index: Int
        public var reason: String

        public init(index: Int, reason: String) {
            self.index = index
            self.reason = reason
        }
    }

    public init(
        protocolVersion: Int = WireCodec.protocolVersion, from: PeerIdentity, count: Int, more: Bool, clock: UInt64, rejections: [Refusal]? = nil,
        vouch: String? = nil
    ) {
        self.protocolVersion = protocolVersion
        self.from = from
        self.count = count
        self.more = more
        self.clock = clock
        self.rejections = rejections
        self.vouch = vouch
    }
}

/// The answer to a push: what the receiver applied and what it now holds.
public struct PushResponse: Codable, Equatable, Sendable {
    public var applied: Int
    public var duplicates: Int
    public var vector: VersionVector
    /// Transactions of the batch the receiver refused, with the reasons.
    public var refused: [Refusal]
    /// Transactions held until the registry knows their origin.
    public var held: Int

    public init(applied: Int, duplicates: Int, vector: VersionVector, refused: [Refusal] = [], held: Int = 0) {
        self.applied = applied
        self.duplicates = duplicates
        self.vector = vector
        self.refused = refused
        self.held = held
    }
}

/// Every error response: `{"error": {"code": "...", "message": "..."}}`.
public struct ErrorEnvelope: Codable, Equatable, Sendable {
    public struct Body: Codable, Equatable, Sendable {
        public var code: String
        public var message: String
    }

    public var error: Body

    public init(code: String, message: String) { self.error = Body(code: code, message: message) }
}

/// A transaction a node refused, and why: reported back to its origin.
public struct Refusal: Codable, Equatable, Hashable, Sendable {
    public var origin: NodeID
    public var seq: UInt64
    public var reason: String
    /// The label of the node that refused it.
    public var refusedBy: String
    /// True (or absent) when the transaction itself was refused for good; false when only a bad
    /// copy (unsigned, altered) was turned away and the genuine one may still arrive.
    public var permanent: Bool?

    public init(origin: NodeID, seq: UInt64, reason: String, refusedBy: String, permanent: Bool? = nil) {
        self.origin = origin
        self.seq = seq
        self.reason = reason
        self.refusedBy = refusedBy
        self.permanent = permanent
    }
}

/// The attached files a node names in its records and does not hold yet (`POST /v1/attachments/missing`):
/// what a caller holding them sends (`/v1/attachments/upload`), each from where its received part ends.
public struct AttachmentsMissing: Codable, Equatable, Sendable {
    public struct File: Codable, Equatable, Sendable {
        public var sha256: String
        public var bytes: Int
        /// Bytes of it received already (a cut transfer resumes there).
        public var have: Int

        public init(sha256: String, bytes: Int, have: Int) {
            self.sha256 = sha256
            self.bytes = bytes
            self.have = have
        }
    }

    public var files: [File]

    public init(files: [File]) { self.files = files }
}

/// Asks for part of an attached file (`POST /v1/attachments/fetch`); the answer is its bytes.
public struct AttachmentFetch: Codable, Equatable, Sendable {
    public var sha256: String
    public var offset: Int
    public var maxBytes: Int

    public init(sha256: String, offset: Int, maxBytes: Int) {
        self.sha256 = sha256
        self.offset = offset
        self.maxBytes = maxBytes
    }
}

/// Part of an attached file sent (`POST /v1/attachments/upload`, the header of a batch whose one
/// frame is the bytes), and the answer: how much of it the receiver holds now.
public struct AttachmentPart: Codable, Equatable, Sendable {
    public var sha256: String
    public var offset: Int

    public init(sha256: String, offset: Int) {
        self.sha256 = sha256
        self.offset = offset
    }
}

public struct AttachmentReceipt: Codable, Equatable, Sendable {
    public var sha256: String
    /// Bytes of it the receiver holds now: where the next part starts.
    public var have: Int
    public var complete: Bool
    /// The whole did not hash to its name: the receiver threw it away; send it again from 0.
    public var damaged: Bool

    public init(sha256: String, have: Int, complete: Bool, damaged: Bool) {
        self.sha256 = sha256
        self.have = have
        self.complete = complete
        self.damaged = damaged
    }
}
