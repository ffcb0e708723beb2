import ArgumentParser
import Foundation
import SyncNode

extension SyncNodeCommand {
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the embedded default: the 2017 plan on four local nodes (HQ, Chengde, Lintan, Gangu) converging through bundles.")

        @Option(help: "Directory for the four nodes' data (must not exist).") var dir = "demo-data"

        func run() throws {
            do {
                let converged = try ProgrammeDemo(directory: URL(fileURLWithPath: dir), say: emit).run()
                if !converged { throw ExitCode(1) }
            } catch let error as SyncNodeError {
                throw failure(error)
            }
        }
    }
}
