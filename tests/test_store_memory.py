"""The in-memory store: the conformance suite, its URL factory, and closing."""

from __future__ import annotations

import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast
from unittest import mock

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings

from helpkit import lifecycle
from helpkit.errors import (
    ConflictError,
    HelpkitError,
    NotFoundError,
    StoreError,
    UnknownBackendError,
    ValidationError,
)
from helpkit.events import Event
from helpkit.lifecycle import Outcome
from helpkit.people import Agent, Contact
from helpkit.ports import Capability, Receipt, ReceiptState, RoutingState, Store, TicketChange
from helpkit.priority import ITIL_MATRIX, Impact, Urgency
from helpkit.queries import NONE_LAST, Page, SortOrder, TicketQuery, encode_cursor, sort_key
from helpkit.stores import memory as memory_module
from helpkit.stores.memory import MemoryStore, memory_store_factory, validate_change
from helpkit.testing.conformance import (
    ReopenStore,
    StoreConformance,
    StoreFactory,
    change_of,
    forged,
)
from helpkit.tickets import DEFAULT_WORKFLOW, Actor, StatusCategory, Ticket

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def open_ticket_outcome(ticket_id: str, number: int) -> Outcome:
    return lifecycle.open_ticket(
        ticket_id=ticket_id,
        number=number,
        at=NOW,
        actor=Actor.agent("a1"),
        subject="Printer on fire",
        requester_id="c1",
        organization_id=None,
        impact=Impact.HIGH,
        urgency=Urgency.HIGH,
        matrix=ITIL_MATRIX,
        workflow=DEFAULT_WORKFLOW,
        channel="phone",
    )


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def make_store(self) -> StoreFactory:
        return MemoryStore


class _ReopenableStore:
    """A MemoryStore behind a handle that can be closed and opened again on the same data.

    It stands in for a persistent store, so the suite's persistence tests run here too.
    """

    capabilities = frozenset({Capability.PERSISTENT, Capability.INBOX})

    def __init__(self, data: MemoryStore) -> None:
        self.data = data
        self.closed = False

    def __getattr__(self, name: str) -> Any:
        if self.closed:
            raise StoreError("this handle is closed")
        return getattr(self.data, name)

    def close(self) -> None:
        self.closed = True


class TestPersistentStoreContract(StoreConformance):
    """The persistence tests of the suite, on a store that declares PERSISTENT."""

    stateful_settings = settings(max_examples=5, stateful_step_count=20, deadline=None)

    @pytest.fixture
    def make_store(self) -> StoreFactory:
        return lambda: cast(Store, _ReopenableStore(MemoryStore()))

    @pytest.fixture
    def reopen_store(self) -> ReopenStore:
        def reopen(store: Store) -> Store:
            assert cast(_ReopenableStore, store).closed, "the suite closes a store before reopening"
            return cast(Store, _ReopenableStore(cast(_ReopenableStore, store).data))

        return reopen


class _ForgetfulStore(_ReopenableStore):
    """Claims PERSISTENT but comes back empty."""


def test_the_persistence_test_catches_a_store_that_forgets() -> None:
    suite = StoreConformance()
    with pytest.raises(NotFoundError):
        suite.test_data_survives_reopening(
            lambda: cast(Store, _ForgetfulStore(MemoryStore())),
            lambda store: cast(Store, _ForgetfulStore(MemoryStore())),
        )


@pytest.mark.parametrize("url", ["memory://", "memory:", "MEMORY://"])
def test_factory_accepts_memory_urls(url: str) -> None:
    store = memory_store_factory(url)
    assert isinstance(store, MemoryStore)
    assert isinstance(store, Store)


def test_factory_gives_a_new_store_each_time() -> None:
    first, second = memory_store_factory("memory://"), memory_store_factory("memory://")
    first.save_agent(Agent(id="a1", name="Al"))
    assert second.list_agents() == []


@pytest.mark.parametrize("url", ["sqlite:///desk.db", "postgresql://db/desk", "memory", "", "x"])
def test_factory_refuses_other_schemes(url: str) -> None:
    with pytest.raises(UnknownBackendError, match="memory://"):
        memory_store_factory(url)


