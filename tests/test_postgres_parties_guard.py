"""The guard blocks of the PostgreSQL store's kept parties (``guard_parties``,
``guard_agent``), a class since they were generator context managers: against those (kept
verbatim here), the guard a block's commit takes, and none left once the block is left
(normally or by an error, the guard taken or not). No server needed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

parties = pytest.importorskip("helpkit.stores.postgres.parties")

from helpkit.people import Agent, Contact  # noqa: E402
from helpkit.stores.sqlite.encoding import _dumps, _encode_agent, _encode_contact  # noqa: E402

_AT = datetime(2026, 1, 1, tzinfo=UTC)


class _Store(parties.KeptPartiesMixin):  # type: ignore[name-defined,misc]
    cache_size = 8

    def __init__(self) -> None:
        self._init_parties()


class _Before(_Store):
    """The guard blocks as they were (helpkit 2829d8a), verbatim."""

    @contextmanager
    def guard_agent(self, agent: Agent) -> Iterator[None]:
        """The first commit of this thread in the block writes only if ``agent`` is stored as
        kept (ConflictError, nothing written, otherwise)."""
        self._guards.guard = (agent.id, self._stored_text(agent), None, None)
        try:
            yield
        finally:
            self._guards.guard = None

    @contextmanager
    def guard_parties(self, agent: Agent, contact: Contact) -> Iterator[None]:
        """The first commit of this thread in the block writes only if ``agent`` and
        ``contact`` are stored as kept (ConflictError, nothing written, otherwise)."""
        agent_text = self._stored_text(agent)
        with self._parties_lock:
            kept_contact = self._kept_contacts.get(contact.id)
        contact_text = (
            kept_contact[1]
            if kept_contact is not None and kept_contact[0] is contact
            else _dumps(_encode_contact(contact))
        )
        self._guards.guard = (agent.id, agent_text, contact.id, contact_text)
        try:
            yield
        finally:
            self._guards.guard = None


class _BlockError(Exception):
    pass


def _agent(name: str) -> Agent:
    return Agent(id="agent-1", name=name, email="ann@example.com")


def _contact(name: str) -> Contact:
    return Contact(
        id="contact-1", name=name, emails=("bob@example.com",), created_at=_AT, updated_at=_AT
    )


def _run(
    store: _Store,
    agent: Agent,
    contact: Contact | None,
    take: bool,
    fail: bool,
) -> tuple[object, object, object]:
    """The guard taken in the block (None: not taken), the error the block raised, and the
    guard a commit after the block takes."""
    block: AbstractContextManager[None] = (
        store.guard_agent(agent) if contact is None else store.guard_parties(agent, contact)
    )
    taken = raised = None
    try:
        with block:
            if take:
                taken = store._take_guard()
            if fail:
                raise _BlockError
    except _BlockError as exc:
        raised = type(exc)
    return taken, raised, store._take_guard()


@settings(max_examples=100, deadline=None)
@given(
    agent_kept=st.sampled_from(["same", "equal", "other", "none"]),
    contact_kept=st.sampled_from(["same", "equal", "other", "none", "no contact"]),
    take=st.booleans(),
    fail=st.booleans(),
    again=st.booleans(),
)
def test_guard_blocks_are_what_they_were(
    agent_kept: str, contact_kept: str, take: bool, fail: bool, again: bool
) -> None:
    """Property: the same guard in the block, the same error out of it, and no guard after
    it, for agents and contacts kept as the very value, an equal one, another one or none."""
    agent, contact = _agent("Ann"), _contact("Bob")
    results = []
    for store in (_Store(), _Before()):
        if agent_kept != "none":
            kept = {"same": agent, "equal": _agent("Ann"), "other": _agent("Anna")}[agent_kept]
            store._keep_agent(kept, _dumps(_encode_agent(kept)) + ("" if kept == agent else "x"))
        if contact_kept not in ("none", "no contact"):
            kept_contact = {"same": contact, "equal": _contact("Bob"), "other": _contact("B")}[
                contact_kept
            ]
            store._keep_contact(kept_contact, "stored " + kept_contact.name)
        guarded = None if contact_kept == "no contact" else contact
        runs = [_run(store, agent, guarded, take, fail)]
        if again:  # a second block on the same store (its guard of this thread cleared)
            runs.append(_run(store, agent, guarded, not take, fail))
        results.append(runs)
    new, before = results
    assert new == before
    for took, (taken, raised, after) in zip([take, not take], new, strict=False):
        assert after is None
        assert (taken is not None) == took
        assert raised is (_BlockError if fail else None)
