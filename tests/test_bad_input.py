"""Bad input: every refused call raises a typed HelpkitError and writes nothing (issue #9).

A Hypothesis test drives every facade command with a mix of good and hostile arguments (wrong
types, huge numbers, lone surrogates, NUL, blanks, unknown ids) on both built-in stores. A call
that raises must raise a :class:`~helpkit.errors.HelpkitError` (never a raw ``TypeError``,
``AttributeError``, ``OverflowError`` or ``UnicodeEncodeError``), and the store's export must be
byte-identical to what it was before the call.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import (
    Actor,
    BusinessCalendar,
    DeskConfig,
    Helpdesk,
    HelpkitError,
    NotFoundError,
    PluginError,
    Priority,
    TicketQuery,
    ValidationError,
    hookimpl,
)
from helpkit.channels.recording import RecordingChannel
from helpkit.fields import CustomField, FieldKind, FieldSet
from helpkit.sla import SlaPolicy, SlaPolicySet, Targets
from helpkit.testing.clock import FrozenClock

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
ANN = Actor.agent("ann")
CONFIG = DeskConfig(
    fields=FieldSet([CustomField(name="product", kind=FieldKind.TEXT)]),
    sla=SlaPolicySet(
        [
            SlaPolicy(
                "std",
                BusinessCalendar.always("UTC"),
                dict.fromkeys(Priority, Targets(resolution=timedelta(hours=8))),
            )
        ]
    ),
)


def export(desk: Helpdesk, path: Path | None) -> str:
    """Everything the store holds, as text: the SQLite dump, or every record read back."""
    if path is not None:
        connection = sqlite3.connect(path)
        try:
            return "\n".join(connection.iterdump())
        finally:
            connection.close()
    store = desk.store
    parts: list[str] = []
    after: str | None = None
    while True:
        page = store.query(TicketQuery(limit=1000, after=after))
        for ticket in page.items:
            parts.append(repr(ticket))
            parts.extend(repr(event) for event in store.events(ticket.id))
        if page.next_cursor is None:
            break
        after = page.next_cursor
    parts.extend(repr(c) for c in store.find_contacts("", limit=10_000))
    parts.extend(repr(o) for o in store.find_organizations("", limit=10_000))
    parts.extend(repr(a) for a in store.list_agents())
    parts.extend(repr(g) for g in store.list_groups())
    return json.dumps(parts)


# ---------------------------------------------------------------- hostile values

_NASTY_TEXT = st.sampled_from(
    ["", " ", "\t\n", "x\x00y", "\ud800", "bad \udcff", "é" * 5000, "#", "#-1", "#0", "#1e3"]
)
GARBAGE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, -(2**63) - 1, 10**20, 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=5),
    _NASTY_TEXT,
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(object()),
    st.just(Actor.contact("nobody")),
    st.just(datetime(2026, 1, 1)),
)


def _maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly good values, sometimes garbage."""
    return st.one_of(good, good, GARBAGE)


TICKETS = st.sampled_from([1, 2, 3, "#1", "#2"])
ACTORS = st.sampled_from([ANN, Actor.agent("bea"), Actor.system("bot")])
STATUSES = st.sampled_from(["open", "pending", "on_hold", "solved", "closed", "bogus"])
BODIES = st.sampled_from(["Looking into it", "Thanks"])
EMAILS = st.sampled_from(["carol@acme.example", "new@acme.example", "dan@other.example"])


