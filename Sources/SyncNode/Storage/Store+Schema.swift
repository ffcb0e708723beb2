import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Local schema migrations. They never produce replicated changes.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        // One file each, in Storage/Migrations; never edited once released (a node upgrades by
        // running the ones it has not run, as they were).
        let migrations: [(String, @Sendable (Database) throws -> Void)] = [
            ("v1", migrateV01Initial),
            ("v2-peers", migrateV02Peers),
            ("v3-trust", migrateV03Trust),
            ("v4-packed", migrateV04Packed),
            ("v5-integrity", migrateV05Integrity),
            ("v6-ledger-money", migrateV06LedgerMoney),
            ("v7-contact", migrateV07Contact),
            ("v8-web", migrateV08Web),
            ("v9-report-index", migrateV09ReportIndex),
            ("v10-money-model", migrateV10MoneyModel),
            ("v11-forks", migrateV11Forks),
            ("v12-held-index", migrateV12HeldIndex),
            ("v13-submission-key", migrateV13SubmissionKey),
        ]
        for (name, migrate) in migrations { migrator.registerMigration(name, migrate: migrate) }
        return migrator
    }

    /// The columns of `ledger_money` as SQL over the entry `NEW` (its JSON `fields`), and when
    /// an entry is projected at all: migrations v6 and v9 (as they were then; kept so that they
    /// run as they ran).
    enum MoneyProjection {
        static let amount = "json_extract(NEW.fields, '$.amount_fen')"
        static let columns = (
            county: "json_extract(NEW.fields, '$.county')",
            year: "CAST(coalesce(json_extract(NEW.fields, '$.year'), substr(json_extract(NEW.fields, '$.date'), 1, 4)) AS INTEGER)",
            project: "json_extract(NEW.fields, '$.project')", amount: amount,
            counted: "json_extract(NEW.fields, '$._reverses') IS NULL AND typeof(\(amount)) = 'integer'"
        )
    }

    /// `MoneyModel.placement` written in SQL over an entry's JSON `fields` (`column`): the
    /// projection `ledger_money` (v10) keeps for every entry that counts. The rule is the Swift
    /// one; `MoneyModelTests` holds this to it over random entries (each field absent, null, of
    /// the wrong type, malformed or sound).
    enum MoneySQL {
        static func text(_ column: String, _ name: String) -> String {
            "CASE WHEN json_type(\(column), '$.\(name)') = 'text' THEN json_extract(\(column), '$.\(name)') END"
        }

        /// `MoneyModel.budgetYear`: `budget_year`, else `year`, else the date's first four digits.
        static func year(_ column: String) -> String {
            var cases: [String] = []
            for name in ["budget_year", "year"] {
                let type = "json_type(\(column), '$.\(name)')"
                let value = "json_extract(\(column), '$.\(name)')"
                cases.append("WHEN \(type) = 'integer' THEN \(value)")
                cases.append("WHEN \(type) = 'text' THEN (CASE WHEN \(value) GLOB '[0-9][0-9][0-9][0-9]' THEN CAST(\(value) AS INTEGER) END)")
                cases.append("WHEN \(type) <> 'null' THEN NULL")
            }
            let prefix = "substr(json_extract(\(column), '$.date'), 1, 4)"
            cases.append("WHEN json_type(\(column), '$.date') = 'text' AND \(prefix) GLOB '[0-9][0-9][0-9][0-9]' THEN CAST(\(prefix) AS INTEGER)")
            return "(CASE \(cases.joined(separator: " ")) END)"
        }

        /// `MoneyModel.isReversal` negated (the form the partial index of reversals is made with).
        static func notReversal(_ column: String) -> String { "json_extract(\(column), '$._reverses') IS NULL" }

        /// `MoneyModel.placement` is not nil.
        static func counted(_ column: String) -> String {
            "\(notReversal(column)) AND json_type(\(column), '$.amount_fen') = 'integer'"
        }

        /// Projects the entries `row` of `from` (`NEW`, in a trigger) that count.
        static func insert(_ row: String, from: String = "") -> String {
            let fields = "\(row).fields"
            return """
                INSERT INTO ledger_money (ledger, entry_id, origin, county, year, project, stage, amount_fen, ts)
                SELECT \(row).ledger, \(row).entry_id, \(row).origin, \(text(fields, "county")), \(year(fields)),
                    \(text(fields, "project")), \(text(fields, "stage")), json_extract(\(fields), '$.amount_fen'), \(row).ts
                \(from) WHERE \(counted(fields));
                """
        }
    }

}
