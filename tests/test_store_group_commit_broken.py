"""The group-commit cases can fail: run against SQLite stores broken on purpose (a group that
is no transaction, writes without their savepoints, a rollback that keeps the states cached
in the block, an inner block that commits the outer one's writes, a group that stores
nothing), each must fail where the real store passes."""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpkit.errors import HelpkitError
from helpkit.ports import Store
from helpkit.stores.sqlite import SqliteStore
from helpkit.stores.sqlite import store as sqlite_store
from helpkit.testing.conformance import StoreConformance

_CASES = (
    "test_a_group_stores_its_writes_together",
    "test_a_group_that_raises_stores_nothing",
    "test_a_group_rolled_back_leaves_no_state_behind",
    "test_a_write_that_fails_in_a_group_leaves_the_others",
    "test_a_group_entered_again_joins_the_outer_one",
    "test_other_threads_see_a_group_only_once_it_ends",
)


class _NoTransactionStore(SqliteStore):
    """Declares group commits, but each write in a block commits on its own."""

    @contextmanager
    def group_commit(self) -> Iterator[None]:
        yield


class _NoSavepointStore(SqliteStore):
    """A write that fails in a block leaves what it wrote before failing."""

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            if conn is sqlite_store._held(self._file):
                yield conn
                return
        with super()._transaction() as conn:
            yield conn


class _KeepsCacheStore(SqliteStore):
    """A block rolled back keeps the ticket states it cached."""

    def _forget_states(self) -> None:
        pass


class _InnerCommitsStore(SqliteStore):
    """A block entered again commits the outer block's writes at its end."""

    @contextmanager
    def group_commit(self) -> Iterator[None]:
        conn = sqlite_store._held(self._file)
        if conn is None:
            with super().group_commit():
                yield
            return
        yield
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")


class _ForgetfulStore(SqliteStore):
    """A block that ends normally is rolled back."""

    @contextmanager
    def group_commit(self) -> Iterator[None]:
        class _UndoneError(Exception):
            pass

        try:
            with super().group_commit():
                yield
                raise _UndoneError
        except _UndoneError:
            pass


_BROKEN = [
    _NoTransactionStore,
    _NoSavepointStore,
    _KeepsCacheStore,
    _InnerCommitsStore,
    _ForgetfulStore,
]


def _run(case: str, store: SqliteStore) -> None:
    method = getattr(StoreConformance(), case)
    if "reopen_elsewhere" in method.__code__.co_varnames:
        method(store, lambda s: functools.partial(SqliteStore, s.path))
    else:
        method(store)


@pytest.mark.parametrize("broken", _BROKEN)
def test_the_group_commit_cases_catch_a_broken_store(
    broken: type[SqliteStore], tmp_path: Path
) -> None:
    counter = itertools.count()

    def fresh(kind: Callable[[Path], Store]) -> SqliteStore:
        store = kind(tmp_path / f"desk{next(counter)}.db")
        assert isinstance(store, SqliteStore)
        return store

    for case in _CASES:
        store = fresh(SqliteStore)
        try:
            _run(case, store)  # the real store passes
        finally:
            store.close()
    failed = 0
    for case in _CASES:
        store = fresh(broken)
        try:
            _run(case, store)
        except (AssertionError, pytest.fail.Exception, HelpkitError, sqlite3.Error):
            failed += 1
        finally:
            store.close()
    assert failed, f"{broken.__name__} passed every group-commit case"
