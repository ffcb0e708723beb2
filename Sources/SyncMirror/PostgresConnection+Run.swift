import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The connection closed under a statement (the server stopped, the network went).
struct ConnectionClosed: Error {}

extension PostgresConnection {
    /// Runs `query`, and fails as soon as the connection closes if it has not answered by then.
    /// PostgresNIO writes a statement to its channel without a promise: one written just after
    /// the server went away is dropped and never answered, and a plain `query` would wait for it
    /// forever (seen when the server was stopped while a batch waited on a lock).
    @discardableResult
    func run(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        if isClosed { throw ConnectionClosed() }
        let answer = Answer()
        // Cancelled (serve stopping): the connection is closed, which answers the statement.
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PostgresRowSequence, any Error>) in
                answer.wait(continuation)
                closeFuture.whenComplete { _ in answer.give(.failure(ConnectionClosed())) }
                Task {
                    do {
                        answer.give(.success(try await self.query(query, logger: logger)))
                    } catch {
                        answer.give(.failure(error))
                    }
                }
            }
        } onCancel: {
            answer.give(.failure(CancellationError()))
            let closing: EventLoopFuture<Void> = self.close()
            _ = closing
        }
    }

    /// `body` between BEGIN and COMMIT. On a failure nothing is rolled back here: the caller
    /// abandons the connection, and the server rolls back what an ended connection left open
    /// (a ROLLBACK written to a closed connection would be the very statement never answered).
    func transaction(logger: Logger, _ body: (PostgresConnection) async throws -> Void) async throws {
        try await run("BEGIN", logger: logger)
        try await body(self)
        try await run("COMMIT", logger: logger)
    }
}

/// The first answer a statement gets, its own or the connection's closing; later ones are dropped.
private final class Answer: Sendable {
    private let state = Mutex<(CheckedContinuation<PostgresRowSequence, any Error>?, Result<PostgresRowSequence, any Error>?, Bool)>(
        (nil, nil, false))

    func wait(_ continuation: CheckedContinuation<PostgresRowSequence, any Error>) {
        let early: Result<PostgresRowSequence, any Error>? = state.withLock { s in
            if let result = s.1, !s.2 {
                s.2 = true
                return result
            }
            s.0 = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func give(_ result: Result<PostgresRowSequence, any Error>) {
        let waiting: CheckedContinuation<PostgresRowSequence, any Error>? = state.withLock { s in
            guard !s.2 else { return nil }
            guard let c = s.0 else {
                if s.1 == nil { s.1 = result }
                return nil
            }
            s.2 = true
            s.0 = nil
            return c
        }
        waiting?.resume(with: result)
    }
}
