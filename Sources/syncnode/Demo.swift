import ArgumentParser
import Foundation
import SyncNode

extension SyncNodeCommand {
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the embedded default: the 2017 plan on four local nodes (HQ, Chengde, Lintan, Gangu) syncing over HTTP and by bundle.")

        @Option(help: "Directory for the four nodes' data (must not exist).") var dir = "demo-data"

        func run() async throws {
            do {
                let converged = try await ProgrammeDemo(directory: URL(fileURLWithPath: dir), say: { emit($0) }).run()
                if !converged { throw ExitCode(1) }
            } catch let error as SyncNodeError {
                throw failure(error)
            }
        }
    }
}
