import SyncNode
import SyncProtocol

/// Parses the CLI's `FIELD=VALUE` arguments.
///
/// - `FIELD=TEXT` stores text exactly as given (may be empty, may contain `=`).
/// - `FIELD:=NUMBER` stores an integer (`12`, `-3`) or a real (`1.5`, `2e3`).
/// - `FIELD:=null` stores null (clears the field).
public enum AssignmentParser {
    /// `FIELD=VALUE` split at its first `=` (the one place that does: `record put` and `add`).
    public static func split(_ argument: String) throws(SyncNodeError) -> (field: String, value: String) {
        guard let eq = argument.firstIndex(of: "=") else {
            throw .invalid("'\(argument.prefix(60))' is not FIELD=VALUE; write name=text, or count:=12 for a number")
        }
        return (String(argument[..<eq]), String(argument[argument.index(after: eq)...]))
    }

    public static func parse(_ argument: String) throws(SyncNodeError) -> FieldAssignment {
        let parts = try split(argument)
        var field = parts.field
        let raw = parts.value
        let typed = field.hasSuffix(":")
        if typed { field.removeLast() }
        if field.isEmpty {
            throw .invalid("'\(argument.prefix(60))' has no field name before '='; write name=text")
        }
        guard typed else { return FieldAssignment(field, .text(raw)) }
        if raw == "null" { return FieldAssignment(field, .null) }
        if let i = Int64(raw) { return FieldAssignment(field, .int(i)) }
        if let d = Double(raw), d.isFinite, raw.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) {
            return FieldAssignment(field, .real(d))
        }
        throw .invalid("'\(raw.prefix(40))' after '\(field):=' is not a number; use \(field)=TEXT for text, or a number such as 12 or 1.5")
    }
}
