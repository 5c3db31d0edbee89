"""KPIs through the Helpdesk: a worked example (docs/kpis.md) on the memory store, a real
SQLite file and PostgreSQL, which must all give the same numbers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpkit import Actor, DeskConfig, Helpdesk, Priority
from helpkit.calendar import BusinessCalendar
from helpkit.errors import ValidationError
from helpkit.fields import CustomField, FieldKind, FieldSet
from helpkit.kpis import KpiFilter, Period
from helpkit.ports import Store
from helpkit.priority import Impact, Urgency
from helpkit.sla import SlaPolicy, SlaPolicySet, Targets
from helpkit.stores.memory import MemoryStore
from helpkit.stores.sqlite import SqliteStore
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import ActorKind
from postgres_fixtures import fresh_schema

H = timedelta(hours=1)
FRI = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)  # a Friday
MON = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TUE = MON + timedelta(days=1)
WED = MON + timedelta(days=2)
OFFICE = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC")
POLICY = SlaPolicy(
    "standard",
    OFFICE,
    {p: Targets(first_response=4 * H, resolution=16 * H) for p in Priority},
)
BOB = Actor.contact("bob")
ANA = Actor.agent("ana")
BEN = Actor.agent("ben")


def build(store: Store) -> Helpdesk:
    """The worked example of docs/kpis.md, as of Wednesday 09:00 (times UTC, office hours
    Mon-Fri 09:00-17:00; targets: first response 4 h, resolution 16 h)."""
    clock = FrozenClock(FRI)
    desk = Helpdesk(
        store,
        config=DeskConfig(sla=SlaPolicySet((POLICY,))),
        clock=clock,
        entry_points=False,
    )
    desk.add_group("desk", "Service desk", tier=1)
    desk.add_group("tech", "Technicians", tier=2)
    desk.add_agent("ana", "Ana", email="ana@support.example", groups=["desk"])
    desk.add_agent("ben", "Ben", email="ben@support.example", groups=["desk"])
    desk.add_agent("tom", "Tom", email="tom@support.example", groups=["tech"])
    desk.create_contact("Bob", emails=["bob@example.com"], contact_id="bob")

    def at(when: datetime) -> None:
        clock.set(when)

    def open_(**kwargs: Any) -> str:
        actor = kwargs.pop("actor", BOB)
        return desk.open_ticket(actor, requester="bob", body="help", **kwargs).id

    at(FRI + 7 * H)  # Fri 16:00
    b = open_(subject="B", channel="email")
    at(MON)
    a = open_(subject="A", channel="email", group="desk")
    at(MON + H)
    desk.reply(a, ANA, "try this")
    desk.reply(b, ANA, "try that")
    at(MON + 2 * H)
    desk.resolve(b, ANA)
    at(MON + 3 * H)
    desk.resolve(a, ANA)
    desk.reopen(b, ANA)
    at(MON + 4 * H)
    c = open_(subject="C", group="desk")
    at(TUE)
    d = open_(subject="D", impact="high", urgency="high")  # critical (P1)
    desk.escalate(c, ANA, reason="needs a technician")
    at(TUE + H / 2)
    desk.reply(d, BEN, "looking")
    at(TUE + H)
    desk.reply(d, BEN, "fixed")
    desk.resolve(d, BEN)
    desk.resolve(b, ANA)
    at(TUE + 5 * H)
    open_(subject="E", actor=ANA, tags=["vip"])
    at(WED)
    return desk


def _memory(tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    return MemoryStore()


def _sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    return SqliteStore(str(tmp_path / "kpis.db"))


def _postgres(tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    url = request.getfixturevalue("postgres_database")
    from helpkit.stores.postgres.store import PostgresStore

    return PostgresStore(url, schema=fresh_schema(), pool_max=2)


STORES: dict[str, Callable[[Path, pytest.FixtureRequest], Store]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(STORES))
def desk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Helpdesk]:
    built = build(STORES[request.param](tmp_path, request))
    try:
        yield built
    finally:
        built.shutdown()


def seconds(hours: float) -> float:
    return hours * 3600


def test_worked_example(desk: Helpdesk) -> None:
    data = desk.kpis().to_data()
    assert data["now"] == WED.isoformat()
    assert data["tickets"] == 5
    # First responses: A 1 h (1 h of office time), B Fri 16:00 -> Mon 10:00 (66 h, 2 h of
    # office time), D 30 min; C has none yet, and E's only message is its opening one.
    assert data["first_response"] == {
        "count": 3,
        "median_seconds": seconds(1),
        "p90_seconds": seconds(66),
        "mean_seconds": seconds(67.5 / 3),
        "min_seconds": seconds(0.5),
        "max_seconds": seconds(66),
    }
    assert data["first_response_business"]["median_seconds"] == seconds(1)
    assert data["first_response_business"]["p90_seconds"] == seconds(2)
    assert data["first_response_business"]["mean_seconds"] == seconds(3.5 / 3)
    # Resolutions: A 3 h; B solved, reopened, solved again Tue 10:00: 90 h, 10 h of office
    # time (1 on Friday, 8 on Monday, 1 on Tuesday); D 1 h.
    assert data["resolution"]["count"] == 3
    assert data["resolution"]["median_seconds"] == seconds(3)
    assert data["resolution"]["p90_seconds"] == seconds(90)
    assert data["resolution_business"]["p90_seconds"] == seconds(10)
    assert data["resolution_business"]["mean_seconds"] == seconds(14 / 3)
    # A is resolved at first contact; B was reopened; D took two replies.
    assert data["first_contact_resolution"] == {"count": 1, "of": 3, "rate": 1 / 3}
    assert data["reopened"] == {"count": 1, "of": 3, "rate": 1 / 3}
    # C's first response was due Mon 17:00 (13:00 + 4 office hours): breached. E was opened
    # by an agent's public message, which the SLA clock counts as its first response.
    assert data["sla"] == [
        {
            "policy": "standard",
            "metric": "first_response",
            "achieved": 4,
            "breached": 1,
            "pending": 0,
            "stopped": 0,
            "compliance": 0.8,
        },
        {
            "policy": "standard",
            "metric": "resolution",
            "achieved": 3,
            "breached": 0,
            "pending": 2,
            "stopped": 0,
            "compliance": 1.0,
        },
    ]
    assert data["backlog"] == {
        "total": 2,
        "by_status": [{"key": "new", "count": 2}],
        "by_group": [{"key": "tech", "count": 1}, {"key": None, "count": 1}],
        "by_age": [{"key": "<1d", "count": 1}, {"key": "1-3d", "count": 1}],
    }
    assert data["volume"]["by_channel"] == [
        {"start": "2026-01-02", "counts": [{"key": "email", "count": 1}]},
        {
            "start": "2026-01-05",
            "counts": [{"key": "email", "count": 1}, {"key": "web", "count": 1}],
        },
        {"start": "2026-01-06", "counts": [{"key": "web", "count": 2}]},
    ]
    assert data["volume"]["by_priority"][2] == {
        "start": "2026-01-06",
        "counts": [{"key": "critical", "count": 1}, {"key": "moderate", "count": 1}],
    }
    assert [
        {k: e[k] for k in ("tier", "tickets", "escalated", "rate")} for e in data["escalation"]
    ] == [
        {"tier": 1, "tickets": 2, "escalated": 1, "rate": 0.5},
        {"tier": 2, "tickets": 1, "escalated": 0, "rate": 0.0},
    ]
    # Time in L1: A 3 h until resolved (office time too); C Mon 13:00 to its escalation Tue
    # 09:00, 20 h (4 h of office time). C is still in L2: its time there is not final yet.
    assert data["escalation"][0]["time"] == {
        "count": 2,
        "median_seconds": seconds(3),
        "p90_seconds": seconds(20),
        "mean_seconds": seconds(11.5),
        "min_seconds": seconds(3),
        "max_seconds": seconds(20),
    }
    assert data["escalation"][0]["time_business"]["mean_seconds"] == seconds(3.5)
    assert data["escalation"][1]["time"]["count"] == 0
    # No ticket was assigned: no handle time.
    assert data["agents"] == [
        {
            "agent": "ana",
            "public_replies": 2,
            "solved": 3,
            "handle_seconds": 0.0,
            "handle_business_seconds": 0.0,
        },
        {
            "agent": "ben",
            "public_replies": 2,
            "solved": 1,
            "handle_seconds": 0.0,
            "handle_business_seconds": 0.0,
        },
    ]
    json.dumps(data)  # JSON-safe


def test_time_per_tier_handle_time_and_volume_by_form(
    request: pytest.FixtureRequest, tmp_path: Path, store_name: str
) -> None:
    """The worked example of docs/kpis.md's time per tier, handle time and volume by form."""
    clock = FrozenClock(MON)
    form = CustomField(name="form", kind=FieldKind.CHOICE, choices=("access", "billing"))
    desk = Helpdesk(
        STORES[store_name](tmp_path, request),
        config=DeskConfig(sla=SlaPolicySet((POLICY,)), fields=FieldSet([form])),
        clock=clock,
        entry_points=False,
    )
    try:
        desk.add_group("desk", "Service desk", tier=1)
        desk.add_group("tech", "Technicians", tier=2)
        desk.add_agent("ana", "Ana", email="ana@support.example", groups=["desk"])
        desk.add_agent("ben", "Ben", email="ben@support.example", groups=["desk"])
        desk.add_agent("tom", "Tom", email="tom@support.example", groups=["tech"])
        desk.create_contact("Bob", emails=["bob@example.com"], contact_id="bob")

        def open_(subject: str, **kwargs: Any) -> str:
            return desk.open_ticket(BOB, requester="bob", subject=subject, **kwargs).id

        # Mon 09:00: X (form "access") in L1, assigned to Ana at once.
        x = open_("X", group="desk", custom_fields={"form": "access"})
        desk.assign(x, ANA, agent="ana")
        clock.set(MON + H)  # Mon 10:00: Y (form "billing"), Ben's, still open on Wednesday.
        y = open_("Y", group="desk", custom_fields={"form": "billing"})
        desk.assign(y, ANA, agent="ben")
        clock.set(MON + 2 * H)  # Mon 11:00: X waits on the requester (not counted) ...
        desk.set_status(x, ANA, "pending")
        clock.set(MON + 6 * H)  # ... until 15:00.
        desk.set_status(x, ANA, "open")
        clock.set(MON + 7 * H)  # Mon 16:00: X goes up to L2, unassigned ...
        desk.escalate(x, ANA)
        clock.set(TUE + H)  # ... until Tom takes it on Tue 10:00 ...
        desk.assign(x, ANA, agent="tom", group="tech")
        clock.set(TUE + 3 * H)  # ... and solves it at 12:00.
        desk.resolve(x, Actor.agent("tom"))
        clock.set(TUE + 4 * H)
        open_("Z")  # no form
        report = desk.kpis(now=WED, fields=["form"], period="day")
        data = report.to_data()
        # X: 3 h in L1 (09:00-11:00, 15:00-16:00; office time too); 20 h in L2 (Mon 16:00 to
        # Tue 12:00), 4 h of office time (16:00-17:00, 09:00-12:00). Y is still in L1.
        tiers = {e["tier"]: e for e in data["escalation"]}
        assert tiers[1]["time"]["count"] == 1
        assert tiers[1]["time"]["median_seconds"] == seconds(3)
        assert tiers[1]["time_business"]["median_seconds"] == seconds(3)
        assert tiers[2]["time"]["mean_seconds"] == seconds(20)
        assert tiers[2]["time_business"]["mean_seconds"] == seconds(4)
        # Handle time: Ana 3 h on X (not while pending, not after it left her); Tom 2 h;
        # Ben's span on Y is still running (it counts once it ends).
        agents = {a["agent"]: a for a in data["agents"]}
        assert agents["ana"]["handle_seconds"] == seconds(3)
        assert agents["ana"]["handle_business_seconds"] == seconds(3)
        assert agents["tom"]["handle_seconds"] == seconds(2)
        assert agents["tom"]["handle_business_seconds"] == seconds(2)
        assert "ben" not in agents
        assert data["volume"]["by_field"] == [
            {
                "field": "form",
                "over_time": [
                    {
                        "start": "2026-01-05",
                        "counts": [{"key": "access", "count": 1}, {"key": "billing", "count": 1}],
                    },
                    {"start": "2026-01-06", "counts": [{"key": None, "count": 1}]},
                ],
            }
        ]
        # Ben's span ends when Y is solved: Mon 10:00 to Wed 10:00, 48 h (7 + 8 + 1 = 16 h of
        # office time).
        clock.set(WED + H)
        desk.resolve(y, Actor.agent("ben"))
        later = desk.kpis(now=WED + H).to_data()
        ben = next(a for a in later["agents"] if a["agent"] == "ben")
        assert ben["handle_seconds"] == seconds(48)
        assert ben["handle_business_seconds"] == seconds(16)
        projection = desk.kpi_projection()
        assert desk.kpis(now=WED + H, fields="form", projection=projection) == desk.kpis(
            now=WED + H, fields="form"
        )
    finally:
        desk.shutdown()


