import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Migration `v9-report-index`.
    static func migrateV09ReportIndex(_ db: Database) throws {
        // HQ's dashboard shows every report at once over up to millions of entries; what
        // the reports would otherwise recompute per view is kept here, in the same SQLite
        // transaction as the writes it follows (docs/PERFORMANCE.md, P10):
        // - money totals per ledger, county and year, and per ledger and project, kept from
        //   `ledger_money` (a row's amount is added when it is inserted, taken off when it is
        //   deleted; the insert trigger of `ledger_money` now deletes before it inserts, so
        //   no row is ever replaced unseen);
        // - the reversals of a ledger, through a partial index;
        // - the entries and records the plan's review must look at (`ReviewIndex`: its
        //   triggers depend on the plan and are made by the store, not here).
        let (county, year, project, amount, counted) = MoneyProjection.columns
        let byCountyYear = "typeof(NEW.county) = 'text' AND NEW.year IS NOT NULL"
        let byProject = "typeof(NEW.project) = 'text'"
        try db.execute(
            sql: """
                DROP TRIGGER ledger_money_insert;
                CREATE TRIGGER ledger_money_insert AFTER INSERT ON ledger_entry BEGIN
                    DELETE FROM ledger_money WHERE ledger = NEW.ledger AND entry_id = NEW.entry_id AND origin = NEW.origin;
                    INSERT INTO ledger_money (ledger, entry_id, origin, county, year, project, amount_fen)
                    SELECT NEW.ledger, NEW.entry_id, NEW.origin, \(county), \(year), \(project), \(amount) WHERE \(counted);
                END;

                CREATE TABLE ledger_money_total (
                    ledger TEXT NOT NULL, county TEXT NOT NULL, year INTEGER NOT NULL, total INTEGER NOT NULL,
                    PRIMARY KEY (ledger, county, year)
                ) WITHOUT ROWID;
                CREATE TABLE ledger_project_total (
                    ledger TEXT NOT NULL, project TEXT NOT NULL, total INTEGER NOT NULL, PRIMARY KEY (ledger, project)
                ) WITHOUT ROWID;
                INSERT INTO ledger_money_total SELECT ledger, county, year, sum(amount_fen) FROM ledger_money AS NEW
                    WHERE \(byCountyYear) GROUP BY ledger, county, year;
                INSERT INTO ledger_project_total SELECT ledger, project, sum(amount_fen) FROM ledger_money AS NEW
                    WHERE \(byProject) GROUP BY ledger, project;
                CREATE TRIGGER ledger_money_total_insert AFTER INSERT ON ledger_money BEGIN
                    INSERT INTO ledger_money_total SELECT NEW.ledger, NEW.county, NEW.year, NEW.amount_fen WHERE \(byCountyYear)
                        ON CONFLICT DO UPDATE SET total = total + excluded.total;
                    INSERT INTO ledger_project_total SELECT NEW.ledger, NEW.project, NEW.amount_fen WHERE \(byProject)
                        ON CONFLICT DO UPDATE SET total = total + excluded.total;
                END;
                CREATE TRIGGER ledger_money_total_delete AFTER DELETE ON ledger_money BEGIN
                    UPDATE ledger_money_total SET total = total - OLD.amount_fen
                        WHERE ledger = OLD.ledger AND county = OLD.county AND year = OLD.year AND typeof(OLD.county) = 'text';
                    UPDATE ledger_project_total SET total = total - OLD.amount_fen
                        WHERE ledger = OLD.ledger AND project = OLD.project AND typeof(OLD.project) = 'text';
                END;

                CREATE INDEX ledger_entry_reversal ON ledger_entry (ledger) WHERE json_extract(fields, '$._reverses') IS NOT NULL;

                -- Entries the plan's SQL conditions do not clear, and records changed since the
                -- review last checked them, with the problems found in those it checked.
                CREATE TABLE ledger_unfit (
                    ledger TEXT NOT NULL, entry_id TEXT NOT NULL, origin BLOB NOT NULL, PRIMARY KEY (ledger, entry_id, origin)
                ) WITHOUT ROWID;
                CREATE TRIGGER ledger_unfit_delete AFTER DELETE ON ledger_entry BEGIN
                    DELETE FROM ledger_unfit WHERE ledger = OLD.ledger AND entry_id = OLD.entry_id AND origin = OLD.origin;
                END;
                CREATE TABLE record_dirty (collection INTEGER NOT NULL, record_id TEXT NOT NULL, PRIMARY KEY (collection, record_id)) WITHOUT ROWID;
                CREATE TABLE record_problem (
                    kind INTEGER NOT NULL, collection INTEGER NOT NULL, record_id TEXT NOT NULL, problems TEXT NOT NULL,
                    PRIMARY KEY (kind, record_id, collection)
                ) WITHOUT ROWID;
                CREATE INDEX record_problem_record ON record_problem (collection, record_id);
                """)
    }
}
