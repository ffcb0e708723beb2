import ArgumentParser
import SyncNode

extension SyncNodeCommand {
    struct RepairClock: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "repair-clock",
            abstract: "After a wrong clock far ahead was set right: record again the work stamped with it.",
            discussion: """
                Work recorded while this computer's clock was far ahead carries that time, and peers refuse it \
                (sync exits 77, "… ahead"). Set the clock right first, then run this: the node's transactions \
                stamped beyond the drift limit of the time now, which no peer holds yet, are withdrawn and \
                recorded again with the corrected clock, and the clock's high-water mark returns to the present. \
                Nothing is lost. Exits 3 when there is nothing to repair, 79 when a peer already holds that work.
                """)

        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let report = try node.withStore { store in try store.repairClock() }
            if output.json {
                emit(Presenter.json(["reissued": report.reissued]))
            } else {
                note("recorded \(report.reissued) transactions again with the corrected clock; run `syncnode sync`")
            }
        }
    }
}
