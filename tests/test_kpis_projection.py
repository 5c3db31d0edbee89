"""The KPI projection (helpkit.reports.KpiProjection) equals the full recomputation: random
desk histories of several tickets, the projection brought forward in random-sized steps
between commands (resuming the kept folds of the tickets touched again, now and then through
a checkpoint saved and loaded), then compared with KpiReader's report as of now and later."""

from __future__ import annotations

import contextlib
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit import Actor, DeskConfig, Helpdesk, kpis, reports
from helpkit.calendar import BusinessCalendar
from helpkit.errors import ConfigError, HelpkitError, ValidationError
from helpkit.escalation import DEFAULT_TIER_NAMES, Tier, TierLadder
from helpkit.fields import CustomField, FieldKind, FieldSet
from helpkit.ports import Capability
from helpkit.priority import Priority
from helpkit.reports import PROJECTION_CURSOR, KpiProjection, KpiReader
from helpkit.satisfaction import CsatConfig
from helpkit.sla import SlaPolicy, SlaPolicySet, Targets
from helpkit.stores.memory import MemoryStore
from helpkit.stores.sqlite import SqliteStore
from helpkit.testing.clock import FrozenClock
from helpkit.testing.strategies import tickets
from helpkit.tickets import Ticket

H = timedelta(hours=1)
MONDAY = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
OFFICE = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC")
POLICY = SlaPolicy(
    "standard",
    OFFICE,
    {p: Targets(first_response=4 * H, resolution=16 * H) for p in Priority},
)
STEPS = (
    "open",
    "agent_reply",
    "requester_reply",
    "note",
    "resolve",
    "reopen",
    "pending",
    "escalate",
    "assign",
    "assign_ben",
    "unassign",
    "open_status",
    "set_form",
    "merge",
    "close",
    "sweep",
    "rate_good",
    "rate_bad",
)
LADDER = TierLadder(
    [
        Tier(level, name, {1: ("desk",), 2: ("tech",)}.get(level, ()))
        for level, name in sorted(DEFAULT_TIER_NAMES.items())
    ]
)
"""The ladder the desk makes of its groups' tiers (the test's projections are loaded with it)."""
FORM = CustomField(name="form", kind=FieldKind.CHOICE, choices=("access", "billing"))
ANA = Actor.agent("ana")
BOB = Actor.contact("bob")

steps = st.lists(
    st.tuples(
        st.sampled_from(STEPS),
        st.integers(min_value=0, max_value=9),  # which ticket
        st.integers(min_value=0, max_value=24 * 60),  # minutes before it
        st.none() | st.integers(min_value=0, max_value=8),  # projection: changes folded then
        st.booleans(),  # then through a checkpoint
    ),
    max_size=30,
)


def _step(desk: Helpdesk, tickets: list[str], step: str, which: int) -> None:
    if step == "open" or not tickets:
        opener = ANA if which % 2 else BOB
        group = ("desk", "tech", None)[which % 3]
        tickets.append(
            desk.open_ticket(opener, requester="bob", subject="VPN", body="down", group=group).id
        )
        return
    ticket = tickets[which % len(tickets)]
    if step == "agent_reply":
        desk.reply(ticket, ANA, "hello")
    elif step == "requester_reply":
        desk.requester_reply(ticket, "still broken")
    elif step == "note":
        desk.note(ticket, ANA, "looking")
    elif step == "resolve":
        desk.resolve(ticket, ANA)
    elif step == "reopen":
        desk.reopen(ticket, ANA)
    elif step == "pending":
        desk.set_status(ticket, ANA, "pending")
    elif step == "escalate":
        desk.escalate(ticket, ANA)
    elif step == "assign":
        desk.assign(ticket, ANA, agent="ana", group="desk")
    elif step == "assign_ben":
        desk.assign(ticket, ANA, agent="ben")
    elif step == "unassign":
        desk.assign(ticket, ANA, agent=None)
    elif step == "open_status":
        desk.set_status(ticket, ANA, "open")
    elif step == "set_form":
        desk.set_fields(ticket, ANA, {"form": ("access", "billing", None)[which % 3]})
    elif step == "merge":
        desk.merge(ticket, tickets[(which + 1) % len(tickets)], ANA)
    elif step == "sweep":
        desk.sweep()  # offers the satisfaction surveys due
    elif step in ("rate_good", "rate_bad"):
        token = desk.rating_link(ticket).removeprefix("helpkit-rate:")
        desk.rate(token, step.removeprefix("rate_"), "a comment" if which % 2 else None)
    else:
        desk.close(ticket, ANA)