@pytest.fixture(params=sorted(STORES))
def store_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_filters(desk: Helpdesk) -> None:
    assert desk.kpis(since=MON).tickets == 4  # B was opened on Friday
    assert desk.kpis(since=MON, until=TUE).tickets == 2
    assert desk.kpis(group="tech").tickets == 1
    assert desk.kpis(group=["tech", "desk"]).tickets == 2
    assert desk.kpis(channel="email").tickets == 2
    assert desk.kpis(tags="vip").backlog == 1
    assert desk.kpis(priority="critical").tickets == 1
    assert desk.kpis(organization="acme").tickets == 0
    week = desk.kpis(period="week").to_data()["volume"]["by_channel"]
    assert [row["start"] for row in week] == ["2025-12-29", "2026-01-05"]
    # Agent activity counts what was done in the range.
    tuesday = desk.kpis(since=TUE, until=WED)
    assert [(a.agent_id, a.public_replies, a.solved) for a in tuesday.agents] == [
        ("ana", 0, 1),
        ("ben", 2, 1),
    ]


def test_as_of_an_earlier_instant(desk: Helpdesk) -> None:
    report = desk.kpis(now=MON + 2 * H + H / 2)  # Mon 11:30: B solved, A not yet
    assert report.tickets == 2
    assert report.resolution.count == 1
    assert report.first_contact_resolution.numerator == 1
    assert report.backlog == 1


