import Foundation

/// A strict reader of the Prometheus text exposition format (version 0.0.4), for tests: every
/// line is a `# TYPE`/`# HELP` comment or a sample `name{label="value",...} number`; a sample's
/// family must have been typed before it; histogram samples are `_bucket` (with `le`), `_sum`
/// and `_count`. A line it cannot read fails the test with the line.
struct PrometheusText {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var types: [String: String] = [:]
    var helps: [String: String] = [:]
    var samples: [Sample] = []

    init(_ text: String) throws {
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, Self.isName(parts[2]), ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else {
                    throw TestFailure("bad TYPE line: \(line)")
                }
                guard types[String(parts[2])] == nil else { throw TestFailure("family typed twice: \(line)") }
                types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("# HELP ") {
                let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1)
                guard parts.count == 2, Self.isName(parts[0]), types[String(parts[0])] == nil else {
                    throw TestFailure("bad HELP line (or after its TYPE line): \(line)")
                }
                helps[String(parts[0])] = String(parts[1])
                continue
            }
            if line.hasPrefix("#") { continue }
            let sample = try Self.sample(Substring(line))
            let family = types[sample.name] != nil ? sample.name : Self.histogramFamily(sample.name)
            guard let family, let type = types[family] else { throw TestFailure("sample before its TYPE line: \(line)") }
            if type == "histogram" {
                guard family != sample.name else { throw TestFailure("a histogram sample needs _bucket, _sum or _count: \(line)") }
                if sample.name.hasSuffix("_bucket") && sample.labels["le"] == nil { throw TestFailure("bucket without le: \(line)") }
            }
            samples.append(sample)
        }
    }

    /// The sample of `name` whose labels include `labels`; nil if none (or several).
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { s in s.name == name && labels.allSatisfy { s.labels[$0.key] == $0.value } }
        return matching.count == 1 ? matching[0].value : nil
    }

    /// The sum over every sample of `name` whose labels include `labels` (0 if none).
    func total(_ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { s in s.name == name && labels.allSatisfy { s.labels[$0.key] == $0.value } }.reduce(0) { $0 + $1.value }
    }

    func has(_ name: String) -> Bool { samples.contains { $0.name == name } }

    private static func histogramFamily(_ name: String) -> String? {
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) { return String(name.dropLast(suffix.count)) }
        return nil
    }

    private static func isName(_ s: Substring) -> Bool {
        guard let first = s.first, first.isLetter || first == "_" || first == ":" else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") }
    }

    private static func sample(_ line: Substring) throws -> Sample {
        var rest = line[...]
        let nameEnd = rest.firstIndex { $0 == "{" || $0 == " " } ?? rest.endIndex
        let name = rest[..<nameEnd]
        guard isName(name) else { throw TestFailure("bad metric name: \(line)") }
        rest = rest[nameEnd...]
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                guard let eq = rest.firstIndex(of: "="), isName(rest[..<eq]), rest[rest.index(after: eq)...].first == "\"" else {
                    throw TestFailure("bad label: \(line)")
                }
                let key = String(rest[..<eq])
                rest = rest[rest.index(eq, offsetBy: 2)...]
                var value = ""
                while true {
                    guard let c = rest.first else { throw TestFailure("unterminated label value: \(line)") }
                    rest = rest.dropFirst()
                    if c == "\"" { break }
                    if c == "\\" {
                        guard let e = rest.first else { throw TestFailure("bad escape: \(line)") }
                        rest = rest.dropFirst()
                        switch e {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw TestFailure("bad escape \\\(e): \(line)")
                        }
                    } else {
                        value.append(c)
                    }
                }
                guard labels[key] == nil else { throw TestFailure("label repeated: \(line)") }
                labels[key] = value
                if rest.first == "," { rest = rest.dropFirst() } else if rest.first != "}" { throw TestFailure("bad label list: \(line)") }
            }
            rest = rest.dropFirst()
        }
        guard rest.first == " " else { throw TestFailure("no value: \(line)") }
        let fields = rest.dropFirst().split(separator: " ")
        guard (1...2).contains(fields.count) else { throw TestFailure("bad value: \(line)") }
        let text = String(fields[0])
        guard let value = ["+Inf": Double.infinity, "-Inf": -Double.infinity, "NaN": Double.nan][text] ?? Double(text) else {
            throw TestFailure("bad value: \(line)")
        }
        return Sample(name: String(name), labels: labels, value: value)
    }
}
