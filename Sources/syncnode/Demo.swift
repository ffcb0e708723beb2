import ArgumentParser
import Foundation
import HummingbirdBcrypt
import Logging
import ServiceLifecycle
import SyncNode
import SyncWeb

extension SyncNodeCommand {
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Run the embedded default: the 2017 plan on four local nodes (HQ, Chengde, Lintan, Gangu) syncing over HTTP and by bundle, then HQ's dashboard."
        )

        @Option(help: "Directory for the four nodes' data (must not exist).") var dir = "demo-data"
        @Flag(help: "Keep serving HQ's dashboard until Ctrl-C (without it the demo checks the page answers and exits).") var keep = false
        @Option(help: "Port for HQ's dashboard (0: any free port).") var port = 0

        /// The demo's web user at HQ (printed; a real node's users are added with `syncnode user add`).
        static let user = "demo"
        static let password = "dongli-2017"

        func run() async throws {
            do {
                let converged = try await ProgrammeDemo(directory: URL(fileURLWithPath: dir), say: { emit($0) }).run()
                if !converged { throw ExitCode(1) }
                try await dashboard()
            } catch let error as SyncNodeError {
                throw failure(error)
            }
        }

        /// HQ's dashboard over the demo's data, with a demo user.
        private func dashboard() async throws {
            let hq = try Store.open(URL(fileURLWithPath: dir).appendingPathComponent("hq"))
            defer { try? hq.close() }
            try hq.addWebUser(name: Self.user, role: .admin, passwordHash: Bcrypt.hash(Self.password, cost: 10))
            var logger = Logger(label: "syncnode.demo")
            logger.logLevel = .warning
            let ready = AsyncStream<Int>.makeStream()
            let app = try NodeServer.application(
                service: SyncService(store: hq), host: "127.0.0.1", port: port, logger: logger, routes: [WebInterface(store: hq, logger: logger)]
            ) { port in ready.continuation.yield(port) }
            let group = ServiceGroup(services: [app], gracefulShutdownSignals: keep ? [.sigint, .sigterm] : [], logger: logger)
            let server = Task { try await group.run() }
            var ports = ready.stream.makeAsyncIterator()
            guard let port = await ports.next() else { throw SyncNodeError(.unreachable, "HQ's dashboard did not start") }
            emit("")
            emit("HQ's dashboard: http://127.0.0.1:\(port)/  (user \(Self.user), password \(Self.password))")
            if keep {
                emit("serving until Ctrl-C")
                try await server.value
            } else {
                // Without --keep: the page answers (a login redirect), then the demo ends.
                let answer = try? await CurlClient().send(method: "GET", url: "http://127.0.0.1:\(port)/login")
                emit("the login page answered \(answer.map { "HTTP \($0.status)" } ?? "nothing"); run `scripts/demo --keep` to keep it open")
                await group.triggerGracefulShutdown()
                _ = try? await server.value
            }
        }
    }
}