@pytest.mark.parametrize("url", ["memory:///desk", "memory://shared", "memory:?x=1"])
def test_factory_refuses_paths_and_options(url: str) -> None:
    with pytest.raises(ValidationError, match="no path or options"):
        memory_store_factory(url)


def test_memory_store_declares_its_capabilities() -> None:
    assert MemoryStore().capabilities == frozenset(
        {
            Capability.CHANGE_FEED,
            Capability.OUTBOX,
            Capability.CLAIMED_ENQUEUE,
            Capability.FEED_WAKEUP,
            Capability.INBOX,
            Capability.ROUTING,
            Capability.REDACTION,
            Capability.PURGE,
            Capability.KNOWLEDGE,
            Capability.NEW_CONTACTS,
            Capability.TICKET_READS,
            Capability.SETTLED_COMMIT,
            Capability.AGENT_EMAILS,
            Capability.REQUESTER_COUNTS,
        }
    )


def test_a_wait_is_refused_a_bad_timeout_and_ends_when_the_store_closes() -> None:
    store = MemoryStore()
    for bad in (-1, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValidationError):
            store.wait_for_changes(0, bad)  # type: ignore[arg-type]
    results: list[bool] = []
    waiting = threading.Event()

    def wait() -> None:
        waiting.set()
        results.append(store.wait_for_changes(0, 60))

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    assert waiting.wait(10)
    while not store._changed._waiters:  # type: ignore[attr-defined]
        time.sleep(0.001)
    store.close()
    waiter.join(30)
    assert not waiter.is_alive() and results == [False]


def _calls(store: MemoryStore) -> dict[str, Callable[[], object]]:
    contact = Contact(id="c1", name="Ann", created_at=NOW, updated_at=NOW)
    return {
        "commit": lambda: store.commit([]),
        "get_ticket": lambda: store.get_ticket("t1"),
        "get_ticket_by_number": lambda: store.get_ticket_by_number(1),
        "events": lambda: store.events("t1"),
        "query": lambda: store.query(TicketQuery()),
        "save_contact": lambda: store.save_contact(contact),
        "get_contact": lambda: store.get_contact("c1"),
        "contact_by_email": lambda: store.contact_by_email("ann@example.com"),
        "find_contacts": lambda: store.find_contacts("ann"),
        "get_organization": lambda: store.get_organization("o1"),
        "organization_by_domain": lambda: store.organization_by_domain("acme.example"),
        "find_organizations": lambda: store.find_organizations("acme"),
        "save_agent": lambda: store.save_agent(Agent(id="a1", name="Al")),
        "get_agent": lambda: store.get_agent("a1"),
        "list_agents": lambda: store.list_agents(),
        "get_group": lambda: store.get_group("g1"),
        "list_groups": lambda: store.list_groups(),
    }


@pytest.mark.parametrize("name", sorted(_calls(MemoryStore())))
def test_every_call_after_close_raises_store_error(name: str) -> None:
    store = MemoryStore()
    call = _calls(store)[name]
    store.close()
    with pytest.raises(StoreError, match="closed"):
        call()


def test_close_is_idempotent() -> None:
    store = MemoryStore()
    store.close()
    store.close()
    assert "closed" in repr(store)


def test_close_drops_the_data() -> None:
    store = MemoryStore()
    outcome = open_ticket_outcome("t1", 0)
    store.commit([change_of(outcome)])
    store.close()
    assert store._tickets == {}
    assert store._events == {}


def test_stored_state_is_a_copy_not_the_callers_object() -> None:
    store = MemoryStore()
    outcome = open_ticket_outcome("t1", 1)
    store.commit([change_of(outcome)])
    stored = store.get_ticket("t1")
    assert stored == outcome.ticket
    assert stored is not outcome.ticket
    assert store.events("t1")[0] is not outcome.events[0]


