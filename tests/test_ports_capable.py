"""``helpkit.ports.capable``: how helpkit's modules take up a store's optional capabilities.

A capability is taken only when the store declares it (and every other one asked for) and has
every member of its protocol, looked up as attribute access does (so a proxy forwarding
through ``__getattr__`` counts). Each module that takes one (the pipeline, intake, routing,
the sweep, the directory) relies on this one check.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from helpkit.ports import Capability, DueClaims, SettledCommits, TimerStates, capable
from helpkit.stores.memory import MemoryStore


class _TimerStore:
    """Declares what it is given; has TimerStates' members."""

    def __init__(self, capabilities: frozenset[str]) -> None:
        self.capabilities = capabilities

    def commit_planned(self, changes: Any, states: Any) -> list[Any]:
        return []

    def query_states(self, query: Any) -> list[Any]:
        return []


class _Proxy:
    """Forwards every attribute to another store (as a host's wrapper might)."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


_CAPABILITIES = st.frozensets(
    st.sampled_from([Capability.TIMER_STATE, Capability.OUTBOX, Capability.DUE_CLAIMS, "other"])
)


@given(declared=_CAPABILITIES)
def test_a_capability_is_taken_only_when_declared_and_implemented(
    declared: frozenset[str],
) -> None:
    """Property: the store comes back as the protocol exactly when it declares the
    capability; a declared capability whose members are missing is never taken."""
    store = _TimerStore(declared)
    taken = capable(store, Capability.TIMER_STATE, TimerStates)
    assert (taken is not None) == (Capability.TIMER_STATE in declared)
    assert taken is None or id(taken) == id(store)  # the store itself, not a wrapper
    # Declared or not, DueClaims' members are missing: never taken.
    assert capable(store, Capability.DUE_CLAIMS, DueClaims) is None


@given(declared=_CAPABILITIES)
def test_every_other_capability_asked_for_must_be_declared_too(declared: frozenset[str]) -> None:
    store = _TimerStore(declared)
    taken = capable(store, Capability.TIMER_STATE, TimerStates, Capability.OUTBOX)
    assert (taken is not None) == ({Capability.TIMER_STATE, Capability.OUTBOX} <= declared)


def test_a_store_without_capabilities_and_a_forwarding_proxy() -> None:
    assert capable(object(), Capability.TIMER_STATE, TimerStates) is None
    store = MemoryStore()
    assert Capability.OUTBOX in store.capabilities
    proxy = _Proxy(store)
    # The proxy has the memory store's capabilities and members through __getattr__.
    taken = capable(proxy, Capability.SETTLED_COMMIT, SettledCommits, Capability.OUTBOX)
    assert id(taken) == id(proxy)
    # Not declared by the memory store (it has no timer states), though a member is there.
    assert capable(proxy, Capability.TIMER_STATE, TimerStates) is None