def _commands(desk: Helpdesk) -> dict[str, tuple[Callable[..., object], dict[str, Any]]]:
    """Facade commands and the strategies of their arguments."""
    m = _maybe
    return {
        "open_ticket": (
            lambda actor, **kw: desk.open_ticket(actor, **kw),
            {
                "actor": m(ACTORS),
                "requester": m(EMAILS),
                "subject": m(st.sampled_from(["VPN down", "Printer"])),
                "body": m(BODIES),
                "impact": m(st.sampled_from(["high", "low"])),
                "urgency": m(st.sampled_from(["medium"])),
                "channel": m(st.sampled_from(["web", "email"])),
                "tags": m(st.lists(st.sampled_from(["vpn", "x"]), max_size=2)),
                "custom_fields": m(st.just({"product": "vpn"})),
                "group": m(st.sampled_from(["l1", None])),
                "assignee": m(st.sampled_from(["ann", None])),
                "cc": m(st.lists(EMAILS, max_size=2)),
                "external_id": m(st.sampled_from(["<a@b>", None])),
                "public": m(st.booleans()),
            },
        ),
        "reply": (
            desk.reply,
            {
                "ref": m(TICKETS),
                "actor": m(ACTORS),
                "body": m(BODIES),
                "status": m(STATUSES),
                "channel": m(st.sampled_from(["email", "sms"])),
                "expected_seq": m(st.integers(0, 6)),
            },
        ),
        "note": (desk.note, {"ref": m(TICKETS), "actor": m(ACTORS), "body": m(BODIES)}),
        "requester_reply": (
            desk.requester_reply,
            {
                "ref": m(TICKETS),
                "body": m(BODIES),
                "external_id": m(st.just("<x@y>")),
                "in_reply_to": m(st.just("<a@b>")),
            },
        ),
        "assign": (
            desk.assign,
            {"ref": m(TICKETS), "actor": m(ACTORS), "agent": m(st.sampled_from(["ann", None]))},
        ),
        "transfer": (
            desk.transfer,
            {"ref": m(TICKETS), "actor": m(ACTORS), "group": m(st.sampled_from(["l1", "l2"]))},
        ),
        "set_status": (
            desk.set_status,
            {
                "ref": m(TICKETS),
                "actor": m(ACTORS),
                "status": m(STATUSES),
                "reason": m(st.just("why")),
            },
        ),
        "resolve": (desk.resolve, {"ref": m(TICKETS), "actor": m(ACTORS)}),
        "close": (desk.close, {"ref": m(TICKETS), "actor": m(ACTORS)}),
        "reopen": (desk.reopen, {"ref": m(TICKETS), "actor": m(ACTORS)}),
        "prioritize": (
            desk.prioritize,
            {"ref": m(TICKETS), "actor": m(ACTORS), "impact": m(st.sampled_from(["high"]))},
        ),
        "set_subject": (
            desk.set_subject,
            {"ref": m(TICKETS), "actor": m(ACTORS), "subject": m(st.just("New subject"))},
        ),
        "tag": (
            lambda ref, actor, tag: desk.tag(ref, actor, tag),
            {"ref": m(TICKETS), "actor": m(ACTORS), "tag": m(st.just("vpn"))},
        ),
        "follow": (
            desk.follow,
            {"ref": m(TICKETS), "actor": m(ACTORS), "follower": m(st.just(ANN))},
        ),
        "set_fields": (
            desk.set_fields,
            {"ref": m(TICKETS), "actor": m(ACTORS), "values": m(st.just({"product": "mail"}))},
        ),
        "link": (desk.link, {"ref": m(TICKETS), "actor": m(ACTORS), "other": m(TICKETS)}),
        "merge": (desk.merge, {"source": m(TICKETS), "target": m(TICKETS), "actor": m(ACTORS)}),
        "escalate": (desk.escalate, {"ref": m(TICKETS), "actor": m(ACTORS)}),
        "ticket": (desk.ticket, {"ref": m(TICKETS)}),
        "history": (desk.history, {"ref": m(TICKETS)}),
        "sla": (desk.sla, {"ref": m(TICKETS), "now": m(st.just(START))}),
        "tickets": (
            lambda **kw: desk.tickets(**kw),
            {
                "limit": m(st.just(10)),
                "statuses": m(STATUSES),
                "after": m(st.sampled_from([None, "eyJ4IjoxfQ", "%%%", "bm90IGpzb24"])),
                "sort": m(st.sampled_from(["priority", "-created", "deadline"])),
                "categories": m(st.sampled_from([["open"], "pending"])),
                "priorities": m(st.sampled_from([["P1"], 2, "critical"])),
                "tags": m(st.sampled_from([["vpn"], "x"])),
                "unassigned": m(st.booleans()),
                "deadline_before": m(st.just(START)),
                "assignee_ids": m(st.just({"ann"})),
            },
        ),
        "create_contact": (
            desk.create_contact,
            {
                "name": m(st.just("Zed")),
                "emails": m(st.lists(EMAILS, max_size=1)),
                "vip": m(st.booleans()),
                "phone": m(st.just("+33 1 23")),
                "language": m(st.just("fr")),
            },
        ),
        "update_contact": (
            lambda contact, **kw: desk.update_contact(contact, **kw),
            {"contact": m(st.just("carol")), "name": m(st.just("Caroline"))},
        ),
        "create_organization": (
            desk.create_organization,
            {
                "name": m(st.just("Initech")),
                "domains": m(st.lists(st.just("initech.example"), max_size=1)),
                "vip": m(st.booleans()),
            },
        ),
        "find_contacts": (
            desk.find_contacts,
            {"text": m(st.just("car")), "limit": m(st.just(5))},
        ),
        "find_organizations": (desk.find_organizations, {"text": m(st.just("ac"))}),
        "contact_by_email": (desk.contact_by_email, {"email": m(EMAILS)}),
        "contact_for_email": (desk.contact_for_email, {"email": m(EMAILS)}),
        "add_agent": (
            desk.add_agent,
            {
                "agent_id": m(st.just("cid")),
                "name": m(st.just("Cid")),
                "groups": m(st.just(["l1"])),
                "active": m(st.booleans()),
            },
        ),
        "add_group": (
            desk.add_group,
            {"group_id": m(st.just("l3")), "name": m(st.just("L3")), "tier": m(st.just(3))},
        ),
        "sweep": (desk.sweep, {"batch": m(st.just(10)), "now": m(st.just(START))}),
        "tier_times": (desk.tier_times, {"ref": m(TICKETS), "now": m(st.just(START))}),
        "de_escalate": (desk.de_escalate, {"ref": m(TICKETS), "actor": m(ACTORS)}),
        "unlink": (desk.unlink, {"ref": m(TICKETS), "actor": m(ACTORS), "other": m(TICKETS)}),
        "untag": (
            lambda ref, actor, tag: desk.untag(ref, actor, tag),
            {"ref": m(TICKETS), "actor": m(ACTORS), "tag": m(st.just("vpn"))},
        ),
        "unfollow": (
            desk.unfollow,
            {"ref": m(TICKETS), "actor": m(ACTORS), "follower": m(st.just(ANN))},
        ),
        "live_ticket": (desk.live_ticket, {"ref": m(TICKETS)}),
        "conversation": (
            desk.conversation,
            {"ref": m(TICKETS), "include_internal": m(st.booleans())},
        ),
        "tickets_of_contact": (
            desk.tickets_of_contact,
            {"contact": m(st.just("carol")), "limit": m(st.just(5))},
        ),
        "organization_by_domain": (
            desk.organization_by_domain,
            {"domain": m(st.just("acme.example"))},
        ),
        "agent": (desk.agent, {"agent_id": m(st.just("ann"))}),
        "group": (desk.group, {"group_id": m(st.just("l1"))}),
        "update_organization": (
            lambda organization, **kw: desk.update_organization(organization, **kw),
            {"organization": m(st.just("acme")), "segment": m(st.just("smb"))},
        ),
    }