def test_unserializable_state_is_refused_before_writing() -> None:
    store = MemoryStore()
    outcome = open_ticket_outcome("t1", 1)
    unstorable = forged(outcome.ticket, tags=frozenset({cast("str", object())}))
    broken = TicketChange(unstorable, outcome.events, 0)
    with pytest.raises(ValidationError, match="cannot be stored"):
        store.commit([broken])
    assert store.query(TicketQuery()).items == ()


def test_validate_change_accepts_lifecycle_outcomes() -> None:
    outcome = open_ticket_outcome("t1", 1)
    validate_change(change_of(outcome))


@pytest.mark.parametrize("expected_seq", [-1, True, "0"])
def test_validate_change_refuses_bad_expected_seq(expected_seq: object) -> None:
    outcome = open_ticket_outcome("t1", 1)
    change = TicketChange(outcome.ticket, outcome.events, expected_seq)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="expected_seq"):
        validate_change(change)


def test_a_new_ticket_needs_events() -> None:
    outcome = open_ticket_outcome("t1", 1)
    with pytest.raises(ValidationError, match="opening event"):
        MemoryStore().commit([TicketChange(outcome.ticket, (), 0)])


def test_commit_refuses_things_that_are_not_changes() -> None:
    with pytest.raises(ValidationError, match="TicketChange"):
        MemoryStore().commit(["not a change"])  # type: ignore[list-item]


def test_a_ticket_number_cannot_change() -> None:
    store = MemoryStore()
    outcome = open_ticket_outcome("t1", 1)
    store.commit([change_of(outcome)])
    tagged = lifecycle.change_tags(
        outcome.ticket, at=outcome.ticket.updated_at, actor=outcome.events[0].actor, add=["x"]
    )
    renumbered = TicketChange(
        attrs.evolve(tagged.ticket, number=7), tagged.events, tagged.previous_seq
    )
    with pytest.raises(ValidationError, match="number"):
        store.commit([renumbered])
    assert store.get_ticket("t1") == outcome.ticket


def test_find_limits_must_be_positive() -> None:
    store = MemoryStore()
    for bad in (0, -1, True):
        with pytest.raises(ValidationError, match="limit"):
            store.find_contacts("a", limit=bad)
        with pytest.raises(ValidationError, match="limit"):
            store.find_organizations("a", limit=bad)


def test_conflict_errors_say_what_to_do() -> None:
    store = MemoryStore()
    outcome = open_ticket_outcome("t1", 1)
    store.commit([change_of(outcome)])
    with pytest.raises(ConflictError, match="Reload and retry") as info:
        store.commit([change_of(outcome)])
    assert isinstance(info.value, HelpkitError)


# ---------------------------------------------------------------- the suite can fail
#
# A conformance suite that passes everything proves nothing. These run parts of it against
# deliberately broken stores and expect them to fail.


