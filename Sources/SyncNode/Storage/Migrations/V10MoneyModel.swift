import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Migration `v10-money-model`.
    static func migrateV10MoneyModel(_ db: Database) throws {
        // The money model (`MoneyModel`): an entry counts against its budget year
        // (`budget_year`, else `year`, else its date's year), and no counted amount is left
        // out of every total: an entry of no county or no year is kept under '' and 0, which
        // the funds report shows as rows of their own. Project totals are kept per county and
        // payment stage too (the review's cross-checks: money booked to another county than
        // its project's, a payment stage the project has not reached). A sum beyond 64 bits
        // becomes REAL in SQLite; the reader then sums that group's rows exactly in Swift.
        try db.execute(
            sql: """
                DROP TRIGGER ledger_money_insert;
                DROP TRIGGER ledger_money_update;
                DROP TRIGGER ledger_money_total_insert;
                DROP TRIGGER ledger_money_total_delete;
                DROP TABLE ledger_money_total;
                DROP TABLE ledger_project_total;
                DELETE FROM ledger_money;
                ALTER TABLE ledger_money ADD COLUMN stage TEXT;
                ALTER TABLE ledger_money ADD COLUMN ts BLOB;
                -- A county-year's latest entry (a target: the latest setting wins) by one seek.
                CREATE INDEX ledger_money_latest ON ledger_money (ledger, county, year, ts);
                DROP INDEX ledger_money_project;
                CREATE INDEX ledger_money_project ON ledger_money (ledger, project, county, stage, amount_fen) WHERE project IS NOT NULL;

                CREATE TABLE ledger_money_total (
                    ledger TEXT NOT NULL, county TEXT NOT NULL, year INTEGER NOT NULL, total NOT NULL,
                    PRIMARY KEY (ledger, county, year)
                ) WITHOUT ROWID;
                CREATE TABLE ledger_project_total (
                    ledger TEXT NOT NULL, project TEXT NOT NULL, county TEXT NOT NULL, stage TEXT NOT NULL, total NOT NULL,
                    PRIMARY KEY (ledger, project, county, stage)
                ) WITHOUT ROWID;
                CREATE TRIGGER ledger_money_total_insert AFTER INSERT ON ledger_money BEGIN
                    INSERT INTO ledger_money_total VALUES (NEW.ledger, coalesce(NEW.county, ''), coalesce(NEW.year, 0), NEW.amount_fen)
                        ON CONFLICT DO UPDATE SET total = total + excluded.total;
                    INSERT INTO ledger_project_total
                        SELECT NEW.ledger, NEW.project, coalesce(NEW.county, ''), coalesce(NEW.stage, ''), NEW.amount_fen WHERE NEW.project IS NOT NULL
                        ON CONFLICT DO UPDATE SET total = total + excluded.total;
                END;
                CREATE TRIGGER ledger_money_total_delete AFTER DELETE ON ledger_money BEGIN
                    UPDATE ledger_money_total SET total = total - OLD.amount_fen
                        WHERE ledger = OLD.ledger AND county = coalesce(OLD.county, '') AND year = coalesce(OLD.year, 0);
                    UPDATE ledger_project_total SET total = total - OLD.amount_fen
                        WHERE ledger = OLD.ledger AND project = OLD.project AND county = coalesce(OLD.county, '') AND stage = coalesce(OLD.stage, '');
                END;
                CREATE TRIGGER ledger_money_insert AFTER INSERT ON ledger_entry BEGIN
                    DELETE FROM ledger_money WHERE ledger = NEW.ledger AND entry_id = NEW.entry_id AND origin = NEW.origin;
                    \(MoneySQL.insert("NEW"))
                END;
                CREATE TRIGGER ledger_money_update AFTER UPDATE ON ledger_entry BEGIN
                    DELETE FROM ledger_money WHERE ledger = OLD.ledger AND entry_id = OLD.entry_id AND origin = OLD.origin;
                    \(MoneySQL.insert("NEW"))
                END;
                """)
        try db.execute(sql: MoneySQL.insert("e", from: "FROM ledger_entry AS e"))
    }
}
