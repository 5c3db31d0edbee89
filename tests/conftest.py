"""Fixtures shared by several test modules: the PostgreSQL database (tests/postgres_fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postgres_fixtures import postgres_database_fixture


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The URL of a PostgreSQL database created for this run and dropped after it (the tests
    skip without a server, and fail without one under ``CI=true``)."""
    yield from postgres_database_fixture()