class _NonAtomicStore(MemoryStore):
    """Writes each change of a batch on its own (a half-written batch survives a conflict)."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        written: list[TicketChange] = []
        for change in changes:
            written.extend(super().commit([change]))
        return written


class _TagBlindStore(MemoryStore):
    """Ignores the tag filter of queries."""

    def query(self, query: TicketQuery) -> Page[Ticket]:
        return super().query(attrs.evolve(query, tags=frozenset()))


class _DeadlineBlindStore(MemoryStore):
    """Ignores the "deadline before" filter."""

    def query(self, query: TicketQuery) -> Page[Ticket]:
        return super().query(attrs.evolve(query, deadline_before=None))


class _NextCheckBlindStore(MemoryStore):
    """Ignores the "next check before" filter (a sweep would read every ticket)."""

    def query(self, query: TicketQuery) -> Page[Ticket]:
        return super().query(attrs.evolve(query, next_check_before=None))


class _ResortingStore(MemoryStore):
    """Filters like the reference but orders by its own ``key``, cursors included."""

    @staticmethod
    def key(order: SortOrder, ticket: Ticket) -> tuple[int | str, ...]:
        raise NotImplementedError

    def query(self, query: TicketQuery) -> Page[Ticket]:
        matching = [t for t in list(self._tickets.values()) if query.matches(t)]
        keyed = sorted(((self.key(query.sort, t), t) for t in matching), key=lambda kt: kt[0])
        start = query.cursor_key()
        if start is not None:
            keyed = [kt for kt in keyed if kt[0] > start]
        items = tuple(t for _, t in keyed[: query.limit])
        more = len(keyed) > query.limit
        cursor = encode_cursor(query.sort, self.key(query.sort, items[-1])) if more else None
        return Page(items, cursor)


class _NoneFirstStore(_ResortingStore):
    """Sorts a missing deadline or check first instead of last (SQL's NULLS FIRST)."""

    @staticmethod
    def key(order: SortOrder, ticket: Ticket) -> tuple[int | str, ...]:
        return tuple(-1 if k == NONE_LAST else k for k in sort_key(order, ticket))


class _DeadlineUnawareQueueStore(_ResortingStore):
    """Orders the priority queue by priority and age only, ignoring the next deadline."""

    @staticmethod
    def key(order: SortOrder, ticket: Ticket) -> tuple[int | str, ...]:
        key = sort_key(order, ticket)
        return (key[0], 0, *key[2:]) if order is SortOrder.PRIORITY else key


class _StaleScheduleStore(MemoryStore):
    """Indexes the SLA fields a ticket had when first written, never their updates."""

    def __init__(self) -> None:
        super().__init__()
        self.indexed: dict[str, tuple[datetime | None, datetime | None]] = {}

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        written = super().commit(changes)
        for change in changes:
            ticket = change.ticket
            self.indexed.setdefault(ticket.id, (ticket.next_deadline, ticket.next_check))
        return written

    def query(self, query: TicketQuery) -> Page[Ticket]:
        real = {t.id: t for t in list(self._tickets.values())}
        stale = [
            attrs.evolve(t, next_deadline=self.indexed[t.id][0], next_check=self.indexed[t.id][1])
            for t in real.values()
        ]
        page = query.page(stale)
        return Page(tuple(real[t.id] for t in page.items), page.next_cursor)


class _NumberSpendingStore(MemoryStore):
    """Takes a number before checking the batch, so a refused commit leaves a gap."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        taken = []
        for change in changes:
            if change.expected_seq == 0 and change.ticket.number == 0:
                with self._lock:
                    taken.append(self._next_number)
                    self._next_number += 1
        numbered = iter(taken)
        return super().commit(
            [
                change.with_number(next(numbered))
                if change.expected_seq == 0 and change.ticket.number == 0
                else change
                for change in changes
            ]
        )


class _UnstampedStore(MemoryStore):
    """Numbers the stored ticket but hands back the change as given (number 0)."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        super().commit(changes)
        return list(changes)


class _AccentSensitiveStore(MemoryStore):
    """Searches names case-insensitively but not accent-insensitively."""

    def find_contacts(self, text: str, *, limit: int = 50) -> list[Contact]:
        found = [
            c for c in super().find_contacts("", limit=1000) if text.casefold() in c.name.casefold()
        ]
        return found[:limit]


class _LaxStore(MemoryStore):
    """Trusts the values it is given, as the SQLite store once did: a forged value is kept."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        with mock.patch.object(memory_module, "check_record", _trust):
            return super().commit(changes)

    def save_contact(self, contact: Contact) -> None:
        with mock.patch.object(memory_module, "check_record", _trust):
            super().save_contact(contact)


def _trust(value: object, expected: type | None = None) -> None:
    """A check_record that checks nothing."""


class _NormalizingStore(MemoryStore):
    """Hands back text in Unicode normal form C, not as it was given."""

    def get_contact(self, contact_id: str) -> Contact:
        found = super().get_contact(contact_id)
        return attrs.evolve(found, name=unicodedata.normalize("NFC", found.name))


class _LastChangeOnlyFeedStore(MemoryStore):
    """Feeds only the last change of a batch (a store that numbers positions per change)."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        before = len(self._feed)
        written = super().commit(changes)
        if len(written) > 1:
            last = len(written[-1].events)
            del self._feed[before : len(self._feed) - last]
        return written


class _CursorWithoutCheckStore(MemoryStore):
    """Saves cursors without comparing them with the expected position."""

    def save_cursor(self, name: str, position: int, *, expected: int | None = None) -> None:
        super().save_cursor(name, position)


class _FeedsRefusedCommitsStore(MemoryStore):
    """Puts the events of a commit in its feed even when the commit is refused."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        try:
            return super().commit(changes)
        except HelpkitError:
            for change in changes:
                if isinstance(change, TicketChange):
                    self._feed.extend(change.events)
            raise


class _AliasingStore(MemoryStore):
    """Hands out its own list of events."""

    def events(self, ticket_id: str, *, after_seq: int = 0) -> list[Event]:
        super().events(ticket_id)  # raises NotFoundError for unknown ids
        return self._events[ticket_id]


def _without_receipts(changes: Sequence[TicketChange]) -> list[TicketChange]:
    return [attrs.evolve(c, receipt=None) if isinstance(c, TicketChange) else c for c in changes]


class _EarlyReceiptStore(MemoryStore):
    """Writes a commit's receipts before its seq checks, so a refused commit keeps them."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        for change in changes:
            if isinstance(change, TicketChange) and change.receipt is not None:
                found = self._inbox.get(change.receipt.key)
                if found is None or found.state is ReceiptState.SUSPENDED:
                    self._inbox[change.receipt.key] = change.receipt
        return super().commit(_without_receipts(changes))


class _DuplicateAcceptingStore(MemoryStore):
    """Writes every receipt, whatever the key already holds: a message ingested twice."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        written = super().commit(_without_receipts(changes))
        for change in changes:
            if change.receipt is not None:
                self._inbox[change.receipt.key] = change.receipt
        return [attrs.evolve(w, receipt=c.receipt) for w, c in zip(written, changes, strict=True)]


class _SuspendedKeptStore(MemoryStore):
    """Commits a released message but keeps its suspended receipt instead of replacing it."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        held = {
            c.receipt.key: self._inbox[c.receipt.key]
            for c in changes
            if isinstance(c, TicketChange)
            and c.receipt is not None
            and c.receipt.key in self._inbox
        }
        written = super().commit(changes)
        self._inbox.update(held)
        return written