def test_bad_filters_are_refused(desk: Helpdesk) -> None:
    with pytest.raises(ValidationError):
        desk.kpis(since=TUE, until=MON)
    with pytest.raises(ValidationError):
        desk.kpis(period="month")
    with pytest.raises(ValidationError):
        desk.kpis(priority="urgentest")


@pytest.mark.parametrize("measured", [True, False], ids=["sla", "no-sla"])
def test_merged_tickets(measured: bool) -> None:
    clock = FrozenClock(MON)
    config = DeskConfig(sla=SlaPolicySet((POLICY,)) if measured else None)
    desk = Helpdesk(MemoryStore(), config=config, clock=clock, entry_points=False)
    try:
        desk.add_agent("ana", "Ana", email="ana@support.example")
        desk.create_contact("Bob", emails=["bob@example.com"], contact_id="bob")
        source = desk.open_ticket(BOB, requester="bob", subject="VPN", body="down").id
        target = desk.open_ticket(BOB, requester="bob", subject="VPN again", body="down").id
        clock.set(MON + H)
        desk.reply(source, ANA, "on it")
        desk.merge(source, target, ANA)
        clock.set(MON + 2 * H)
        report = desk.kpis()
        # The merged ticket counts in volume and first response, is neither resolved nor in
        # the backlog; the comments it brought are no response on the target.
        assert report.tickets == 2
        assert report.first_response.count == 1
        assert report.first_response.median == H
        assert report.resolution.count == 0
        assert report.first_contact_resolution.denominator == 0
        assert report.backlog == 1
        if not measured:  # no policy: no business hours, no SLA
            assert report.first_response_business.count == 0
            assert report.sla == ()
            return
        assert report.first_response_business.median == H
        first, resolution = report.sla
        assert (first.achieved, first.pending) == (1, 1)
        # The merge stopped the source's resolution clock; the target's runs.
        assert (resolution.stopped, resolution.pending) == (1, 1)
    finally:
        desk.shutdown()


