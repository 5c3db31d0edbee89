"""The SQLite outbox: a claim reads the due deliveries through their index, and claims and
settlements write their fields into the stored text (issue #11)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from helpkit._records import replace
from helpkit.ports import DeliveryState
from helpkit.stores.sqlite import SqliteStore, feed
from helpkit.stores.sqlite.feed import CLAIM_DUE
from helpkit.testing.conformance.helpers import BASE_TIME, _open, change_of
from helpkit.testing.conformance.outbox import delivery


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


@pytest.mark.parametrize("with_json", [True, False], ids=["json_set", "encoded"])
def test_claims_and_settlements_store_what_the_codec_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_json: bool
) -> None:
    # Claims and settlements write their fields into the stored text with SQLite's json_set
    # (or, on an SQLite without JSON functions, encode the delivery again): either way the
    # stored delivery is the one given, text outside ASCII and instants without microseconds
    # included, and its text is what the codec reads back.
    monkeypatch.setattr(feed, "_HAS_JSON", with_json)
    store = SqliteStore(tmp_path / "desk.db")
    try:
        store.commit([change_of(_open("t1", 1, BASE_TIME))])
        first, second = delivery("d1"), delivery("d2")
        store.enqueue([first, second], cursor="outbox", position=1, expected=0, checked=True)
        now = BASE_TIME + timedelta(seconds=1)
        held = store.claim(owner="relay-é", now=now, until=now + timedelta(minutes=5), limit=5)
        assert [d.claims for d in held] == [1, 1]
        assert [store.delivery(d.id) for d in held] == held
        sent = replace(held[0], state=DeliveryState.SENT, attempts=1, external_id="<é@x>")
        failed = replace(
            held[1],
            attempts=1,
            last_error="SMTP 451: boîte pleine",
            next_attempt_at=now + timedelta(seconds=30, microseconds=5),
            updated_at=now,
        )
        assert store.settle([sent, failed], owner="relay-é", checked=True) == 2
        assert store.delivery("d1") == replace(sent, claimed_by=None, claimed_until=None)
        assert store.delivery("d2") == replace(failed, claimed_by=None, claimed_until=None)
        with store._connection() as conn:
            rows = conn.execute("SELECT id, claimed_by, claimed_until_us FROM outbox").fetchall()
        assert rows == [("d1", None, None), ("d2", None, None)]
    finally:
        store.close()
