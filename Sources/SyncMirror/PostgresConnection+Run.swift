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
        try await guarded { try await self.query(query, logger: logger) }
    }

    /// Rows into `table` with `COPY … FROM STDIN` (text format: `text` holds them, tab-separated,
    /// a line each, escaped by `copyField`), guarded as `run` is.
    func copy(into table: String, columns: [String], text: String, logger: Logger) async throws {
        let buffer = ByteBuffer(string: text)
        try await guarded {
            try await self.copyFrom(table: table, columns: columns, logger: logger) { writer in try await writer.write(buffer) }
        }
    }

    /// `operation`, failing as soon as the connection closes or the task is cancelled (the
    /// connection is then closed, which ends whatever it waited for).
    private func guarded<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        if isClosed { throw ConnectionClosed() }
        let answer = Answer<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                answer.wait(continuation)
                closeFuture.whenComplete { _ in answer.give(.failure(ConnectionClosed())) }
                Task {
                    do {
                        answer.give(.success(try await operation()))
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

/// One field of a `COPY` text row: `\N` for NULL; backslash, tab, newline and carriage return
/// escaped.
func copyField(_ value: String?) -> String {
    guard let value else { return "\\N" }
    guard value.utf8.contains(where: { $0 == 0x5C || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) else { return value }
    var out = ""
    out.reserveCapacity(value.utf8.count + 8)
    for ch in value.unicodeScalars {
        switch ch {
        case "\\": out += "\\\\"
        case "\t": out += "\\t"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        default: out.unicodeScalars.append(ch)
        }
    }
    return out
}

/// The first answer an operation gets, its own or the connection's closing; later ones are dropped.
private final class Answer<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, any Error>?
    private var early: Result<T, any Error>?
    private var done = false

    func wait(_ continuation: CheckedContinuation<T, any Error>) {
        lock.lock()
        if let early, !done {
            done = true
            lock.unlock()
            continuation.resume(with: early)
            return
        }
        self.continuation = continuation
        lock.unlock()
    }

    func give(_ result: Result<T, any Error>) {
        lock.lock()
        guard !done else {
            lock.unlock()
            return
        }
        guard let waiting = continuation else {
            if early == nil { early = result }
            lock.unlock()
            return
        }
        done = true
        continuation = nil
        lock.unlock()
        waiting.resume(with: result)
    }
}