def test_the_projection_gives_the_same_report(desk: Helpdesk, tmp_path: Path) -> None:
    projection = desk.kpi_projection()
    assert projection.position == desk.store.last_position()  # type: ignore[attr-defined]
    assert len(projection) == 5  # every ticket of the worked example, merged one included
    for now in (WED, WED + 3 * 24 * H):  # later: pending SLA cycles are breached since
        for kwargs in ({}, {"group": "desk"}, {"since": MON, "period": "week"}):
            full = desk.kpis(now=now, **kwargs)
            kept = desk.kpis(now=now, projection=projection, **kwargs)
            assert kept.to_data() == full.to_data()
    with pytest.raises(ValidationError, match="as of then or later"):
        desk.kpis(now=MON, projection=projection)
    # A checkpoint, then new events: the loaded projection folds in only what follows.
    checkpoint = tmp_path / "kpis.projection"
    projection.save(checkpoint, desk.store)
    assert desk.store.cursor("kpi-projection") == projection.position  # type: ignore[attr-defined]
    later = WED + H
    desk.clock.set(later)  # type: ignore[attr-defined]
    ticket = desk.open_ticket(BOB, requester="bob", subject="Printer", body="jammed").id
    desk.reply(ticket, ANA, "on it")
    loaded = desk.kpi_projection(checkpoint)
    assert len(loaded) == 6
    assert loaded.position == desk.store.last_position()  # type: ignore[attr-defined]
    assert desk.kpis(now=later, projection=loaded).to_data() == desk.kpis(now=later).to_data()
    # Streamed from the checkpoint: its records, and the new ticket folded from the store.
    for now in (later, later + 3 * 24 * H):
        for kwargs in ({}, {"group": "desk"}, {"agent": "ana"}, {"since": MON, "period": "week"}):
            streamed = desk.kpis(now=now, checkpoint=checkpoint, **kwargs)
            assert streamed.to_data() == desk.kpis(now=now, **kwargs).to_data()
    with pytest.raises(ValidationError, match="as of then or later"):
        desk.kpis(now=MON, checkpoint=checkpoint)


