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
}
