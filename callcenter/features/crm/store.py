"""The local customer table (number -> name, VIP / priority, language, account manager, tags): the
lookup's source without a CRM, managed through the API. Runs on the database thread only."""

from __future__ import annotations

import json
import sqlite3

from callcenter.features.crm.model import Customer
from callcenter.persistence import Migration, Store

__all__ = ["CustomerStore"]


class CustomerStore(Store):
    COMPONENT = "customers"
    MIGRATIONS = [
        Migration(1, """
CREATE TABLE IF NOT EXISTS customers (
    number     TEXT PRIMARY KEY,      -- E.164
    record     TEXT NOT NULL,         -- the Customer, as JSON
    updated_at REAL NOT NULL
);
"""),
    ]

    def get(self, number: str) -> Customer | None:
        row = self.db.execute("SELECT record FROM customers WHERE number = ?", (number,)).fetchone()
        return Customer.model_validate({**json.loads(row[0]), "source": "table"}) if row else None

    def put(self, number: str, rec: Customer, now: float) -> bool:
        """Create or replace; True if it was new."""
        new = self.get(number) is None
        text = json.dumps({k: v for k, v in rec.public().items() if k != "source"})
        self.db.execute("INSERT INTO customers(number, record, updated_at) VALUES (?,?,?) ON CONFLICT(number)"
                        " DO UPDATE SET record=excluded.record, updated_at=excluded.updated_at", (number, text, now))
        return new

    def delete(self, number: str) -> bool:
        return self.db.execute("DELETE FROM customers WHERE number = ?", (number,)).rowcount > 0

    def count(self) -> int:
        row: sqlite3.Row | tuple[int] = self.db.execute("SELECT count(*) FROM customers").fetchone()
        return int(row[0])
