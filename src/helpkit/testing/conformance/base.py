"""The base of the conformance cases: class attributes, fixtures, protocol cases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, settings

from helpkit.ports import (
    AgentEmails,
    Capability,
    ChangeFeed,
    ClaimedEnqueue,
    DueClaims,
    DueTimerClaims,
    FeedWakeup,
    GroupCommits,
    Inbox,
    KeptParties,
    KnowledgeBase,
    Outbox,
    PartyReads,
    Purge,
    RecentTickets,
    Redaction,
    RequesterCounts,
    SettledCommits,
    Store,
    TicketReads,
    TimerRows,
    TimerStates,
    missing_members,
)
from helpkit.queries import Page, TicketQuery
from helpkit.testing.conformance.helpers import ReopenStore, StoreFactory


class SuiteBase:
    """What every group of conformance cases builds on: the class attributes and fixtures
    that :class:`~helpkit.testing.conformance.StoreConformance` documents, and the protocol
    cases."""

    thread_safe: ClassVar[bool] = True
    stateful_settings: ClassVar[settings] = settings(
        max_examples=40,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )

    # ------------------------------------------------------------ fixtures

    @pytest.fixture
    def make_store(self) -> StoreFactory:
        """Override: return a zero-argument callable creating a fresh, empty store."""
        pytest.fail(
            f"{type(self).__name__} must define a `make_store` fixture returning a "
            "zero-argument callable that creates a fresh, empty store"
        )

    @pytest.fixture
    def reopen_store(self) -> ReopenStore:
        """Override for persistent stores: a callable reopening a closed store's data."""

        def reopen(store: Store) -> Store:
            pytest.fail(
                f"{type(self).__name__} declares Capability.PERSISTENT but defines no "
                "`reopen_store` fixture returning a callable (closed store) -> reopened store"
            )

        return reopen

    @pytest.fixture
    def store(self, make_store: StoreFactory) -> Iterator[Store]:
        """A fresh store, closed after the test."""
        made = make_store()
        try:
            yield made
        finally:
            made.close()

    # ------------------------------------------------------------ protocol

    def test_satisfies_the_store_protocol(self, store: Store) -> None:
        assert missing_members(store, Store) == ()
        assert isinstance(store.capabilities, frozenset)
        known = {
            Capability.PERSISTENT,
            Capability.MULTIPROCESS,
            Capability.CHANGE_FEED,
            Capability.OUTBOX,
            Capability.CLAIMED_ENQUEUE,
            Capability.TIMER_STATE,
            Capability.TIMER_ROWS,
            Capability.DUE_CLAIMS,
            Capability.DUE_TIMER_CLAIMS,
            Capability.FEED_WAKEUP,
            Capability.INBOX,
            Capability.ROUTING,
            Capability.RECENT_TICKETS,
            Capability.REDACTION,
            Capability.PURGE,
            Capability.KNOWLEDGE,
            Capability.NEW_CONTACTS,
            Capability.PARTY_READS,
            Capability.TICKET_READS,
            Capability.SETTLED_COMMIT,
            Capability.KEPT_PARTIES,
            Capability.AGENT_EMAILS,
            Capability.REQUESTER_COUNTS,
            Capability.GROUP_COMMIT,
        }
        assert store.capabilities <= known, f"unknown capabilities {store.capabilities - known}"
        if Capability.CHANGE_FEED in store.capabilities:
            assert missing_members(store, ChangeFeed) == ()
        if Capability.OUTBOX in store.capabilities:
            assert missing_members(store, Outbox) == ()
        if Capability.CLAIMED_ENQUEUE in store.capabilities:
            assert Capability.OUTBOX in store.capabilities
            assert missing_members(store, ClaimedEnqueue) == ()
        if Capability.TIMER_STATE in store.capabilities:
            assert missing_members(store, TimerStates) == ()
        if Capability.TIMER_ROWS in store.capabilities:
            assert Capability.TIMER_STATE in store.capabilities
            assert missing_members(store, TimerRows) == ()
        if Capability.DUE_CLAIMS in store.capabilities:
            assert missing_members(store, DueClaims) == ()
        if Capability.DUE_TIMER_CLAIMS in store.capabilities:
            assert {Capability.DUE_CLAIMS, Capability.TIMER_ROWS} <= store.capabilities
            assert missing_members(store, DueTimerClaims) == ()
        if Capability.FEED_WAKEUP in store.capabilities:
            assert missing_members(store, FeedWakeup) == ()
        if Capability.GROUP_COMMIT in store.capabilities:
            assert missing_members(store, GroupCommits) == ()
        if Capability.KNOWLEDGE in store.capabilities:
            assert missing_members(store, KnowledgeBase) == ()
            assert Capability.CHANGE_FEED in store.capabilities
        if Capability.INBOX in store.capabilities:
            assert missing_members(store, Inbox) == ()
        if Capability.RECENT_TICKETS in store.capabilities:
            assert missing_members(store, RecentTickets) == ()
        if Capability.REDACTION in store.capabilities:
            assert missing_members(store, Redaction) == ()
        if Capability.PURGE in store.capabilities:
            assert missing_members(store, Purge) == ()
        if Capability.PARTY_READS in store.capabilities:
            assert missing_members(store, PartyReads) == ()
        if Capability.TICKET_READS in store.capabilities:
            assert missing_members(store, TicketReads) == ()
        if Capability.SETTLED_COMMIT in store.capabilities:
            assert Capability.OUTBOX in store.capabilities
            assert missing_members(store, SettledCommits) == ()
        if Capability.KEPT_PARTIES in store.capabilities:
            assert missing_members(store, KeptParties) == ()
        if Capability.AGENT_EMAILS in store.capabilities:
            assert missing_members(store, AgentEmails) == ()
        if Capability.REQUESTER_COUNTS in store.capabilities:
            assert missing_members(store, RequesterCounts) == ()

    def test_a_new_store_is_empty(self, store: Store) -> None:
        assert store.query(TicketQuery()) == Page((), None)
        assert store.find_contacts("") == []
        assert store.find_organizations("") == []
        assert store.list_agents() == []
        assert store.list_groups() == []
