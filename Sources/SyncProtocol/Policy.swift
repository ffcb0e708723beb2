/// What a node is allowed to do, by role.
public enum Role: String, Codable, Sendable, CaseIterable {
    /// The leading group's office: writes everything, alone writes reference data, policy and the registry.
    case hq
    /// The finance bureau: budgets and disburses (the money ledgers), reads everything else.
    case finance
    /// A Dongli office or lead department: records work for any county, no money ledgers.
    case office
    /// A county node: records its own county's work only.
    case county
}

/// The author of a transaction as the registry knows it.
public struct Author: Equatable, Sendable {
    public var node: NodeID
    public var site: String
    public var role: Role
    public var label: String

    public init(node: NodeID, site: String, role: Role, label: String) {
        self.node = node
        self.site = site
        self.role = role
        self.label = label
    }
}

/// The rules receivers enforce. Replicated as data (the `policy` collection, written by HQ);
/// these defaults apply where it says nothing.
public struct PolicyRules: Equatable, Sendable {
    /// Collections only HQ writes. `registry`, `policy` and `programme` are always among them.
    public var referenceCollections: Set<String>
    /// Ledgers only finance (and HQ) append to.
    public var financeLedgers: Set<String>
    /// For each county site, the record-id prefixes of its records.
    public var countyPrefixes: [String: [String]]

    public static let registryCollection = "registry"
    public static let policyCollection = "policy"
    /// The plan every node validates and reports by (written by HQ only, whatever the policy says:
    /// a county that could write it could move its own prefixes or targets).
    public static let programmeCollection = "programme"
    /// HQ's review of each submission (approved, or returned with a note): written by HQ only,
    /// whatever the policy says, so a county cannot approve its own work.
    public static let reviewCollection = "reviews"

    public static let defaults = PolicyRules(
        referenceCollections: ["counties", "work_areas", "units", "sites", "fund_targets"],
        financeLedgers: ["disbursements", "allocations", "fund_targets"],
        countyPrefixes: ["chengde": ["cd-", "chengde-"], "lintan": ["lt-", "lintan-"], "gangu": ["gg-", "gangu-"]])

    public init(referenceCollections: Set<String>, financeLedgers: Set<String>, countyPrefixes: [String: [String]]) {
        self.referenceCollections = referenceCollections.union([
            Self.registryCollection, Self.policyCollection, Self.programmeCollection, Self.reviewCollection,
        ])
        self.financeLedgers = financeLedgers
        self.countyPrefixes = countyPrefixes
    }

    /// Why `author` may not make `change`, or nil when it may. A pure function of its inputs, so
    /// every receiver holding the same registry and policy decides the same way.
    public func violation(of change: Change, by author: Author) -> String? {
        let who = "\(author.role.rawValue) node \(author.label) (\(author.site))"
        switch change {
        case .author:
            // Who made it at the origin: the origin's own word, signed with the transaction.
            return nil
        case .unknown(let kind, _):
            return author.role == .hq ? nil : "\(who) may not make changes of kind '\(kind)', which this node cannot check"
        case .set(let w) where w.collection == Attachment.collection:
            // A file attached to a record is judged as a write to that record.
            guard let owner = Attachment.Reference(attachmentID: w.recordID) else {
                return "attachment record \(w.recordID) does not name its record and file as COLLECTION/RECORD-ID/SHA256"
            }
            var asOwner = w
            asOwner.collection = owner.collection
            asOwner.recordID = owner.recordID
            asOwner.field = Attachment.collection
            return violation(of: .set(asOwner), by: author)
        case .set(let w):
            if author.role == .hq { return nil }
            if referenceCollections.contains(w.collection) {
                return "\(who) may not write \(w.collection) record \(w.recordID): only HQ writes reference data"
            }
            if author.role == .finance { return "\(who) may not write \(w.collection) record \(w.recordID): finance appends to money ledgers only" }
            if author.role == .county {
                if w.field == "county", w.value != .text(author.site) {
                    return "\(who) may not assign \(w.collection) record \(w.recordID) to county \(w.value)"
                }
                if let owner = ownerCounty(of: w.recordID), owner != author.site {
                    return "\(who) may not write \(owner) \(singular(w.collection)) \(w.recordID)"
                }
                if ownerCounty(of: w.recordID) == nil {
                    let prefixes = (countyPrefixes[author.site] ?? []).joined(separator: " or ")
                    return
                        "\(who) may not write \(w.collection) record \(w.recordID): a county's record ids start with \(prefixes.isEmpty ? "its prefix" : prefixes)"
                }
            }
            return nil
        case .append(let e):
            if author.role == .hq { return nil }
            if financeLedgers.contains(e.ledger) {
                return author.role == .finance ? nil : "\(who) may not append to \(e.ledger): only finance does"
            }
            if referenceCollections.contains(e.ledger) { return "\(who) may not append to \(e.ledger): only HQ writes reference data" }
            if author.role == .finance { return "\(who) may not append to \(e.ledger): finance appends to money ledgers only" }
            if author.role == .county, e.fields["county"] != .text(author.site) {
                return
                    "\(who) may not append to \(e.ledger) for county \(e.fields["county"]?.description ?? "(none)"): entries must carry county=\(author.site)"
            }
            return nil
        }
    }

    /// The county whose prefix starts the record id, if any.
    public func ownerCounty(of recordID: String) -> String? {
        var best: (county: String, length: Int)?
        for (county, prefixes) in countyPrefixes {
            for p in prefixes where recordID.hasPrefix(p) && p.count > (best?.length ?? 0) {
                best = (county, p.count)
            }
        }
        return best?.county
    }

    private func singular(_ collection: String) -> String {
        collection.hasSuffix("s") ? String(collection.dropLast()) : collection
    }
}

extension Transaction {
    /// Whether the transaction writes the registry or the policy.
    public var touchesTrustData: Bool {
        changes.contains { change in
            if case .set(let w) = change { return w.collection == PolicyRules.registryCollection || w.collection == PolicyRules.policyCollection }
            return false
        }
    }
}
