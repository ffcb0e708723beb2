import ArgumentParser
import Foundation
import SyncNode
import SyncProtocol
import SyncWeb

extension SyncNodeCommand {
    struct Submission: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "HQ's review of the nodes' submissions (审核): approve one, return one with a note, list the reviews.",
            discussion:
                "A submission is one transaction a node recorded, named ORIGIN/SEQ (ORIGIN: a node id, its first 8 or more hex digits, or its label; SEQ as `report review`, `rejections --each` and the web's own-work page show it). The review replicates to every node: the county sees what was returned and why.",
            subcommands: [Approve.self, Return.self, List.self], defaultSubcommand: List.self)

        struct Approve: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "HQ: approve a submission.")
            @OptionGroup var node: NodeOptions
            @Argument(help: ArgumentHelp("The submission.", valueName: "ORIGIN/SEQ")) var submission: String

            func run() throws { try SubmissionText.review(submission, .approved, note: nil, at: node) }
        }

        struct Return: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "HQ: return a submission with a note saying what to correct.")
            @OptionGroup var node: NodeOptions
            @Argument(help: ArgumentHelp("The submission.", valueName: "ORIGIN/SEQ")) var submission: String
            @Option(help: "What the county should correct (required).") var note: String

            func run() throws { try SubmissionText.review(submission, .returned, note: note, at: node) }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "The reviews held here, newest submission first.")
            @OptionGroup var node: NodeOptions
            @OptionGroup var output: OutputOptions
            @Option(help: "Only approved or only returned ones.") var state: String?

            func validate() throws {
                if let state, SubmissionReview.State(rawValue: state) == nil { throw ValidationError("--state takes approved or returned") }
            }

            func run() throws {
                let (reviews, labels) = try node.withStore { store in (try store.submissionReviews(), try store.nodeLabels()) }
                let shown = reviews.values.filter { state == nil || $0.state.rawValue == state }.sorted { $0.clock > $1.clock }
                if output.json {
                    emit(
                        Presenter.json(
                            shown.map { r -> [String: Any] in
                                [
                                    "origin": r.origin.hex, "seq": r.seq, "state": r.state.rawValue, "stateWord": r.state.word,
                                    "note": r.note ?? NSNull(), "reviewer": r.reviewer ?? NSNull(), "date": r.date ?? NSNull(),
                                ]
                            }))
                    return
                }
                var table = TextTable(["submission", "node", "state", "note", "reviewer", "date"])
                for r in shown {
                    table.add(["\(r.origin.short)/\(r.seq)", labels[r.origin] ?? "", r.state.word, r.note ?? "", r.reviewer ?? "", r.date ?? ""])
                }
                emit(shown.isEmpty ? "no reviews held here" : table.render())
            }
        }
    }
}

enum SubmissionText {
    /// Records HQ's review of `submission` and says so.
    static func review(_ submission: String, _ state: SubmissionReview.State, note text: String?, at node: NodeOptions) throws {
        let t = try node.withStore { store in
            let (origin, seq) = try parse(submission, store: store)
            return try store.reviewSubmission(origin: origin, seq: seq, state: state, note: text, today: LocalTime.today())
        }
        note("\(state == .approved ? "approved" : "returned") \(submission) (transaction \(t.seq))")
    }

    /// `ORIGIN/SEQ` with ORIGIN as a node id, its first 8+ hex digits or its label.
    static func parse(_ text: String, store: Store) throws(SyncNodeError) -> (NodeID, UInt64) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, let seq = UInt64(parts[1]), seq > 0 else {
            throw .invalid("'\(text.prefix(80))' is not a submission; give ORIGIN/SEQ, e.g. 3f2a9c1e/12")
        }
        do {
            return (try HeldText.resolve(parts[0], registry: try store.registry(), held: [], me: store.info, what: "the submission's node"), seq)
        } catch  where error.code == .notFound {
            throw SyncNodeError(.notFound, "no node '\(parts[0].prefix(64))' in the registry here; `syncnode node list` shows the nodes")
        }
    }
}
