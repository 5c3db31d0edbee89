"""Customer satisfaction (CSAT): signed rating tokens (Hypothesis: round trip, any tampered
character refused, the expiry boundary), the survey offer as a timer through the sweep and the
outbox, desk.rate and its refusals, the bad-rating rule, and the CSAT KPIs."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit import Helpdesk, lifecycle
from helpkit.channels.recording import RecordingChannel
from helpkit.cli import main
from helpkit.cli._report import csv_rows
from helpkit.config import DeskConfig
from helpkit.errors import (
    ConfigError,
    InvalidTransitionError,
    RatingError,
    ValidationError,
)
from helpkit.events import SatisfactionOffered, SatisfactionRated, StatusChanged
from helpkit.rating_tokens import RatingTokens
from helpkit.report_html import render_html
from helpkit.satisfaction import CsatConfig, Raters, offer_due
from helpkit.testing.clock import FrozenClock
from helpkit.thread_tokens import ThreadTokens, sent_ticket_id
from helpkit.tickets import Actor, Ticket
from open_desks import opened
from postgres_fixtures import fresh_schema

SECRET = "a desk secret of some length"
FRIDAY = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)  # a Friday
ANA = Actor.agent("ana")
CSAT: dict[str, Any] = {"enabled": True, "offer_after": "24h", "expires_after": "7d"}
_TOKENS = RatingTokens(ThreadTokens(SECRET))


# ------------------------------------------------------------------ tokens

_IDS = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1)
_INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@given(_IDS, _IDS, _INSTANTS)
def test_a_token_says_what_it_was_signed_with(ticket: str, contact: str, expires: datetime) -> None:
    token = _TOKENS.sign(ticket, contact, expires)
    assert token.isascii() and all(c.isalnum() or c in "-_." for c in token)
    found = _TOKENS.verify(token, expires - timedelta(microseconds=1))
    assert (found.ticket_id, found.contact_id, found.expires_at) == (ticket, contact, expires)
    with pytest.raises(RatingError, match="not signed by this desk"):
        RatingTokens(ThreadTokens(SECRET + "!")).verify(token, expires - timedelta(days=1))


@given(_IDS, _IDS, st.data())
@settings(max_examples=300)
def test_any_tampered_character_is_refused(ticket: str, contact: str, data: st.DataObject) -> None:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    token = _TOKENS.sign(ticket, contact, expires)
    where = data.draw(st.integers(0, len(token) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ "
    new = data.draw(st.sampled_from(alphabet).filter(lambda c: c != token[where]))
    tampered = token[:where] + new + token[where + 1 :]
    with pytest.raises(RatingError):
        _TOKENS.verify(tampered, expires - timedelta(days=1))
    cut = data.draw(st.integers(0, len(token) - 1))
    with pytest.raises(RatingError):
        _TOKENS.verify(token[:cut], expires - timedelta(days=1))


@given(_INSTANTS)
def test_a_token_is_valid_strictly_before_its_expiry(expires: datetime) -> None:
    token = _TOKENS.sign("t-1", "c-1", expires)
    assert _TOKENS.verify(token, expires - timedelta(microseconds=1)).ticket_id == "t-1"
    for late in (expires, expires + timedelta(microseconds=1)):
        with pytest.raises(RatingError, match="expired"):
            _TOKENS.verify(token, late)


@pytest.mark.parametrize("token", [None, 42, "", "hkr1", "hkr1..", "x" * 5000, "hk1-t-abc"])
def test_what_is_no_token_is_refused(token: object) -> None:
    with pytest.raises(RatingError, match="not a rating token"):
        _TOKENS.verify(token, FRIDAY)


def test_the_rating_signature_is_not_a_thread_signature() -> None:
    tokens = ThreadTokens(SECRET)
    assert tokens.digest("csat", b"t-1") != tokens.digest("other", b"t-1")
    assert tokens.sign("t-1").rsplit("-", 1)[1] not in _TOKENS.sign("t-1", "c", FRIDAY)


# ------------------------------------------------------------------ a desk


def _desk(
    csat: dict[str, Any] | None = None, store: str = "memory://", **extra: Any
) -> tuple[Helpdesk, FrozenClock, RecordingChannel]:
    clock = FrozenClock(FRIDAY)
    channel = RecordingChannel("email")
    config = {"csat": {**CSAT, **(csat or {})}, **extra}
    desk = opened(
        Helpdesk(
            store, config=config, clock=clock, channels=[channel], secret=SECRET, delivery="sync"
        )
    )
    if not desk.agents():
        desk.add_group("l1", "Service desk")
        desk.add_agent("ana", "Ana Lopez", email="ana@help.example", groups=["l1"])
        desk.add_agent("bo", "Bo Berg", email="bo@help.example", groups=["l1"])
    return desk, clock, channel


def _solved(desk: Helpdesk, *, cc: tuple[str, ...] = ()) -> Ticket:
    carla = desk.contact_for_email("carla@client.example", name="Carla Diaz")
    ticket = desk.open_ticket(
        ANA,
        requester=carla,
        subject="Printer",
        body="Broken",
        group="l1",
        assignee="ana",
        cc=cc,
    )
    return desk.resolve(ticket, ANA, comment="Fixed.")


def _offers(desk: Helpdesk, ticket: Ticket) -> list[SatisfactionOffered]:
    return [e for e in desk.history(ticket.id) if isinstance(e, SatisfactionOffered)]


def _kinds(channel: RecordingChannel) -> list[str]:
    return [m.kind for m in channel.messages]


def test_the_offer_is_due_offer_after_the_solving_in_calendar_time() -> None:
    desk, clock, channel = _desk()
    ticket = _solved(desk)
    due = FRIDAY + timedelta(hours=24)  # Saturday: calendar hours, not business hours
    assert ticket.next_check == due and offer_due(ticket, desk.config.csat) == due
    clock.set(due - timedelta(seconds=1))
    assert desk.sweep().satisfaction_offers == 0 and not _offers(desk, ticket)
    clock.set(due + timedelta(minutes=5))
    assert desk.sweep().satisfaction_offers == 1
    (offer,) = _offers(desk, ticket)
    assert offer.actor == Actor.system("csat") and offer.at == due + timedelta(minutes=5)
    assert offer.recipients == (ticket.requester_id,)
    assert offer.expires_at == offer.at + timedelta(days=7)
    after = desk.ticket(ticket.id)
    assert after.satisfaction_offered_at == offer.at and after.next_check is None
    assert desk.sweep(due + timedelta(days=3)).satisfaction_offers == 0  # once
    (message,) = [m for m in channel.messages if m.kind == "csat_offer"]
    assert message.idempotency_key == f"{ticket.id}-{offer.seq}-csat_offer"
    assert message.to[0].address == "carla@client.example"
    assert "helpkit-rate:hkr1." in message.body and "How did we do?" in message.subject
    token = message.body.split("helpkit-rate:", 1)[1].split()[0]
    assert token == desk.rating_token(ticket)
    assert "Auto-Submitted" in message.headers


def test_reopening_before_the_offer_cancels_it_and_a_new_solving_offers_again() -> None:
    desk, clock, _ = _desk()
    ticket = _solved(desk)
    clock.advance(hours=3)
    ticket = desk.reopen(ticket, ANA)
    assert ticket.next_check is None  # no offer due (and no SLA on this desk)
    assert desk.sweep(FRIDAY + timedelta(days=2)).satisfaction_offers == 0
    assert not _offers(desk, ticket)
    clock.set(FRIDAY + timedelta(days=2))
    ticket = desk.resolve(ticket, ANA)
    assert ticket.next_check == FRIDAY + timedelta(days=3)
    assert desk.sweep(FRIDAY + timedelta(days=3)).satisfaction_offers == 1
    assert len(_offers(desk, ticket)) == 1


def test_a_disabled_desk_offers_nothing() -> None:
    desk, _, channel = _desk({"enabled": False})
    ticket = _solved(desk)
    assert ticket.next_check is None
    assert desk.sweep(FRIDAY + timedelta(days=3)).satisfaction_offers == 0
    assert "csat_offer" not in _kinds(channel)


def test_a_closed_ticket_is_offered_too_and_a_merged_one_never() -> None:
    desk, clock, _ = _desk()
    closed = desk.close(_solved(desk), ANA)
    merged = _solved(desk)
    target = desk.open_ticket(ANA, requester="zed@client.example", subject="Other")
    desk.reopen(merged, ANA)
    desk.merge(merged, target, ANA)
    clock.set(FRIDAY + timedelta(days=2))
    assert desk.sweep().satisfaction_offers == 1
    assert len(_offers(desk, closed)) == 1 and not _offers(desk, merged)


def test_concurrent_sweepers_offer_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    desk, _, _ = _desk(store=url)
    tickets = [_solved(desk) for _ in range(20)]
    later = FRIDAY + timedelta(days=1, hours=1)
    config = {"csat": CSAT}
    sweepers = [
        opened(Helpdesk(url, config=config, clock=FrozenClock(later), secret=SECRET))
        for _ in range(4)
    ]
    threads = [threading.Thread(target=s.sweep) for s in sweepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ticket in tickets:
        assert len(_offers(desk, ticket)) == 1


def test_followers_are_offered_their_own_link_in_their_language() -> None:
    desk, clock, channel = _desk({"who": "requester_and_followers"})
    desk.create_contact("Dora Weiss", emails=["dora@client.example"], language="de-AT")
    ticket = _solved(desk, cc=("dora@client.example",))
    clock.set(FRIDAY + timedelta(days=1))
    desk.sweep()
    (offer,) = _offers(desk, ticket)
    dora = desk.contact_by_email("dora@client.example")
    assert set(offer.recipients) == {ticket.requester_id, dora.id}
    messages = {m.to[0].actor_id: m for m in channel.messages if m.kind == "csat_offer"}
    assert messages[dora.id].subject.startswith(f"[{ticket.reference}] Wie waren wir?")
    assert messages[dora.id].idempotency_key == f"{ticket.id}-{offer.seq}-csat_offer-{dora.id}"
    assert messages[ticket.requester_id].idempotency_key == f"{ticket.id}-{offer.seq}-csat_offer"
    link = desk.rating_link(ticket, dora.id)
    assert link in messages[dora.id].body and link not in messages[ticket.requester_id].body
    rated = desk.rate(link.removeprefix("helpkit-rate:"), "good")
    assert rated.satisfaction == "good"
    assert desk.history(ticket.id)[-1].actor == Actor.contact(dora.id)


def test_the_hosts_page_url_carries_the_token() -> None:
    desk, _clock, _ = _desk({"url": "https://support.example/rate?token={token}"})
    ticket = _solved(desk)
    desk.sweep(FRIDAY + timedelta(days=1))
    link = desk.rating_link(ticket)
    assert link == f"https://support.example/rate?token={desk.rating_token(ticket)}"


# ------------------------------------------------------------------ rating


def _offered(desk: Helpdesk, clock: FrozenClock, **solved: Any) -> tuple[Ticket, str]:
    ticket = _solved(desk, **solved)
    clock.set(max(clock.now(), ticket.solved_at or FRIDAY) + timedelta(days=1))
    desk.sweep()
    return desk.ticket(ticket.id), desk.rating_token(ticket)


def test_a_rating_is_recorded_and_the_latest_wins() -> None:
    desk, clock, _ = _desk()
    ticket, token = _offered(desk, clock)
    rated = desk.rate(token, "good", "  Quick, thanks  ")
    assert rated.satisfaction == "good" and rated.status == "solved"
    first = desk.history(ticket.id)[-1]
    assert isinstance(first, SatisfactionRated)
    assert (first.rating, first.comment, first.previous) == ("good", "Quick, thanks", None)
    assert first.actor == Actor.contact(ticket.requester_id)
    clock.advance(hours=1)
    rated = desk.rate(token, "bad")
    assert rated.satisfaction == "bad"
    ratings = [e for e in desk.history(ticket.id) if isinstance(e, SatisfactionRated)]
    assert [(e.rating, e.previous) for e in ratings] == [("good", None), ("bad", "good")]
    assert desk.kpis().satisfaction.bad == 1


def _unchanged(desk: Helpdesk, ticket: Ticket) -> tuple[Ticket, int]:
    return desk.ticket(ticket.id), len(desk.history(ticket.id))


def test_refused_ratings_leave_the_store_as_it_was() -> None:
    desk, clock, _ = _desk()
    ticket, token = _offered(desk, clock, cc=("dora@client.example",))
    before = _unchanged(desk, ticket)
    dora = desk.contact_by_email("dora@client.example")
    follower = _TOKENS.sign(ticket.id, dora.id, clock.now() + timedelta(days=1))
    stranger = _TOKENS.sign("no-such-ticket", ticket.requester_id, clock.now() + timedelta(days=1))
    other_desk = RatingTokens(ThreadTokens("another secret, long enough"))
    for bad_token, message in (
        (follower, "may not rate"),  # followers may not rate on this desk (who = requester)
        (stranger, "names no ticket"),
        (other_desk.sign(ticket.id, ticket.requester_id, FRIDAY + timedelta(days=9)), "signed"),
        (token[:-1] + ("A" if token[-1] != "A" else "B"), "signed"),
        ("rubbish", "not a rating token"),
    ):
        with pytest.raises(RatingError, match=message):
            desk.rate(bad_token, "good")
    with pytest.raises(ValidationError, match="'good' or 'bad'"):
        desk.rate(token, "meh")
    with pytest.raises(ValidationError):
        desk.rate(token, "good", "nul\x00")
    clock.advance(days=7)
    with pytest.raises(RatingError, match="expired"):
        desk.rate(token, "good")
    assert _unchanged(desk, ticket) == before


def test_no_link_before_an_offer_and_none_for_another_contact() -> None:
    desk, _, _ = _desk()
    ticket = _solved(desk)
    with pytest.raises(InvalidTransitionError, match="no satisfaction survey"):
        desk.rating_link(ticket)
    desk.sweep(FRIDAY + timedelta(days=1))
    with pytest.raises(RatingError, match="not offered"):
        desk.rating_link(ticket, "someone-else")


def test_csat_needs_a_secret_and_a_valid_configuration() -> None:
    with pytest.raises(ConfigError, match="needs a desk secret"):
        Helpdesk(config={"csat": {"enabled": True}})
    without = opened(Helpdesk())
    with pytest.raises(RatingError, match="no secret"):
        without.rate("hkr1.x.y", "good")
    for table, message in (
        ({"enabled": "yes"}, "true or false"),
        ({"offer_after": "soon"}, "bad duration"),
        ({"expires_after": "0s"}, "positive"),
        ({"who": "everyone"}, "requester_and_followers"),
        ({"bad_rating": ["shout"]}, "reopen"),
        ({"url": "https://x.example/rate"}, "{token}"),
        ({"url": "https://x.example/{token}/{other}"}, "{token}"),
        ({"colour": "red"}, "unknown keys colour"),
    ):
        with pytest.raises(ConfigError, match=message):
            DeskConfig.from_dict({"csat": table})
    loaded = DeskConfig.from_dict({"csat": {**CSAT, "who": "requester_and_followers"}})
    assert loaded.csat == CsatConfig(
        enabled=True, offer_after=timedelta(hours=24), who=Raters.REQUESTER_AND_FOLLOWERS
    )


# ------------------------------------------------------------------ the bad-rating rule


def test_a_bad_rating_reopens_and_notifies_the_assignee_and_group() -> None:
    desk, clock, channel = _desk({"bad_rating": ["reopen", "notify"]})
    ticket, token = _offered(desk, clock)
    rated = desk.rate(token, "bad", "Still broken")
    assert rated.status == "open"
    reopened = desk.history(ticket.id)[-2]
    assert isinstance(reopened, StatusChanged) and reopened.reason == "bad satisfaction rating"
    (notice,) = [m for m in channel.messages if "Bad satisfaction rating" in m.subject]
    assert {r.actor_id for r in notice.to} == {"ana", "bo"}
    assert "Carla Diaz rated ticket" in notice.body and "Still broken" in notice.body
    # A good rating of the reopened ticket changes no status and tells no one.
    sent = len(channel.messages)
    assert desk.rate(token, "good").status == "open"
    assert len(channel.messages) == sent


def test_without_the_rule_a_bad_rating_is_only_recorded() -> None:
    desk, clock, channel = _desk({"bad_rating": []})
    _ticket, token = _offered(desk, clock)
    sent = len(channel.messages)
    rated = desk.rate(token, "bad")
    assert rated.status == "solved" and rated.satisfaction == "bad"
    assert len(channel.messages) == sent


def test_a_configured_bad_rating_rule_replaces_the_default() -> None:
    rule = {"name": "bad_ratings", "on": "bad_rating", "to": ["group"], "template": "bad_rating"}
    desk, clock, channel = _desk({"bad_rating": []}, notifications=[rule])
    _ticket, token = _offered(desk, clock)
    desk.rate(token, "bad")
    (notice,) = [m for m in channel.messages if "Bad satisfaction rating" in m.subject]
    assert {r.actor_id for r in notice.to} == {"ana", "bo"}


# ------------------------------------------------------------------ KPIs


def test_csat_kpis_by_group_agent_and_period() -> None:
    desk, clock, _ = _desk()
    desk.add_group("l2", "Technicians")
    desk.add_agent("cy", "Cy", email="cy@help.example", groups=["l2"])
    ratings = ["good", "good", "bad", None]
    tickets = []
    for rating in ratings:
        ticket, token = _offered(desk, clock)
        if rating is not None:
            desk.rate(token, rating)
        tickets.append(ticket)
    desk.transfer(tickets[1], ANA, group="l2", agent="cy")
    clock.advance(days=8)
    unrated_later, _ = _offered(desk, clock)  # in the next week
    report = desk.kpis()
    assert report.satisfaction.to_data() == {
        "offered": 5,
        "responses": 3,
        "good": 2,
        "bad": 1,
        "response_rate": 3 / 5,
        "satisfaction": 2 / 3,
    }
    assert {k: (v.offered, v.good, v.bad) for k, v in report.satisfaction_by_group.items()} == {
        "l1": (4, 1, 1),
        "l2": (1, 1, 0),
    }
    assert {k: v.good for k, v in report.satisfaction_by_agent.items()} == {"ana": 1, "cy": 1}
    weekly = desk.kpis(period="week")
    # Offered Sat 5, Sun 6, Mon 7, Tue 8 and Thu 17 December: by the week of the offer.
    assert [
        (d.isoformat(), v.offered, v.good, v.bad) for d, v in weekly.satisfaction_over_time.items()
    ] == [("2026-11-30", 2, 2, 0), ("2026-12-07", 2, 0, 1), ("2026-12-14", 1, 0, 0)]
    # The date range bounds when the survey was offered; the other filters apply as usual.
    assert desk.kpis(since=unrated_later.satisfaction_offered_at).satisfaction.offered == 1
    assert desk.kpis(group="l2").satisfaction.good == 1
    data = json.loads(json.dumps(report.to_data()))
    assert data["satisfaction"]["satisfaction"] == 2 / 3
    assert {"key": "l2", **report.satisfaction_by_group["l2"].to_data()} in data["satisfaction"][
        "by_group"
    ]
    rows = list(csv_rows(report))
    assert ("satisfaction", "", "offered", "5") in rows
    assert ("satisfaction_by_agent:cy", "", "good", "1") in rows
    page = render_html(report)
    assert 'aria-labelledby="satisfaction-chart-t satisfaction-chart-d"' in page
    assert 'data-kpi="satisfaction" data-value="0.6666666666666666"' in page


def test_the_report_without_surveys_says_so() -> None:
    desk, _, _ = _desk({"enabled": False})
    _solved(desk)
    page = render_html(desk.kpis())
    assert "No surveys offered." in page


# ------------------------------------------------------------------ the command line


def test_helpkit_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    config = tmp_path / "helpkit.toml"
    config.write_text('[csat]\nenabled = true\noffer_after = "1h"\n', encoding="utf-8")
    desk, clock, _ = _desk({"offer_after": "1h"}, store=url)
    ticket, token = _offered(desk, clock)
    monkeypatch.setenv("HELPKIT_SECRET", SECRET)
    monkeypatch.setenv("HELPKIT_CONFIG", str(config))
    assert main(["--store", url, "rate", f"helpkit-rate:{token}", "bad", "--comment", "slow"]) == 0
    out, _ = capsys.readouterr()
    assert out.strip() == f"{ticket.reference} rated bad: solved, P3, Printer"
    assert desk.ticket(ticket.id).satisfaction == "bad"
    assert main(["--store", url, "rate", token + "x", "good"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "not a rating token" in err and "Traceback" not in err


# ------------------------------------------------------------------ every store


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_every_store_keeps_offers_and_ratings(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "memory":
        url = "memory://"
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'desk.db'}"
    else:
        url = f"{request.getfixturevalue('postgres_database')}?schema={fresh_schema()}"
    desk, clock, _ = _desk({"bad_rating": ["reopen"]}, store=url)
    ticket, token = _offered(desk, clock)
    desk.rate(token, "good")
    clock.advance(minutes=5)
    desk.rate(token, "bad", "Still broken")
    stored = desk.ticket(ticket.id)
    assert stored.satisfaction == "bad" and stored.status == "open"
    assert stored.satisfaction_offered_at == ticket.satisfaction_offered_at is not None
    report = desk.kpis().to_data()
    if kind != "memory":  # read back by another desk on the same store
        other = opened(Helpdesk(url, config={"csat": CSAT}, secret=SECRET, clock=clock))
        assert other.ticket(ticket.id) == stored
        assert other.history(ticket.id) == desk.history(ticket.id)
        assert other.kpis().to_data() == report
    assert report["satisfaction"]["bad"] == 1 and report["satisfaction"]["offered"] == 1


def test_an_offer_at_the_end_of_time_expires_at_the_last_instant() -> None:
    desk, _clock, _ = _desk()
    ticket = _solved(desk)
    end = datetime.max.replace(tzinfo=UTC)
    assert desk.sweep(end - timedelta(days=1)).satisfaction_offers == 1
    (offer,) = _offers(desk, ticket)
    assert offer.expires_at == end
    assert desk.rating_token(ticket)  # a token of the last instant signs too


def test_triggers_see_the_rating_event() -> None:
    trigger = {
        "name": "rated",
        "when": {"field": "event", "has_any": ["satisfaction_rated"]},
        "actions": [{"add_tags": ["rated"]}],
    }
    desk, clock, _ = _desk(triggers=[trigger])
    ticket, token = _offered(desk, clock)
    assert "rated" not in ticket.tags  # the offer is no rating
    assert "rated" in desk.rate(token, "good").tags


def test_a_reply_to_an_offer_is_hinted_to_its_ticket() -> None:
    assert sent_ticket_id("<t-9-4-csat_offer.hk1-t-9-abcdefghijklmnop@support.example>") == "t-9"


def test_a_desk_that_turned_surveys_off_still_takes_the_links_it_sent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    desk, clock, _ = _desk(store=url)
    ticket, token = _offered(desk, clock)
    off = opened(Helpdesk(url, config={"csat": {"enabled": False}}, secret=SECRET, clock=clock))
    assert off.rate(token, "good").satisfaction == "good"
    assert off.ticket(ticket.id).next_check is None


def test_erasing_the_rater_removes_the_rating_comment_and_keeps_the_rating() -> None:
    desk, clock, _ = _desk()
    desk.add_agent("root", "Root Admin", role="admin")
    ticket, token = _offered(desk, clock)
    desk.rate(token, "bad", "Call me on +33 6 12 34 56 78")
    desk.erase_contact(ticket.requester_id, Actor.agent("root"), reason="GDPR request")
    (rated,) = [e for e in desk.history(ticket) if isinstance(e, SatisfactionRated)]
    assert (rated.rating, rated.comment) == ("bad", None)
    assert "+33 6" not in repr(desk.store.changes())  # type: ignore[attr-defined]
    assert desk.ticket(ticket).satisfaction == "bad"
    assert lifecycle.replay(desk.history(ticket)) == desk.ticket(ticket)