examples = (
    steps,
    st.integers(min_value=1, max_value=7),
    st.integers(0, 5 * 24 * 60),
    st.integers(0, 6),  # commands after the last checkpoint
)


@given(*examples)
@settings(max_examples=100, deadline=None)
def test_the_projection_equals_the_full_recomputation(
    history: list[tuple[str, int, int, int | None, bool]], limit: int, later: int, tail: int
) -> None:
    _check(MemoryStore(), history, limit, later, tail)


@given(*examples)
@settings(max_examples=25, deadline=None)
def test_on_sqlite_the_projection_and_the_checkpoint_equal_the_full_recomputation(
    history: list[tuple[str, int, int, int | None, bool]], limit: int, later: int, tail: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(str(Path(folder) / "desk.db"))
        try:
            _check(store, history, limit, later, tail)
        finally:
            store.close()


def _desk(store: MemoryStore | SqliteStore, clock: FrozenClock) -> Helpdesk:
    config = DeskConfig(
        sla=SlaPolicySet((POLICY,)),
        fields=FieldSet([FORM]),
        csat=CsatConfig(enabled=True, offer_after="2h", bad_rating=["reopen"]),
    )
    desk = Helpdesk(store, config=config, clock=clock, entry_points=False, secret="s" * 16)
    desk.add_group("desk", "Service desk", tier=1)
    desk.add_group("tech", "Technicians", tier=2)
    desk.add_agent("ana", "Ana", email="ana@support.example", groups=["desk", "tech"])
    desk.add_agent("ben", "Ben", email="ben@support.example", groups=["desk", "tech"])
    desk.create_contact("Bob", emails=["bob@example.com"], contact_id="bob")
    return desk


def _folds(projection: KpiProjection) -> dict[str, tuple[Ticket, object]]:
    # Every resumable fold, read (from its checkpoint form if it is still in it): its
    # ticket state and its SLA fold's data. A fold that does not read back fails here (an
    # update would fold its ticket again from history, hiding it from a report).
    folds: dict[str, tuple[Ticket, object]] = {}
    for ticket_id, (_, name) in projection._resume.items():
        fold = projection._resumable(ticket_id, name, None if name is None else POLICY)
        assert fold is not None, ticket_id
        folds[ticket_id] = (fold.state, None if fold.sla is None else fold.sla.to_data())
    return folds


@given(steps, st.integers(0, 30), st.integers(min_value=1, max_value=7))
@settings(max_examples=60, deadline=None)
def test_a_projection_loaded_from_its_checkpoint_goes_on_as_the_one_kept_in_memory(
    history: list[tuple[str, int, int, int | None, bool]], split: int, limit: int
) -> None:
    # The checkpoint's form of the resumable folds (format 7: each ticket state a row of
    # plain values) reads back to the folds the projection kept, and a projection loaded
    # from it then updated equals the one kept in memory and updated: its folds, kept
    # facts and records.
    clock = FrozenClock(MONDAY)
    desk = _desk(MemoryStore(), clock)
    tickets: list[str] = []
    folder = tempfile.TemporaryDirectory()
    checkpoint = Path(folder.name) / "kpis.projection"

    def run(part: list[tuple[str, int, int, int | None, bool]]) -> None:
        for step, which, minutes, _, _ in part:
            clock.advance(timedelta(minutes=minutes))
            with contextlib.suppress(HelpkitError):
                _step(desk, tickets, step, which)

    try:
        run(history[:split])
        kept = desk.kpi_projection()
        kept.save(checkpoint)
        loaded = KpiProjection.load(checkpoint, desk.config.sla, LADDER)
        assert all(isinstance(fold, bytes) for fold, _ in loaded._resume.values())
        assert _folds(loaded) == _folds(kept)
        loaded = KpiProjection.load(checkpoint, desk.config.sla, LADDER)
        run(history[split:])
        assert kept.update(desk.store, limit=limit) == loaded.update(desk.store, limit=limit)
        assert loaded._kept == kept._kept
        assert sorted(loaded.records()) == sorted(kept.records())
        assert _folds(loaded) == _folds(kept)
        assert (loaded.position, loaded.as_of) == (kept.position, kept.as_of)
    finally:
        desk.shutdown()
        folder.cleanup()


def _check(
    store: MemoryStore | SqliteStore,
    history: list[tuple[str, int, int, int | None, bool]],
    limit: int,
    later: int,
    tail: int,
) -> None:
    clock = FrozenClock(MONDAY)
    desk = _desk(store, clock)
    config = desk.config
    try:
        projection = desk.kpi_projection()
        assert projection._ladder == LADDER  # the desk's, as a load is given
        tickets: list[str] = []
        folder = tempfile.TemporaryDirectory()
        checkpoint = Path(folder.name) / "kpis.projection"
        for step, which, minutes, fold, reload in history:
            clock.advance(timedelta(minutes=minutes))
            with contextlib.suppress(HelpkitError):  # a step the state refuses is skipped
                _step(desk, tickets, step, which)
            if fold is not None:
                before = projection.position
                read = projection.update(store, limit=limit, max_changes=fold)
                assert read <= fold
                assert projection.position >= before
                if reload:
                    resumable = projection.resumable
                    projection.save(checkpoint)
                    projection = KpiProjection.load(checkpoint, config.sla, LADDER)
                    assert projection.resumable == resumable
        projection.update(store, limit=limit)
        assert projection.position == store.last_position()
        # Every ticket (a requester's reply to a closed one opens a follow-up ticket).
        assert len(projection) == sum(1 for _ in KpiReader(store, None, None).tickets())
        # The folds kept to resume are those of the active tickets.
        active = sum(1 for record in projection.records() if record[9])
        assert projection.resumable == active
        # A checkpoint saved now, then more commands: a report streamed from it and the
        # store's changes since equals the full recomputation too.
        projection.save(checkpoint)
        for step, which, minutes, _, _ in history[:tail]:
            clock.advance(timedelta(minutes=minutes))
            with contextlib.suppress(HelpkitError):
                _step(desk, tickets, step, which)
        for now in (clock.now(), clock.now() + timedelta(minutes=later)):
            full = desk.kpis(now=now, fields="form")  # KpiReader: every history folded
            assert desk.kpis(now=now, fields="form", checkpoint=checkpoint) == full
            by_week = desk.kpis(now=now, period="week", group="desk")
            streamed = desk.kpis(now=now, period="week", group="desk", checkpoint=checkpoint)
            assert streamed == by_week
            projection.update(store, limit=limit)
            assert projection.report(now, fields="form").to_data() == full.to_data()
            assert projection.report(now, by_week.filter, by_week.period) == by_week
        folder.cleanup()
    finally:
        desk.shutdown()


@given(tickets())
@settings(max_examples=200, deadline=None)
def test_a_ticket_state_reads_back_from_its_checkpoint_form(state: Ticket) -> None:
    # Format 7's form of a resumable fold's ticket state (a row of plain values, or the
    # codec's form for a ticket with followers, links or custom fields), through the pickle
    # reader that builds no class, gives back the same state; tags as they were.
    import io
    import pickle

    from helpkit.reports import _RowReader, _ticket_of, _ticket_row

    rich = bool(state.followers or state.links or state.custom_fields)
    assert isinstance(_ticket_row(state), tuple) is not rich
    data = pickle.dumps(_ticket_row(state), protocol=pickle.HIGHEST_PROTOCOL)
    found = _ticket_of(_RowReader(io.BytesIO(data)).load())
    assert found == state
    assert type(found.created_at) is type(state.created_at)
    assert found.created_at.tzinfo is state.created_at.tzinfo


@given(steps, st.integers(0, 6), st.integers(min_value=1, max_value=7), st.integers(1, 3))
@settings(max_examples=40, deadline=None)
def test_a_checkpoint_built_streamed_is_the_one_built_in_memory_and_saved(
    history: list[tuple[str, int, int, int | None, bool]], tail: int, limit: int, chunk: int
) -> None:
    # KpiProjection.build_checkpoint (each section streamed to the file, a chunk at a time)
    # writes the very file a projection built in memory then saved writes, chunks of a few
    # tickets (so several of each section, and a last one part full), on a memory store and
    # on a SQLite file; the store's cursor is saved the same; the checkpoint loads, and its
    # reports (and those from it streamed, after more commands) equal the full recomputation.
    with tempfile.TemporaryDirectory() as folder:
        sqlite = SqliteStore(str(Path(folder) / "desk.db"))
        try:
            for store in (MemoryStore(), sqlite):
                _check_streamed(store, Path(folder), history, tail, limit, chunk)
        finally:
            sqlite.close()


def _check_streamed(
    store: MemoryStore | SqliteStore,
    folder: Path,
    history: list[tuple[str, int, int, int | None, bool]],
    tail: int,
    limit: int,
    chunk: int,
) -> None:
    clock = FrozenClock(MONDAY)
    desk = _desk(store, clock)
    tickets: list[str] = []
    streamed, in_memory = folder / "streamed.projection", folder / "in-memory.projection"
    try:
        for step, which, minutes, _, _ in history:
            clock.advance(timedelta(minutes=minutes))
            with contextlib.suppress(HelpkitError):
                _step(desk, tickets, step, which)
        with mock.patch.object(reports, "_CHUNK", chunk):
            projection = KpiProjection(desk.config.sla, LADDER)
            projection.update(store, limit=limit)
            projection.save(in_memory, store)
            store.save_cursor(PROJECTION_CURSOR, 0)
            KpiProjection.build_checkpoint(streamed, store, desk.config.sla, LADDER, limit=limit)
        assert streamed.read_bytes() == in_memory.read_bytes()
        assert store.cursor(PROJECTION_CURSOR) == store.last_position()
        assert not list(folder.glob("*.partial"))
        loaded = KpiProjection.load(streamed, desk.config.sla, LADDER)
        assert (loaded.position, loaded.as_of) == (projection.position, projection.as_of)
        assert sorted(loaded.records()) == sorted(projection.records())
        assert loaded._kept == projection._kept
        assert _folds(loaded) == _folds(projection)
        for step, which, minutes, _, _ in history[:tail]:
            clock.advance(timedelta(minutes=minutes))
            with contextlib.suppress(HelpkitError):
                _step(desk, tickets, step, which)
        now = clock.now()
        full = desk.kpis(now=now, fields="form")
        assert desk.kpis(now=now, fields="form", checkpoint=streamed) == full
        by_week = desk.kpis(now=now, period="week", group="desk")
        assert desk.kpis(now=now, period="week", group="desk", checkpoint=streamed) == by_week
        loaded.update(store, limit=limit)
        assert loaded.report(now, fields="form").to_data() == full.to_data()
        assert loaded.report(now, by_week.filter, by_week.period) == by_week
    finally:
        desk.shutdown()


def test_a_streamed_build_of_a_store_without_a_change_feed_is_refused(tmp_path: Path) -> None:
    class NoFeed(MemoryStore):
        capabilities = MemoryStore.capabilities - {Capability.CHANGE_FEED}

    with pytest.raises(ConfigError, match="no change feed"):
        KpiProjection.build_checkpoint(tmp_path / "kpis.projection", NoFeed(), None, None)
    with pytest.raises(ValidationError, match="limit"):
        KpiProjection.build_checkpoint(tmp_path / "k", MemoryStore(), None, None, limit=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("limit", [1, 2, 1000])
def test_commands_committed_during_a_streamed_build_are_taken_in_after_it(
    tmp_path: Path, limit: int
) -> None:
    # Another writer commits while the build runs: a reply and a solve on a ticket the build
    # has folded already, and a new ticket. The checkpoint stops at the feed's end when the
    # build started; a report from it (and the loaded projection, updated) still equals the
    # full recomputation.
    clock = FrozenClock(MONDAY)
    store = MemoryStore()
    desk = _desk(store, clock)
    tickets: list[str] = []
    try:
        for which in range(4):
            clock.advance(timedelta(minutes=7))
            _step(desk, tickets, "open", which)
            _step(desk, tickets, "agent_reply", which)
        folded = kpis.keep_resumable
        calls = []

        def meanwhile(*args: object, **kwargs: object) -> object:
            calls.append(1)
            if len(calls) == 2:  # tickets[0] is folded: another writer moves on
                clock.advance(timedelta(minutes=30))
                desk.requester_reply(tickets[0], "any news?")
                desk.resolve(tickets[0], ANA)
                _step(desk, tickets, "open", 1)
            return folded(*args, **kwargs)  # type: ignore[arg-type]

        path = tmp_path / "kpis.projection"
        end = store.last_position()
        with mock.patch.object(reports, "keep_resumable", meanwhile):
            KpiProjection.build_checkpoint(path, store, desk.config.sla, LADDER, limit=limit)
        assert store.cursor(PROJECTION_CURSOR) == end < store.last_position()
        now = clock.now()
        full = desk.kpis(now=now)
        assert desk.kpis(now=now, checkpoint=path) == full
        loaded = KpiProjection.load(path, desk.config.sla, LADDER)
        loaded.update(store)
        assert loaded.report(now) == full
    finally:
        desk.shutdown()
