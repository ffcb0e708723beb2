import SyncProtocol
import Testing

@Suite struct PolicyTests {
    let county = Author(node: node(2), site: "lintan", role: .county, label: "lintan-1")

    /// The plan is HQ's alone even when HQ's policy names other reference collections: a county
    /// that could write it could give itself another county's prefixes.
    @Test func theProgrammeStaysHQsWhateverThePolicyLists() {
        let rules = PolicyRules(referenceCollections: ["counties"], financeLedgers: [], countyPrefixes: ["lintan": ["lt-"]])
        let write = Change.set(FieldWrite(collection: PolicyRules.programmeCollection, recordID: "plan", field: "json", value: .text("{}")))
        #expect(rules.violation(of: write, by: county)?.contains("only HQ writes reference data") == true)
        let hq = Author(node: node(1), site: "hq", role: .hq, label: "hq")
        #expect(rules.violation(of: write, by: hq) == nil)
        for c in [PolicyRules.registryCollection, PolicyRules.policyCollection, PolicyRules.programmeCollection] {
            #expect(PolicyRules.defaults.referenceCollections.contains(c))
        }
    }

    /// A file attached to a record is judged as a write to that record: a county attaches to its
    /// own records only, never to reference data; an id that does not name a record and a file is
    /// refused whoever writes it.
    @Test func anAttachmentFollowsItsRecordsPolicy() {
        let rules = PolicyRules(
            referenceCollections: ["counties"], financeLedgers: ["disbursements"], countyPrefixes: ["lintan": ["lt-"], "gangu": ["gg-"]])
        let sha = String(repeating: "ab", count: 32)
        func attach(_ id: String) -> Change {
            .set(FieldWrite(collection: Attachment.collection, recordID: id, field: Attachment.Field.caption, value: .text("photo")))
        }
        #expect(rules.violation(of: attach("projects/lt-1/\(sha)"), by: county) == nil)
        #expect(rules.violation(of: attach("projects/gg-1/\(sha)"), by: county)?.contains("may not write gangu project gg-1") == true)
        #expect(rules.violation(of: attach("counties/lt-1/\(sha)"), by: county)?.contains("only HQ writes reference data") == true)
        let finance = Author(node: node(3), site: "finance", role: .finance, label: "finance")
        #expect(rules.violation(of: attach("projects/lt-1/\(sha)"), by: finance) != nil)
        let hq = Author(node: node(1), site: "hq", role: .hq, label: "hq")
        #expect(rules.violation(of: attach("projects/gg-1/\(sha)"), by: hq) == nil)
        for bad in ["lt-1", "projects/lt-1", "projects/lt-1/\(sha.uppercased())", "projects/lt-1/abc", "/lt-1/\(sha)", "attachments/x/\(sha)"] {
            #expect(rules.violation(of: attach(bad), by: hq)?.contains("does not name its record and file") == true, "\(bad)")
        }
        // A record id holding '/' is still read: the collection ends at the first, the file starts after the last.
        #expect(
            Attachment.Reference(attachmentID: "projects/lt-a/b/\(sha)")
                == Attachment.Reference(collection: "projects", recordID: "lt-a/b", sha256: sha))
        #expect(Attachment.MediaType(leadingBytes: [0xFF, 0xD8, 0xFF, 0xE0]) == .jpeg)
        #expect(Attachment.MediaType(leadingBytes: Array("%PDF-1.7".utf8)) == .pdf)
        #expect(Attachment.MediaType(leadingBytes: Array("<html>".utf8)) == nil)
        #expect(Attachment.MediaType(leadingBytes: [0, 0, 0, 0x18] + Array("ftypheic".utf8)) == .heic)
    }
}