class _LaxDiscardStore(MemoryStore):
    """Discards any receipt, ingested ones too."""

    def discard(self, key: str, *, now: datetime) -> Receipt:
        found = self._inbox.get(key)
        if found is None:
            raise NotFoundError(key)
        self._inbox[key] = attrs.evolve(
            found, state=ReceiptState.DISCARDED, message=None, updated_at=now
        )
        return self._inbox[key]


class _OverwritingSuspendStore(MemoryStore):
    """Suspends over whatever the key holds."""

    def suspend(self, receipt: Receipt) -> Receipt:
        self._inbox[receipt.key] = receipt
        return receipt


class _KeyOrderedSuspensionsStore(MemoryStore):
    """Lists suspended messages by key, not by when they were received."""

    def suspended(self, *, limit: int = 100, after: str | None = None) -> list[Receipt]:
        found = sorted(
            (r for r in self._inbox.values() if r.state is ReceiptState.SUSPENDED),
            key=lambda r: r.key,
        )
        return [r for r in found if after is None or r.key > after][:limit]


@pytest.mark.parametrize(
    ("broken", "example"),
    [
        (_EarlyReceiptStore, "test_a_refused_commit_writes_no_receipt"),
        (_EarlyReceiptStore, "test_bad_receipts_are_refused_before_anything_is_written"),
        (_DuplicateAcceptingStore, "test_a_key_received_before_refuses_the_whole_commit"),
        (_DuplicateAcceptingStore, "test_a_release_replaces_the_suspended_receipt"),
        (_DuplicateAcceptingStore, "test_threads_ingesting_one_message_make_one_ticket"),
        (_SuspendedKeptStore, "test_a_release_replaces_the_suspended_receipt"),
        (_SuspendedKeptStore, "test_suspended_messages_are_listed_oldest_first_a_page_at_a_time"),
        (_LaxDiscardStore, "test_discard_throws_a_suspended_message_away"),
        (_OverwritingSuspendStore, "test_suspend_keeps_the_whole_message_and_never_overwrites"),
        (
            _KeyOrderedSuspensionsStore,
            "test_suspended_messages_are_listed_oldest_first_a_page_at_a_time",
        ),
    ],
)
def test_the_inbox_examples_catch_a_broken_inbox(broken: type[MemoryStore], example: str) -> None:
    getattr(StoreConformance(), example)(MemoryStore())  # the real store passes
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        getattr(StoreConformance(), example)(broken())


