import Foundation
import Logging

/// Log lines for machines: one JSON object per line, `time` (UTC, milliseconds), `level`,
/// `logger`, `message`, then the metadata's keys (`request.id`, `sync.peer`, ...), typed: a number
/// logged as a number (`http.status`, `sync.received`, `port`) is a JSON number, a flag a JSON
/// boolean, a list an array; everything else a string.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let write: @Sendable (String) -> Void

    /// Writes to standard error, as the text handler does.
    public init(label: String, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: Any] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, new in new }) {
            fields[key] = Self.typed(value)
        }
        fields["time"] = Self.timestamp(Date())
        fields["level"] = event.level.rawValue
        fields["logger"] = label
        fields["message"] = "\(event.message)"
        guard let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]),
            let line = String(data: data, encoding: .utf8)
        else { return }
        write(line + "\n")
    }

    /// A metadata value as JSON: numbers and flags keep their type (an integer beyond 64 bits, or
    /// a number that is not finite, is written as text).
    static func typed(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c):
            switch c {
            case let b as Bool: return b
            case let n as any BinaryInteger: return Int64(exactly: n).map { NSNumber(value: $0) } ?? c.description
            case let d as Double: return d.isFinite ? NSNumber(value: d) : c.description as Any
            case let f as Float: return f.isFinite ? NSNumber(value: Double(f)) : c.description as Any
            default: return c.description
            }
        case .array(let items): return items.map(typed)
        case .dictionary(let d): return d.mapValues(typed)
        }
    }

    @Sendable public static func standardError(_ line: String) {
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

/// How log lines are written: `text` for people (the default), `json` for machines.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json

    private static let chosen = Chosen()

    /// The format loggers made from now on use (the CLI's handler factory reads it).
    public static var current: LogFormat {
        get { chosen.get() }
        set { chosen.set(newValue) }
    }

    private final class Chosen: @unchecked Sendable {
        private let lock = NSLock()
        private var value = LogFormat.text
        func get() -> LogFormat { lock.withLock { value } }
        func set(_ format: LogFormat) { lock.withLock { value = format } }
    }
}
