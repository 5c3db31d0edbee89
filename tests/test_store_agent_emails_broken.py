"""The agents-by-address case can fail: run against memory stores broken on purpose (active
agents only, no order by id, addresses compared ignoring case, a stale copy kept from the
first call, a bare string read as its characters, the first agent of an address only), each
must fail where the real store passes."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from helpkit.errors import HelpkitError
from helpkit.people import Agent
from helpkit.stores.memory import MemoryStore
from helpkit.testing.conformance import StoreConformance

_CASE = "test_agents_found_by_email"


class _ActiveOnlyStore(MemoryStore):
    """Leaves out inactive agents (intake's filter, done in the wrong place)."""

    def agents_by_email(self, addresses: Collection[str]) -> list[Agent]:
        return [a for a in super().agents_by_email(addresses) if a.active]


class _UnorderedStore(MemoryStore):
    """Returns the agents in the order they were saved, not by id."""

    def agents_by_email(self, addresses: Collection[str]) -> list[Agent]:
        wanted = set(addresses) if not isinstance(addresses, str) else set()
        return [a for a in self._agents.values() if a.email in wanted]


class _CaselessStore(MemoryStore):
    """Compares addresses ignoring case (an address is compared as stored)."""

    def agents_by_email(self, addresses: Collection[str]) -> list[Agent]:
        wanted = {a.lower() for a in addresses if isinstance(a, str)}
        return [a for a in self.list_agents() if a.email is not None and a.email in wanted]


class _StaleStore(MemoryStore):
    """Keeps the staff of its first call (a cache nothing invalidates)."""

    _staff: list[Agent] | None = None

    def agents_by_email(self, addresses: Collection[str]) -> list[Agent]:
        if self._staff is None or not self._staff:
            self._staff = self.list_agents()
        wanted = set(super().agents_by_email(addresses))
        ids = {a.id for a in wanted}
        return [a for a in self._staff if a.id in ids]


class _CharactersStore(MemoryStore):
    """Reads a bare string as the collection of its characters, refusing nothing."""

    def agents_by_email(self, addresses: Collection[str]) -> list[Agent]:
        wanted = {a for a in addresses if isinstance(a, str)}
        return [a for a in self.list_agents() if a.email in wanted]


class _FirstOnlyStore(MemoryStore):
    """Finds one agent per address (a unique index the store does not have)."""

    def agents_by_email(self, addresses: Collection[str]) -> list[Agent]:
        found: dict[str, Agent] = {}
        for agent in super().agents_by_email(addresses):
            found.setdefault(agent.email or "", agent)
        return sorted(found.values(), key=lambda a: a.id)


@pytest.mark.parametrize(
    "broken",
    [
        _ActiveOnlyStore,
        _UnorderedStore,
        _CaselessStore,
        _StaleStore,
        _CharactersStore,
        _FirstOnlyStore,
    ],
)
def test_the_agents_by_email_case_catches_a_broken_store(broken: type[MemoryStore]) -> None:
    getattr(StoreConformance(), _CASE)(MemoryStore())  # the real store passes
    with pytest.raises((AssertionError, pytest.fail.Exception, HelpkitError)):
        getattr(StoreConformance(), _CASE)(broken())