def test_the_reopening_example_catches_an_inbox_that_forgets() -> None:
    suite = StoreConformance()
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        suite.test_receipts_survive_reopening(
            lambda: cast(Store, _ReopenableStore(MemoryStore())),
            lambda store: cast(Store, _ReopenableStore(MemoryStore())),
        )


_QUICK = settings(
    max_examples=200,
    stateful_step_count=30,
    deadline=None,
    database=None,
    derandomize=True,  # deterministic: this test must not depend on luck
    phases=(Phase.generate,),  # no shrinking: finding the bug is enough here
    suppress_health_check=[HealthCheck.too_slow],
)


class _QuickSuite(StoreConformance):
    stateful_settings = _QUICK


_SLA_BLIND_STORES = [
    _DeadlineBlindStore,
    _NextCheckBlindStore,
    _NoneFirstStore,
    _DeadlineUnawareQueueStore,
    _StaleScheduleStore,
]


@pytest.mark.parametrize(
    "broken",
    [
        _NonAtomicStore,
        _TagBlindStore,
        _AccentSensitiveStore,
        _UnstampedStore,
        *_SLA_BLIND_STORES,
    ],
)
def test_the_state_machine_catches_a_broken_store(broken: type[MemoryStore]) -> None:
    with pytest.raises(AssertionError):
        _QuickSuite().test_behaves_like_the_reference_store(broken)


def test_the_examples_catch_a_non_atomic_commit() -> None:
    suite = StoreConformance()
    with pytest.raises(AssertionError, match="first change of a failed batch"):
        suite.test_multi_ticket_commit_is_atomic(_NonAtomicStore())


@pytest.mark.parametrize(
    ("broken", "example"),
    [
        (_NumberSpendingStore, "test_numbers_follow_commit_order_without_gaps"),
        (_UnstampedStore, "test_number_zero_is_numbered_by_the_store"),
        (_UnstampedStore, "test_numbers_follow_commit_order_without_gaps"),
    ],
)
def test_the_examples_catch_wrong_ticket_numbering(broken: type[MemoryStore], example: str) -> None:
    with pytest.raises(AssertionError):
        getattr(StoreConformance(), example)(broken())


def test_the_examples_catch_an_accent_sensitive_search() -> None:
    suite = StoreConformance()
    with pytest.raises(AssertionError):
        suite.test_find_contacts_ignores_case_and_accents(_AccentSensitiveStore())


def test_the_examples_catch_a_store_that_keeps_forged_values() -> None:
    suite = StoreConformance()
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        suite.test_forged_values_are_refused_and_write_nothing(_LaxStore())


def test_the_examples_catch_a_store_that_changes_text() -> None:
    suite = StoreConformance()
    with pytest.raises(AssertionError):
        suite.test_any_valid_text_survives_storage(_NormalizingStore())


@pytest.mark.parametrize(
    ("broken", "example"),
    [
        (_LastChangeOnlyFeedStore, "test_events_of_one_commit_are_consecutive_in_change_order"),
        (_CursorWithoutCheckStore, "test_cursors_are_named_positions_with_compare_and_set"),
        (_FeedsRefusedCommitsStore, "test_a_refused_commit_shows_nothing"),
    ],
)
def test_the_feed_examples_catch_a_broken_feed(broken: type[MemoryStore], example: str) -> None:
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        getattr(StoreConformance(), example)(broken())


def test_the_examples_catch_aliased_results() -> None:
    suite = StoreConformance()
    with pytest.raises(AssertionError):
        suite.test_results_do_not_alias_stored_data(_AliasingStore())