def test_a_projection_needs_a_change_feed(tmp_path: Path) -> None:
    from helpkit.errors import ConfigError
    from helpkit.reports import KpiProjection

    class NoFeed(MemoryStore):
        capabilities = MemoryStore().capabilities - {"change_feed"}

    store = NoFeed()
    with pytest.raises(ConfigError, match="no change feed"):
        KpiProjection(None, None).update(store)
    store.close()


def test_a_checkpoint_of_another_store_is_refused(desk: Helpdesk, tmp_path: Path) -> None:
    from helpkit.errors import ConfigError

    checkpoint = tmp_path / "kpis.projection"
    desk.kpi_projection().save(checkpoint)
    other = Helpdesk(MemoryStore(), entry_points=False)
    try:
        with pytest.raises(ConfigError, match="made from another store"):
            other.kpi_projection(checkpoint)
    finally:
        other.shutdown()


class _Planted:
    """What a tampered checkpoint would make the reader build: a call of its choice."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_a_checkpoint_that_is_none_is_refused_and_builds_nothing(
    desk: Helpdesk, tmp_path: Path
) -> None:
    import pickle

    checkpoint = tmp_path / "kpis.projection"
    desk.kpi_projection().save(checkpoint)
    whole = checkpoint.read_bytes()
    checkpoint.write_bytes(whole[: len(whole) // 2])  # cut short
    with pytest.raises(ValidationError, match="not a KPI projection checkpoint"):
        desk.kpi_projection(checkpoint)
    checkpoint.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValidationError, match="not a KPI projection checkpoint"):
        desk.kpi_projection(checkpoint)
    marker = tmp_path / "planted"
    checkpoint.write_bytes(pickle.dumps((1, 0, None, {"t": _Planted(marker)})))
    with pytest.raises(ValidationError, match="holds no pathlib"):
        desk.kpi_projection(checkpoint)
    assert not marker.exists()  # refused before anything of it was called


@pytest.mark.parametrize(
    "planted",
    [
        pytest.param(lambda: Impact.HIGH, id="another enumeration of helpkit.priority"),
        pytest.param(lambda: Urgency.LOW, id="Urgency"),
        pytest.param(lambda: KpiFilter(), id="another attrs class of helpkit.kpis"),
        pytest.param(lambda: Period.DAY, id="an enumeration of helpkit.kpis"),
        pytest.param(lambda: ActorKind.AGENT, id="another enumeration of helpkit.tickets"),
        pytest.param(lambda: Actor.agent("a1"), id="an attrs class of helpkit.tickets"),
    ],
)
def test_a_checkpoint_holding_another_class_of_helpkit_is_refused_before_it_is_built(
    desk: Helpdesk, tmp_path: Path, planted: Callable[[], object]
) -> None:
    import pickle

    from helpkit.reports import report_from_checkpoint

    checkpoint = tmp_path / "kpis.projection"
    desk.kpi_projection().save(checkpoint)
    with checkpoint.open("rb") as source:
        header = pickle.load(source)
        records = [pickle.load(source) for _ in range(header[3])]
        resume = [pickle.load(source) for _ in range(header[4])]
    value = planted()
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    # In the header, and beside a kept fact of a resumable fold: both read by the same
    # unpickler, which admits only the classes the current format writes.
    with_header = pickle.dumps((*header[:2], value, *header[3:]))
    ticket_id, (kept, policy, data) = next(iter(resume[0].items()))
    tampered = dict(resume[0])
    tampered[ticket_id] = (kept, policy, data, value)
    with_fold = pickle.dumps(header) + b"".join(map(pickle.dumps, [*records, tampered]))
    for whole in (with_header, with_fold):
        checkpoint.write_bytes(whole)
        with pytest.raises(ValidationError, match=f"holds no {name}"):
            desk.kpi_projection(checkpoint)
    checkpoint.write_bytes(with_header)
    with pytest.raises(ValidationError, match=f"holds no {name}"):
        report_from_checkpoint(
            checkpoint, desk.store, WED, policies=desk.config.sla, ladder=desk.config.tiers
        )


def test_an_older_checkpoint_is_built_anew_and_unreadable_folds_are_folded_again(
    desk: Helpdesk, tmp_path: Path
) -> None:
    import pickle
    import zlib

    checkpoint = tmp_path / "kpis.projection"
    desk.kpi_projection().save(checkpoint)
    # Format 7: a header, then every ticket's compact record, then the kept facts and
    # resumable folds of the active tickets, a chunk of tickets per pickle.
    with checkpoint.open("rb") as source:
        header = pickle.load(source)
        chunks = [pickle.load(source) for _ in range(header[3] + header[4])]
        assert source.read() == b""
    found, position, as_of, kept_chunks, resume_chunks = header
    assert (found, kept_chunks, resume_chunks) == (7, 1, 1)
    records, resume = chunks
    assert resume  # the worked example's active tickets
    assert len(records) == len(desk.kpi_projection())
    kept = {ticket_id: found_kept for ticket_id, (found_kept, _, _) in resume.items()}
    # Formats 2 to 6, written by earlier helpkits (one pickle, then chunks; 3 had no time per
    # tier and handle time; 6 its folds as JSON texts): the reader says so without building
    # them, and the desk builds anew.
    from helpkit.reports import KpiProjection, OutdatedCheckpointError

    fresh = desk.kpis().to_data()
    for older, state in (
        (2, (2, position, as_of, kept)),
        (3, (3, position, as_of, kept, resume)),
        (4, (4, position, as_of, kept, resume)),
        (5, (5, position, as_of, 1, 0)),
        (6, (6, position, as_of, 1, 1)),
    ):
        checkpoint.write_bytes(pickle.dumps(state) + pickle.dumps(kept))
        with pytest.raises(OutdatedCheckpointError, match=f"format {older}, written by an"):
            KpiProjection.load(checkpoint, desk.config.sla, None)
        rebuilt = desk.kpi_projection(checkpoint)
        assert desk.kpis(projection=rebuilt).to_data() == fresh
    # A chunk that is not a list of records, or records not of their shape: refused, by a
    # load and by a report streamed from the file.
    for spoilt in ([kept], [(*records[0][:-1],)], [("t", "x", *records[0][2:])]):
        checkpoint.write_bytes(pickle.dumps(header) + pickle.dumps(spoilt) + pickle.dumps(resume))
        with pytest.raises(ValidationError, match="not a KPI projection checkpoint"):
            desk.kpi_projection(checkpoint)
        with pytest.raises(ValidationError, match="not a KPI projection checkpoint"):
            desk.kpis(checkpoint=checkpoint)
    # A record that would build a class: refused before it is built.
    marker = tmp_path / "planted"
    planted = [(*records[0][:-1], _Planted(marker))]
    checkpoint.write_bytes(pickle.dumps(header) + pickle.dumps(planted) + pickle.dumps(resume))
    with pytest.raises(ValidationError, match="not a KPI projection checkpoint"):
        desk.kpis(checkpoint=checkpoint)
    assert not marker.exists()
    # Records of the right shape whose items do not add up (an instant out of range, an
    # activity of no items): a typed refusal from a report on the loaded projection and from
    # a report streamed from the file, never a builtin error.
    first = records[0]
    for spoilt in (
        [(first[0], 10**30, *first[2:])],
        [(*first[:21], ((),), *first[22:])],
    ):
        checkpoint.write_bytes(pickle.dumps(header) + pickle.dumps(spoilt) + pickle.dumps({}))
        with pytest.raises(ValidationError, match="does not add up"):
            desk.kpis(projection=KpiProjection.load(checkpoint, desk.config.sla, None))
        with pytest.raises(ValidationError, match="not a KPI projection checkpoint"):
            desk.kpis(checkpoint=checkpoint)
    # Kept facts built by the unpickler with fields of the wrong types (no validator runs):
    # refused when the file is read.
    some_id, (some_kept, some_name, some_fold) = next(iter(resume.items()))
    for field, junk in (("facts", "junk"), ("last_at", 5), ("dues", None)):
        forged = object.__new__(type(some_kept))
        for name in ("facts", "last_at", "dues"):
            object.__setattr__(forged, name, junk if name == field else getattr(some_kept, name))
        forged_resume = {**resume, some_id: (forged, some_name, some_fold)}
        checkpoint.write_bytes(
            pickle.dumps(header) + pickle.dumps(records) + pickle.dumps(forged_resume)
        )
        with pytest.raises(ValidationError, match="not a KPI projection checkpoint"):
            KpiProjection.load(checkpoint, desk.config.sla, None)
    # Kept facts of the right types holding what does not resume (an activity that is no
    # tuple of activities): the ticket is folded again from its history when next touched.
    import copy

    odd = copy.copy(some_kept.facts)
    object.__setattr__(odd, "activity", "junk")
    odd_kept = copy.copy(some_kept)
    object.__setattr__(odd_kept, "facts", odd)
    odd_resume = {**resume, some_id: (odd_kept, some_name, some_fold)}
    checkpoint.write_bytes(pickle.dumps(header) + pickle.dumps(records) + pickle.dumps(odd_resume))
    loaded = desk.kpi_projection(checkpoint)
    desk.note(some_id, ANA, "one more look")
    assert desk.kpis(projection=loaded).to_data() == desk.kpis().to_data()
    # Resumable folds of the right shape that do not read back: folded again from history.
    # Each spoilt in its own way (format 6's JSON text; a row of a wrong length, of a wrong
    # type, an instant out of range, an unknown enumeration value; a class to build; another
    # ticket's row), and not built: folded again from history.
    first_id = next(iter(resume))
    row, sla = pickle.loads(zlib.decompress(resume[first_id][2]))
    assert isinstance(row, tuple)  # the worked example's tickets are rows
    forms = [
        b'[{"id": 5}, [0]]',
        pickle.dumps((row[:-1], sla)),
        pickle.dumps(((5, *row[1:]), sla)),
        pickle.dumps(((*row[:11], 10**20, *row[12:]), sla)),
        pickle.dumps(((*row[:6], "nope", *row[7:]), sla)),
        pickle.dumps((_Planted(marker), sla)),
        pickle.dumps((("other", *row[1:]), sla)),
        pickle.dumps((row, [0])),
    ]
    for turn in range(len(forms)):
        spoiled = {
            ticket_id: (found_kept, name, zlib.compress(forms[(n + turn) % len(forms)]))
            for n, (ticket_id, (found_kept, name, _)) in enumerate(resume.items())
        }
        checkpoint.write_bytes(pickle.dumps(header) + pickle.dumps(records) + pickle.dumps(spoiled))
        read = KpiProjection.load(checkpoint, desk.config.sla, None)
        for ticket_id in resume:
            assert resume[ticket_id][1] == POLICY.name
            assert read._resumable(ticket_id, POLICY.name, POLICY) is None, (turn, ticket_id)
        loaded = desk.kpi_projection(checkpoint)
        assert loaded.resumable == len(resume)
        for ticket_id in resume:
            desk.note(ticket_id, ANA, "still on it")
        assert desk.kpis(projection=loaded).to_data() == desk.kpis().to_data()
        assert loaded.resumable == len(resume)
        assert not marker.exists()


def test_a_checkpoint_of_many_chunks_reads_back(
    desk: Helpdesk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import helpkit.reports

    monkeypatch.setattr(helpkit.reports, "_CHUNK", 2)  # the worked example's 5 tickets: 3
    monkeypatch.setattr(helpkit.reports, "_UNPACKED", 2)  # records packed during updates too
    checkpoint = tmp_path / "kpis.projection"
    projection = desk.kpi_projection()
    projection.save(checkpoint)
    loaded = desk.kpi_projection(checkpoint)
    assert (len(loaded), loaded.resumable) == (len(projection), projection.resumable)
    assert desk.kpis(projection=loaded) == desk.kpis()
    assert desk.kpis(checkpoint=checkpoint) == desk.kpis()
    assert desk.kpis(checkpoint=checkpoint, group="desk") == desk.kpis(group="desk")
    with pytest.raises(ValidationError, match="not both"):
        desk.kpis(checkpoint=checkpoint, projection=loaded)
    with pytest.raises(ValidationError, match="cannot be read"):
        desk.kpis(checkpoint=tmp_path / "missing.projection")
    whole = checkpoint.read_bytes()
    checkpoint.write_bytes(whole[: len(whole) - 40])  # its last chunk cut short
    with pytest.raises(ValidationError, match="not a KPI projection checkpoint"):
        desk.kpi_projection(checkpoint)
    checkpoint.write_bytes(whole[:200])  # its records cut short
    with pytest.raises(ValidationError, match="not a KPI projection checkpoint"):
        desk.kpis(checkpoint=checkpoint)
