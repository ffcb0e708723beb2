/// What a person can do next about an error or a refusal, for each interface to say in its own
/// terms: the command line names a command or an option, a web page its button or field. The
/// library's messages say what is wrong and what must happen, and name no command.
public enum NextStep: Sendable, Equatable {
    /// Set the clock right, then re-stamp the work recorded while it was wrong.
    case repairClock
    /// See the peers this node remembers.
    case listPeers
    /// Enrol the site as a new node, for HQ to approve.
    case enrolAnew
    /// Compare this node's key with the one HQ approved; have HQ approve it again if they differ.
    case compareKeys
    /// Have HQ approve this node, and let the registry reach the peer.
    case awaitApproval
    /// See a ledger's entries (nil: name the ledger).
    case listLedger(String?)
    /// See the nodes of the registry.
    case listNodes
    /// Remove the user first.
    case removeUserFirst(String)
    /// Change the existing record instead of adding it.
    case update
    /// Confirm the entry to record it anyway.
    case confirm
    /// Force the change, and give a reason.
    case forceWithReason
    /// Name the ledger the entry is in.
    case nameTheLedger
    /// Withdraw the entry and record it anew.
    case undoAndAddAnew
    /// Give a new value, or withdraw the entry.
    case newValueOrUndo
    /// See the projects.
    case listProjects
    /// Install the plan anyway, leaving those counties' data to the review.
    case dropCountiesKnowingly
}
