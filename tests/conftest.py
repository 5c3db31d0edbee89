"""Fixtures shared by several test modules: the PostgreSQL database (tests/postgres_fixtures.py)
and the IMAP server (tests/imap_fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imap_fixtures import ImapServer, imap_server_fixture
from open_desks import shut_all
from postgres_fixtures import postgres_database_fixture


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The URL of a PostgreSQL database created for this run and dropped after it (the tests
    skip without a server, and fail without one under ``CI=true``)."""
    yield from postgres_database_fixture()


@pytest.fixture(scope="session")
def imap_server() -> Iterator[ImapServer]:
    """A private Dovecot IMAP server on 127.0.0.1 for this run (tests/imap_fixtures.py; the
    tests skip without Dovecot, and fail without it under ``CI=true``)."""
    yield from imap_server_fixture()


@pytest.fixture(autouse=True)
def _shut_opened_desks() -> Iterator[None]:
    """Shut down the desks the test handed to ``open_desks.opened``."""
    yield
    shut_all()
