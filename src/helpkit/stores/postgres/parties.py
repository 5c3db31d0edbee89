"""Agents and contacts kept in memory, and the guard a commit checks them by
(:attr:`~helpkit.ports.Capability.KEPT_PARTIES`, :class:`helpkit.ports.KeptParties`).

Opening a ticket decides on the acting agent and the requester. Reading them costs a round
trip to the server before the commit's own; instead the store keeps the agents and contacts it
last saved or read (their decoded values beside the exact text stored), and the commit of a
decision taken on kept ones checks, in the same statement, that both rows still hold that
text: ``commit_change``'s call runs only for the row of a ``MATERIALIZED`` CTE that read them
(:data:`GUARDED_COMMIT`), so a stale agent or contact makes the statement return no row and
write nothing (its transaction is the statement's own), and the store raises ConflictError.
A command on an existing ticket (a reply, a note...) decides on the kept acting agent alone:
its guard names no contact (:meth:`KeptPartiesMixin.guard_agent`), and the same statement
checks the agent only (a contact id and text of NULL match the NULL the CTE reads for them).
A commit that takes the batch path (new contacts, a receipt, routing states) sends the same
check as the first statement of its transaction and rolls back when it fails.

The text, not a version, is compared: agents have no version column, and equal text decodes
to an equal value, so a guard that holds means the decision was taken on what is stored. It is
read in the commit's snapshot, later than a read before the decision would be: a change saved
before the commit always refuses it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Final

from helpkit.errors import ConflictError
from helpkit.people import Agent, Contact
from helpkit.stores.postgres.commit import COMMIT_CHANGE
from helpkit.stores.sqlite.encoding import _dumps, _encode_agent, _encode_contact

__all__ = ["GUARDED_COMMIT", "PARTIES_STILL", "Guard", "KeptPartiesMixin", "parties_moved"]

Guard = tuple[str, str, str | None, str | None]
"""What a guarded commit checks: agent id, its stored text, contact id, its stored text (the
contact's both None when the decision took none)."""

_READ: Final = (
    "SELECT (SELECT data FROM agents WHERE id = %s) AS agent, "
    "(SELECT data FROM contacts WHERE id = %s) AS contact"
)
GUARDED_COMMIT: Final = (
    f"WITH kept AS MATERIALIZED ({_READ}) "
    + COMMIT_CHANGE
    + " FROM kept WHERE kept.agent = %s AND kept.contact IS NOT DISTINCT FROM %s"
)
""":data:`~helpkit.stores.postgres.commit.COMMIT_CHANGE` run only when the agent and the
contact are stored as kept; parameters: agent id, contact id, the call's, agent text, contact
text (contact id and text None: the agent only). No row: nothing was written."""
PARTIES_STILL: Final = (
    "SELECT coalesce(kept.agent = %s AND kept.contact IS NOT DISTINCT FROM %s, false) "
    f"FROM ({_READ}) AS kept"
)
"""Whether the agent and the contact are stored as kept (the batch path's check);
parameters: agent text, contact text, agent id, contact id."""


def parties_moved(guard: Guard) -> ConflictError:
    """The refusal of a commit whose guard found the agent or the contact changed."""
    if guard[2] is None:
        return ConflictError(
            f"agent {guard[0]!r} changed since this store object kept it: decide again on it "
            "read anew"
        )
    return ConflictError(
        f"agent {guard[0]!r} or contact {guard[2]!r} changed since this store object kept "
        "them: decide again on them read anew"
    )


class KeptPartiesMixin:
    """The kept agents and contacts of a :class:`~helpkit.stores.postgres.store.PostgresStore`
    (up to ``cache_size`` of each, least recently used dropped first)."""

    cache_size: int
    _parties_lock: threading.Lock
    _kept_agents: OrderedDict[str, tuple[Agent, str]]
    _kept_contacts: OrderedDict[str, tuple[Contact, str]]
    _guards: threading.local

    def _init_parties(self) -> None:
        self._parties_lock = threading.Lock()
        self._kept_agents = OrderedDict()
        self._kept_contacts = OrderedDict()
        self._guards = threading.local()

    def _keep_agent(self, agent: Agent, text: str) -> None:
        """Keep ``agent``, stored as ``text`` (just saved or read)."""
        self._keep(self._kept_agents, agent.id, (agent, text))

    def _keep_contact(self, contact: Contact, text: str) -> None:
        """Keep ``contact``, stored as ``text`` (just saved or read)."""
        self._keep(self._kept_contacts, contact.id, (contact, text))

    def _keep(self, kept: OrderedDict[str, Any], key: str, value: tuple[object, str]) -> None:
        if not self.cache_size:
            return
        with self._parties_lock:
            kept[key] = value
            kept.move_to_end(key)
            while len(kept) > self.cache_size:
                kept.popitem(last=False)

    def kept_parties(self, agent_id: str, contact_id: str) -> tuple[Agent, Contact] | None:
        """The agent and the contact this store object last saved or read, or None."""
        with self._parties_lock:
            agent = self._kept_agents.get(agent_id)
            contact = self._kept_contacts.get(contact_id)
            if agent is None or contact is None:
                return None
            self._kept_agents.move_to_end(agent_id)
            self._kept_contacts.move_to_end(contact_id)
        return agent[0], contact[0]

    def kept_agent(self, agent_id: str) -> Agent | None:
        """The agent this store object last saved or read, or None."""
        with self._parties_lock:
            agent = self._kept_agents.get(agent_id)
            if agent is None:
                return None
            self._kept_agents.move_to_end(agent_id)
        return agent[0]

    def guard_agent(self, agent: Agent) -> AbstractContextManager[None]:
        """The first commit of this thread in the block writes only if ``agent`` is stored as
        kept (ConflictError, nothing written, otherwise)."""
        return _Guarded(self, agent, None)

    def _stored_text(self, agent: Agent) -> str:
        """The text stored with the very value ``agent`` (see :meth:`_kept_text`)."""
        return self._kept_text(self._kept_agents, agent, _encode_agent)

    def _contact_text(self, contact: Contact) -> str:
        """The text stored with the very value ``contact`` (see :meth:`_kept_text`)."""
        return self._kept_text(self._kept_contacts, contact, _encode_contact)

    def _kept_text(
        self, kept: OrderedDict[str, Any], value: Agent | Contact, encode: Callable[[Any], Any]
    ) -> str:
        """The text stored with the very value ``value``, as ``kept`` holds it; a value kept
        no more (or replaced meanwhile) is checked by its own encoding, which a stored text
        equals only if it holds that value."""
        with self._parties_lock:
            found = kept.get(value.id)
        return found[1] if found is not None and found[0] is value else _dumps(encode(value))

    def guard_parties(self, agent: Agent, contact: Contact) -> AbstractContextManager[None]:
        """The first commit of this thread in the block writes only if ``agent`` and
        ``contact`` are stored as kept (ConflictError, nothing written, otherwise)."""
        return _Guarded(self, agent, contact)

    def _take_guard(self) -> Guard | None:
        """The guard of this thread's block, once (the block's first commit takes it)."""
        guard: Guard | None = getattr(self._guards, "guard", None)
        if guard is not None:
            self._guards.guard = None
        return guard


class _Guarded:
    """The block of :meth:`KeptPartiesMixin.guard_parties` (``contact`` None:
    :meth:`~KeptPartiesMixin.guard_agent`): entering it works out the guard (the texts the
    agent and the contact are stored as) and sets it for this thread; leaving it, however it
    is left, clears it. A class, not a generator's context manager: one object per block."""

    __slots__ = ("_agent", "_contact", "_store")

    def __init__(self, store: KeptPartiesMixin, agent: Agent, contact: Contact | None) -> None:
        self._store = store
        self._agent = agent
        self._contact = contact

    def __enter__(self) -> None:
        store, agent, contact = self._store, self._agent, self._contact
        agent_text = store._stored_text(agent)
        store._guards.guard = (
            (agent.id, agent_text, None, None)
            if contact is None
            else (agent.id, agent_text, contact.id, store._contact_text(contact))
        )

    def __exit__(self, *exc_info: object) -> None:
        self._store._guards.guard = None