@pytest.mark.parametrize("order", list(SortOrder))
def test_the_examples_catch_an_ignored_filter(order: SortOrder) -> None:
    suite = StoreConformance()
    with pytest.raises(AssertionError):
        suite.test_queries_match_the_reference_semantics(_TagBlindStore(), order)


@pytest.mark.parametrize("broken", _SLA_BLIND_STORES)
@pytest.mark.parametrize(
    "example",
    [
        "test_sla_orders_put_missing_instants_last",
        "test_the_sla_index_follows_every_write",
    ],
)
def test_the_sla_examples_catch_a_store_that_ignores_or_mis_sorts_sla_fields(
    broken: type[MemoryStore], example: str
) -> None:
    if example == "test_sla_orders_put_missing_instants_last" and broken is _StaleScheduleStore:
        pytest.skip("this example writes each ticket once: nothing to re-index")
    with pytest.raises(AssertionError):
        getattr(StoreConformance(), example)(broken())


@pytest.mark.parametrize("broken", _SLA_BLIND_STORES)
def test_the_query_examples_catch_a_store_that_ignores_or_mis_sorts_sla_fields(
    broken: type[MemoryStore],
) -> None:
    suite = StoreConformance()
    failures = 0
    for order in SortOrder:
        try:
            suite.test_queries_match_the_reference_semantics(broken(), order)
        except AssertionError:
            failures += 1
    assert failures, f"{broken.__name__} passed the query examples in every order"


# ---------------------------------------------------------------- broken routing states


class _VersionBlindRoutingStore(MemoryStore):
    """Writes a change's routing states whatever version is stored."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        states = [s for c in changes if isinstance(c, TicketChange) for s in c.routing]
        written = super().commit(
            [attrs.evolve(c, routing=()) if isinstance(c, TicketChange) else c for c in changes]
        )
        with self._lock:
            for state in states:
                self._routing[state.group_id] = state
        return [attrs.evolve(w, routing=c.routing) for w, c in zip(written, changes, strict=True)]


class _EarlyRoutingStore(MemoryStore):
    """Moves the routing states before it checks the rest of the commit."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        with self._lock:
            for change in changes:
                for state in change.routing if isinstance(change, TicketChange) else ():
                    if self._routing_version(state.group_id) == state.version - 1:
                        self._routing[state.group_id] = state
        return super().commit(
            [attrs.evolve(c, routing=()) if isinstance(c, TicketChange) else c for c in changes]
        )


class _CursorlessRoutingStore(MemoryStore):
    """Keeps a group's version but forgets its cursor."""

    def routing_states(self, group_ids: Sequence[str]) -> dict[str, RoutingState]:
        return {
            g: attrs.evolve(s, cursor=None) for g, s in super().routing_states(group_ids).items()
        }


class _EveryCategoryLoadStore(MemoryStore):
    """Counts every ticket of an agent, whatever its category."""

    def agent_loads(
        self, agent_ids: Sequence[str], categories: frozenset[StatusCategory]
    ) -> dict[str, int]:
        return super().agent_loads(agent_ids, frozenset(StatusCategory))


@pytest.mark.parametrize(
    ("broken", "example"),
    [
        (_VersionBlindRoutingStore, "test_a_stale_routing_version_refuses_the_whole_commit"),
        (_VersionBlindRoutingStore, "test_threads_moving_one_version_move_it_once"),
        (_EarlyRoutingStore, "test_a_stale_routing_version_refuses_the_whole_commit"),
        (_EarlyRoutingStore, "test_a_refused_commit_moves_no_routing_state"),
        (_CursorlessRoutingStore, "test_routing_states_are_written_with_the_change_routing_made"),
        (_EveryCategoryLoadStore, "test_agent_loads_count_assigned_tickets_by_category"),
    ],
)
def test_the_routing_examples_catch_broken_routing_states(
    broken: type[MemoryStore], example: str
) -> None:
    getattr(StoreConformance(), example)(MemoryStore())  # the real store passes
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        getattr(StoreConformance(), example)(broken())
