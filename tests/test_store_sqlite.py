"""The SQLite store: conformance, migrations, foreign files, query plans and URLs."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from helpkit.ports import Store
from helpkit.stores.sqlite import SqliteStore
from helpkit.testing.conformance import ReopenStore, StoreConformance, StoreFactory


class TestSqliteStore(StoreConformance):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> StoreFactory:
        counter = itertools.count()
        return lambda: SqliteStore(tmp_path / f"desk{next(counter)}.db")

    @pytest.fixture
    def reopen_store(self) -> ReopenStore:
        def reopen(store: Store) -> Store:
            assert isinstance(store, SqliteStore)
            return SqliteStore(store.path)

        return reopen