@contextlib.contextmanager
def _desk(kind: str) -> Iterator[tuple[Helpdesk, Path | None]]:
    """A small helpdesk, new for each example (so its export stays small)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "desk.db" if kind == "sqlite" else None
        url = "memory://" if path is None else f"sqlite:///{path}"
        with Helpdesk(
            url,
            config=CONFIG,
            clock=FrozenClock(START),
            entry_points=False,
            channels=[RecordingChannel("email")],
        ) as desk:
            desk.add_group("l1", "Service desk", tier=1)
            desk.add_group("l2", "Technicians", tier=2)
            desk.add_agent("ann", "Ann", email="ann@help.example", groups=["l1"])
            desk.add_agent("bea", "Bea", groups=["l2"], active=False)
            desk.create_organization("Acme", domains=["acme.example"], organization_id="acme")
            desk.create_contact("Carol", emails=["carol@acme.example"], contact_id="carol")
            for subject in ("VPN down", "Printer"):
                desk.open_ticket(ANN, requester="carol", subject=subject, body="Help")
            yield desk, path


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_refused_calls_raise_typed_errors_and_write_nothing(kind: str, data: st.DataObject) -> None:
    with _desk(kind) as (desk, path):
        _drive(desk, path, data)


def _drive(desk: Helpdesk, path: Path | None, data: st.DataObject) -> None:
    commands = _commands(desk)
    for _ in range(8):
        name = data.draw(st.sampled_from(sorted(commands)), label="command")
        call, arguments = commands[name]
        # Each argument is given (good or garbage) or left out.
        kwargs = {
            key: data.draw(strategy, label=key)
            for key, strategy in arguments.items()
            if key in ("ref", "actor", "source", "target", "body") or data.draw(st.booleans())
        }
        before = export(desk, path)
        try:
            call(**kwargs)
        except HelpkitError:
            assert export(desk, path) == before, f"{name}({kwargs!r}) wrote before refusing"
        except TypeError as exc:
            # A missing required argument is Python's own call error, not helpkit's.
            if "required" not in str(exc) and "missing" not in str(exc):
                raise
            assert export(desk, path) == before
        if isinstance(desk.clock, FrozenClock):
            desk.clock.advance(timedelta(minutes=data.draw(st.integers(0, 600))))


# ---------------------------------------------------------------- the reported calls


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_the_reported_calls_raise_validation_errors(kind: str) -> None:
    with _desk(kind) as (desk, path):
        ticket = desk.ticket(1)
        before = export(desk, path)
        calls: list[Callable[[], object]] = [
            lambda: desk.ticket(2**63),
            lambda: desk.ticket("\ud800"),
            lambda: desk.ticket(1.5),  # type: ignore[arg-type]
            lambda: desk.ticket("#99999999999999999999"),
            lambda: desk.find_contacts("a", limit=10**20),
            lambda: desk.find_contacts(None),  # type: ignore[arg-type]
            lambda: desk.set_status(ticket, ANN, ["open"]),  # type: ignore[arg-type]
            lambda: desk.open_ticket(
                ANN,
                requester="carol",
                subject="x",
                custom_fields=[1],  # type: ignore[arg-type]
            ),
            lambda: desk.open_ticket(ANN, requester="carol", subject="x", tags=None),  # type: ignore[arg-type]
            lambda: desk.add_agent("zed", "Zed", groups=None),  # type: ignore[arg-type]
            lambda: desk.tickets(bogus=1),
            lambda: desk.tickets(statuses=object()),
            lambda: desk.tickets(after="not a cursor"),
        ]
        for call in calls:
            with pytest.raises(ValidationError):
                call()
        assert export(desk, path) == before


def test_a_refused_open_creates_no_contact() -> None:
    with _desk("sqlite") as (desk, path):
        before = export(desk, path)
        with pytest.raises(ValidationError, match="subject"):
            desk.open_ticket(ANN, requester="someone.new@acme.example", subject="  ", body="x")
        with pytest.raises(ValidationError):
            desk.open_ticket(
                ANN, requester="carol", subject="ok", cc=["newcc@acme.example"], impact="huge"
            )
        assert export(desk, path) == before
        with pytest.raises(NotFoundError):
            desk.contact_by_email("someone.new@acme.example")


class _Broken:
    """A plugin whose hooks and factories raise plain Python errors."""

    @hookimpl
    def helpkit_register_stores(self, register: Callable[..., None]) -> None:
        register("broken", self.store)

    @hookimpl
    def helpkit_register_channels(self, register: Callable[..., None]) -> None:
        register("broken", self.channel)

    def store(self, url: str) -> object:
        raise KeyError("no driver")

    def channel(self, options: object) -> object:
        raise RuntimeError("no server")


class _FailsToRegister:
    @hookimpl
    def helpkit_register_stores(self, register: Callable[..., None]) -> None:
        raise AttributeError("oops")


def test_plugin_errors_are_plugin_errors() -> None:
    with pytest.raises(PluginError, match=r"store factory for 'broken'.*KeyError"):
        Helpdesk("broken://x", plugins=[_Broken()], entry_points=False)
    with pytest.raises(PluginError, match=r"channel factory 'broken'.*no server"):
        Helpdesk(
            plugins=[_Broken()], entry_points=False, config={"channels": {"b": {"type": "broken"}}}
        )
    with pytest.raises(PluginError, match=r"registering stores.*oops"):
        Helpdesk(plugins=[_FailsToRegister()], entry_points=False)
