"""The SQLite outbox's claim reads the due deliveries through their index (issue #11)."""

from __future__ import annotations

from pathlib import Path

from helpkit.stores.sqlite import SqliteStore
from helpkit.stores.sqlite.feed import CLAIM_DUE


def test_a_claim_reads_the_due_index_in_order_without_sorting(tmp_path: Path) -> None:
    # Without the index named, SQLite searched outbox_state (state = ?) and sorted every
    # pending delivery at each claim: a claim cost grew with the backlog.
    store = SqliteStore(tmp_path / "desk.db")
    try:
        with store._connection() as conn:
            rows = conn.execute("EXPLAIN QUERY PLAN " + CLAIM_DUE, (0, 0, 200)).fetchall()
    finally:
        store.close()
    plan = "\n".join(str(row[-1]) for row in rows)
    assert "USING INDEX outbox_due" in plan
    assert "TEMP B-TREE" not in plan
