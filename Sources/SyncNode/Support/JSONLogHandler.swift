import Foundation
import Logging

/// Log lines for machines: one JSON object per line, `time` (UTC, milliseconds), `level`,
/// `logger`, `message`, then the metadata's keys (`request.id`, `sync.peer`, ...) as strings.
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
        var fields: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, new in new }) {
            fields[key] = Self.flatten(value)
        }
        fields["time"] = Self.timestamp(Date())
        fields["level"] = event.level.rawValue
        fields["logger"] = label
        fields["message"] = "\(event.message)"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(fields), let line = String(data: data, encoding: .utf8) else { return }
        write(line + "\n")
    }

    @Sendable public static func standardError(_ line: String) {
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func flatten(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        case .array(let items): "[" + items.map(flatten).joined(separator: ", ") + "]"
        case .dictionary(let d): "{" + d.sorted { $0.key < $1.key }.map { "\($0.key)=\(flatten($0.value))" }.joined(separator: ", ") + "}"
        }
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
