import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Migration `v6-ledger-money`.
    static func migrateV06LedgerMoney(_ db: Database) throws {
        // HQ's merged view sums money per county and year, and per project, over up to
        // millions of entries. `ledger_money` is a typed projection of every entry that
        // carries `amount_fen` and is not a reversal: kept by triggers in the same SQLite
        // transaction as every write of `ledger_entry` (apply, duplicates, rebuilds), so a
        // report reads narrow indexed rows, never the entries' JSON (`Store.ledgerTotals`).
        let (county, year, project, amount, counted) = MoneyProjection.columns
        let insert = """
            INSERT OR REPLACE INTO ledger_money (ledger, entry_id, origin, county, year, project, amount_fen)
            SELECT NEW.ledger, NEW.entry_id, NEW.origin, \(county), \(year), \(project), \(amount) WHERE \(counted);
            """
        let delete = "DELETE FROM ledger_money WHERE ledger = OLD.ledger AND entry_id = OLD.entry_id AND origin = OLD.origin;"
        try db.execute(
            sql: """
                CREATE TABLE ledger_money (
                    ledger TEXT NOT NULL, entry_id TEXT NOT NULL, origin BLOB NOT NULL,
                    county TEXT, year INTEGER, project TEXT, amount_fen INTEGER NOT NULL,
                    PRIMARY KEY (ledger, entry_id, origin)
                ) WITHOUT ROWID;
                CREATE INDEX ledger_money_county_year ON ledger_money (ledger, county, year, amount_fen);
                CREATE INDEX ledger_money_project ON ledger_money (ledger, project, amount_fen) WHERE project IS NOT NULL;
                CREATE TRIGGER ledger_money_insert AFTER INSERT ON ledger_entry BEGIN \(insert) END;
                -- Who made each transaction at its origin (`Change.author`), by its clock.
                CREATE TABLE tx_author (node BLOB NOT NULL, clock INTEGER NOT NULL, name TEXT NOT NULL, PRIMARY KEY (node, clock)) WITHOUT ROWID;
                CREATE TRIGGER ledger_money_update AFTER UPDATE ON ledger_entry BEGIN \(delete) \(insert) END;
                CREATE TRIGGER ledger_money_delete AFTER DELETE ON ledger_entry BEGIN \(delete) END;
                """)
        try db.execute(
            sql: """
                INSERT INTO ledger_money (ledger, entry_id, origin, county, year, project, amount_fen)
                SELECT ledger, entry_id, origin, \(county), \(year), \(project), \(amount) FROM ledger_entry AS NEW WHERE \(counted)
                """)
    }
}
