"""desk.receive and its kin (helpkit.intake): each threading path, people, suspension,
release, discard, duplicates, acknowledgements and the headers of outbound mail."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit import Actor, Helpdesk
from helpkit.channels.recording import RecordingChannel
from helpkit.config import DeskConfig
from helpkit.delivery import Outbound
from helpkit.errors import (
    AttachmentError,
    ConfigError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from helpkit.events import FollowersChanged, SlaBreached, TicketOpened
from helpkit.intake import (
    IntakeKind,
    clean_id,
    receipt_key,
    subject_ticket_number,
)
from helpkit.ports import (
    Address,
    Change,
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    ReceiptState,
)
from helpkit.testing.clock import FrozenClock
from helpkit.thread_tokens import ThreadTokens
from helpkit.tickets import LinkKind

SECRET = "the desk's secret, long enough"
TOKENS = ThreadTokens(SECRET)
START = datetime(2026, 3, 2, 9, tzinfo=UTC)
AGENT = Actor.agent("alice")
AGENT_SYSTEM = Actor.system("operator")


def message(n: int | str = 1, **fields: Any) -> InboundMessage:
    values: dict[str, Any] = {
        "channel": "email",
        "sender_address": "ann@acme.example",
        "sender_name": "Ann Archer",
        "subject": "The printer on floor 2",
        "body": "It jams.",
        "received_at": START,
        "external_id": f"<m{n}@acme.example>",
    }
    values.update(fields)
    return InboundMessage(**values)


def make_desk(
    store: str = "memory://", *, secret: str | None = SECRET, **intake: Any
) -> tuple[Helpdesk, RecordingChannel, FrozenClock]:
    clock = FrozenClock(START)
    channel = RecordingChannel("email")
    config = {"intake": {"addresses": ["support@desk.example"], **intake}}
    desk = Helpdesk(
        store,
        config=config,
        clock=clock,
        channels=[channel],
        delivery="sync",
        secret=secret,
        entry_points=False,
    )
    desk.add_group("l1", "Service desk", tier=1)
    desk.add_agent("alice", "Alice Agent", email="alice@desk.example", groups=["l1"])
    return desk, channel, clock


@pytest.fixture
def desk() -> Iterator[Helpdesk]:
    made, _, _ = make_desk()
    yield made
    made.shutdown()


def token_id(desk: Helpdesk, number: int) -> str:
    """The Message-ID of a reply the desk sent on ticket ``number`` (as an email channel
    writes it)."""
    ticket = desk.ticket(number)
    return f"<{ticket.id}-3-reply.{TOKENS.sign(ticket.id)}@desk.example>"


# ------------------------------------------------------------------ pure helpers


@pytest.mark.parametrize(
    ("subject", "number"),
    [
        ("[#123] Printer", 123),
        ("Re: [Ticket #123] Printer", 123),
        ("RE: AW: [Acme Support #42] x", 42),
        ("Re: [ # 7 ]", 7),
        ("Printer #123", None),
        ("[#] nothing", None),
        ("[#0] zero", None),
        ("[#99999999999999999999] too long", None),
        ("", None),
    ],
)
def test_subject_ticket_number(subject: str, number: int | None) -> None:
    assert subject_ticket_number(subject) == number


@given(
    st.integers(1, 2**63 - 1),
    st.text(alphabet=st.characters(exclude_characters="[]#", codec="utf-8"), max_size=20),
    st.text(max_size=20),
    st.sampled_from(["#", "Ticket #", "Acme Support #", " # "]),
)
def test_a_subject_tag_gives_its_number(number: int, before: str, after: str, tag: str) -> None:
    assert subject_ticket_number(f"{before}[{tag}{number}]{after}") == number


@given(st.text(max_size=40))
def test_subject_ticket_number_never_raises(subject: str) -> None:
    found = subject_ticket_number(subject)
    assert found is None or (0 < found < 2**63 and str(found) in subject)


@given(st.text(max_size=40))
def test_clean_id_is_idempotent_and_keys_ignore_brackets(text: str) -> None:
    once = clean_id(text)
    assert once is None or (clean_id(once) == once and once == once.strip())
    assert receipt_key("email", text) == receipt_key("email", f" <{text}> ")


def test_keys_are_normalised() -> None:
    assert clean_id(" <abc@x> ") == "abc@x"
    assert clean_id("<>") is None
    assert clean_id(None) is None
    assert receipt_key("email", "<abc@x>") == "email:abc@x"
    assert receipt_key("email", "  ") is None


# ------------------------------------------------------------------ new tickets and people


def test_a_new_message_opens_a_ticket_with_its_people(desk: Helpdesk) -> None:
    org = desk.create_organization("Acme", domains=["acme.example"])
    got = desk.receive(
        message(
            cc=[
                Address("bob@acme.example", "Bob"),
                Address("support@desk.example"),
                Address("ann@acme.example"),
                Address("alice@desk.example"),
                Address("not an address"),
            ],
            original="It jams.\n\n> quoted",
            in_reply_to="<elsewhere@acme.example>",
        )
    )
    assert got.kind is IntakeKind.CREATED and not got.duplicate
    assert got.key == "email:m1@acme.example" and got.ticket_number == 1
    ticket = desk.ticket(1)
    ann = desk.contact_by_email("ann@acme.example")
    assert ann.name == "Ann Archer" and ann.organization_id == org.id
    assert ticket.requester_id == ann.id and ticket.organization_id == org.id
    bob = desk.contact_by_email("bob@acme.example")
    assert ticket.followers == {Actor.contact(bob.id), AGENT}
    with pytest.raises(NotFoundError):
        desk.contact_by_email("support@desk.example")
    (comment,) = desk.conversation(1)
    assert comment.id == got.comment_id
    assert comment.author == Actor.contact(ann.id) and comment.public
    assert comment.channel == "email"
    assert comment.external_id == "m1@acme.example"
    assert comment.in_reply_to == "elsewhere@acme.example"
    assert comment.original == "It jams.\n\n> quoted"
    receipt = desk.store.receipt(got.key)  # type: ignore[attr-defined]
    assert receipt.state is ReceiptState.CREATED and receipt.ticket_id == ticket.id


def test_cc_followers_can_be_turned_off() -> None:
    desk, _, _ = make_desk(cc_followers=False)
    desk.receive(message(cc=[Address("bob@acme.example")]))
    assert desk.ticket(1).followers == frozenset()
    with pytest.raises(NotFoundError):
        desk.contact_by_email("bob@acme.example")


def test_blank_subject_and_body_still_make_a_ticket(desk: Helpdesk) -> None:
    got = desk.receive(message(subject="  ", body=" \n"))
    assert desk.ticket(got.ticket_id or "").subject == "(no subject)"
    assert desk.conversation(1)[0].body == "(no text)"


def test_a_message_without_external_id_is_received_each_time(desk: Helpdesk) -> None:
    one = desk.receive(message(external_id=None))
    two = desk.receive(message(external_id="<>"))
    assert one.key != two.key and one.key.startswith("email:")
    assert {one.ticket_number, two.ticket_number} == {1, 2}


# ------------------------------------------------------------------ exactly once


def test_the_same_message_twice_gives_one_outcome(desk: Helpdesk) -> None:
    first = desk.receive(message())
    again = desk.receive(message(external_id=" m1@acme.example "))
    assert again.duplicate and not first.duplicate
    assert (again.kind, again.ticket_id, again.comment_id, again.ticket_number) == (
        first.kind,
        first.ticket_id,
        first.comment_id,
        first.ticket_number,
    )
    assert len(desk.tickets().items) == 1 and len(desk.conversation(1)) == 1
    # Another channel with the same id is another message.
    other = desk.receive(message(channel="web"))
    assert not other.duplicate and other.ticket_number == 2


def test_a_store_without_an_inbox_is_a_config_error() -> None:
    class NoInbox:
        def __init__(self, store: Any) -> None:
            self._store = store
            self.capabilities = frozenset(store.capabilities) - {"inbox"}

        def __getattr__(self, name: str) -> Any:
            return getattr(self._store, name)

    inner = Helpdesk(entry_points=False).store
    desk = Helpdesk(NoInbox(inner), entry_points=False)
    with pytest.raises(ConfigError, match="keeps no inbox"):
        desk.receive(message())
    assert not desk.tickets().items


def test_bad_arguments(desk: Helpdesk) -> None:
    with pytest.raises(ValidationError):
        desk.receive("From: x")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        desk.receive(message(), screen="no")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="one word"):
        desk.receive(message(channel="e mail"))
    assert not desk.tickets().items


# ------------------------------------------------------------------ threading


def test_signed_token_threads_even_from_a_stranger(desk: Helpdesk) -> None:
    desk.receive(message())
    got = desk.receive(
        message(2, sender_address="carol@other.example", references=[token_id(desk, 1)])
    )
    assert got.kind is IntakeKind.COMMENTED and got.ticket_number == 1
    carol = desk.contact_by_email("carol@other.example")
    assert desk.conversation(1)[-1].author == Actor.contact(carol.id)


def test_a_forged_token_does_not_thread_a_stranger(desk: Helpdesk) -> None:
    desk.receive(message())
    ticket = desk.ticket(1)
    forged = f"<x.hk1-{ticket.id}-{'a' * 16}@desk.example>"
    got = desk.receive(message(2, sender_address="eve@evil.example", in_reply_to=forged))
    assert got.kind is IntakeKind.CREATED and got.ticket_number == 2
    assert len(desk.conversation(1)) == 1


def test_a_forged_token_still_threads_a_party(desk: Helpdesk) -> None:
    desk.receive(message())
    forged = f"<x.hk1-{desk.ticket(1).id}-{'a' * 16}@desk.example>"
    got = desk.receive(message(2, in_reply_to=forged))
    assert got.kind is IntakeKind.COMMENTED and got.ticket_number == 1


def test_subject_tag_threads_the_requester(desk: Helpdesk) -> None:
    desk.receive(message())
    got = desk.receive(message(2, subject="Re: [Ticket #1] The printer"))
    assert got.kind is IntakeKind.COMMENTED and got.ticket_number == 1
    got = desk.receive(message(3, subject="Re: no tag", ticket_number=1))
    assert got.kind is IntakeKind.COMMENTED and got.ticket_number == 1


def test_subject_tag_of_a_stranger_opens_a_ticket_of_their_own(desk: Helpdesk) -> None:
    desk.receive(message())
    got = desk.receive(message(2, sender_address="eve@evil.example", subject="Re: [#1] give"))
    assert got.kind is IntakeKind.CREATED and got.ticket_number == 2
    assert desk.ticket(2).requester_id == desk.contact_by_email("eve@evil.example").id
    assert len(desk.conversation(1)) == 1


def test_strangers_can_be_suspended_and_released_onto_a_ticket_of_their_own() -> None:
    desk, _, _ = make_desk(strangers="suspend")
    desk.receive(message())
    held = desk.receive(message(2, sender_address="eve@evil.example", subject="Re: [#1] x"))
    assert held.kind is IntakeKind.SUSPENDED
    assert held.reason == "stranger: eve@evil.example is no party of #1"
    with pytest.raises(NotFoundError):
        desk.contact_by_email("eve@evil.example")
    released = desk.release(held.key, AGENT)
    assert released.kind is IntakeKind.CREATED and released.ticket_number == 2
    assert released.reason == held.reason
    assert len(desk.conversation(1)) == 1


def test_followers_and_agents_are_parties(desk: Helpdesk) -> None:
    desk.receive(message(cc=[Address("bob@acme.example")]))
    by_follower = desk.receive(message(2, sender_address="bob@acme.example", subject="[#1] me"))
    assert by_follower.kind is IntakeKind.COMMENTED
    by_agent = desk.receive(
        message(3, sender_address="Alice@Desk.example", subject="Re: [#1] fixed")
    )
    assert by_agent.kind is IntakeKind.COMMENTED and by_agent.ticket_number == 1
    last = desk.conversation(1)[-1]
    assert last.author == AGENT and last.public
    assert desk.ticket(1).status == "open"  # an agent's public reply opens a new ticket
    with pytest.raises(NotFoundError):
        desk.contact_by_email("alice@desk.example")


def test_an_inactive_agent_is_no_party(desk: Helpdesk) -> None:
    desk.receive(message())
    desk.add_agent("old", "Old Agent", email="old@desk.example", active=False)
    got = desk.receive(message(2, sender_address="old@desk.example", subject="Re: [#1] x"))
    assert got.kind is IntakeKind.CREATED


def test_an_agent_s_mail_is_held_where_their_role_or_groups_do_not_reach(
    desk: Helpdesk,
) -> None:
    desk.receive(message())
    desk.add_group("l2", "Technicians")
    desk.add_agent("lee", "Lee Light", email="lee@desk.example", groups=["l1"], role="light_agent")
    desk.add_agent("mo", "Mo Tech", email="mo@desk.example", groups=["l2"], restricted=True)
    desk.assign(1, AGENT, group="l1")
    before = desk.history(1)
    light = desk.receive(message(2, sender_address="lee@desk.example", subject="Re: [#1] hi"))
    outside = desk.receive(message(3, sender_address="mo@desk.example", subject="Re: [#1] hi"))
    assert light.kind is outside.kind is IntakeKind.SUSPENDED
    reasons = [r.reason for r in desk.suspended()]
    assert reasons == [
        "access: agent 'lee' (role light_agent) lacks the permission 'reply'",
        "access: agent 'mo' is restricted to their groups' tickets; ticket "
        f"{desk.ticket(1).id} is in group 'l1'",
    ]
    assert desk.history(1) == before
    released = desk.release(light.key, AGENT)  # an agent who may vouches for it
    assert released.kind is IntakeKind.COMMENTED
    assert desk.conversation(1)[-1].author == Actor.agent("lee")


def test_unsigned_reference_to_a_received_message(desk: Helpdesk) -> None:
    desk.receive(message())
    party = desk.receive(message(2, in_reply_to="<m1@acme.example>", subject="again"))
    assert party.kind is IntakeKind.COMMENTED and party.ticket_number == 1
    stranger = desk.receive(
        message(3, sender_address="eve@evil.example", references=["<m1@acme.example>"])
    )
    assert stranger.kind is IntakeKind.CREATED and stranger.ticket_number == 2


def test_unsigned_reference_to_a_message_the_desk_sent() -> None:
    desk, channel, _ = make_desk(secret=None)
    desk.receive(message())
    desk.reply(1, AGENT, "Try turning it off and on.")
    (sent,) = channel.messages
    assert sent.thread_token == ""
    sent_id = f"<{sent.idempotency_key}@desk.example>"
    party = desk.receive(message(2, in_reply_to=sent_id, subject="thanks"))
    assert party.kind is IntakeKind.COMMENTED and party.ticket_number == 1
    stranger = desk.receive(message(3, sender_address="eve@evil.example", in_reply_to=sent_id))
    assert stranger.kind is IntakeKind.CREATED


def test_without_a_secret_no_token_is_trusted() -> None:
    desk, _, _ = make_desk(secret=None)
    desk.receive(message())
    got = desk.receive(
        message(2, sender_address="carol@other.example", references=[token_id(desk, 1)])
    )
    assert got.kind is IntakeKind.CREATED


def test_a_reference_to_an_unknown_ticket_opens_a_new_one(desk: Helpdesk) -> None:
    got = desk.receive(message(subject="Re: [#77] old", in_reply_to="<nothing@x.example>"))
    assert got.kind is IntakeKind.CREATED and got.ticket_number == 1
    signed = f"<x.{TOKENS.sign('gone')}@desk.example>"
    assert desk.receive(message(2, in_reply_to=signed)).kind is IntakeKind.CREATED


def test_a_message_to_a_merged_ticket_goes_to_the_surviving_one(desk: Helpdesk) -> None:
    desk.receive(message())
    desk.receive(message(2, sender_address="bob@acme.example", subject="another"))
    desk.merge(1, 2, AGENT)
    got = desk.receive(message(3, references=[token_id(desk, 1)]))
    assert got.kind is IntakeKind.COMMENTED and got.ticket_number == 2
    # The merged ticket's requester follows the survivor, so an unsigned tag threads too.
    tagged = desk.receive(message(4, subject="Re: [#1] still"))
    assert tagged.kind is IntakeKind.COMMENTED and tagged.ticket_number == 2


def test_a_message_to_a_closed_ticket_opens_a_follow_up(desk: Helpdesk) -> None:
    desk.receive(message())
    desk.close(1, AGENT)
    got = desk.receive(message(2, subject="Re: [#1] it jams again"))
    assert got.kind is IntakeKind.CREATED and got.ticket_number == 2
    follow_up = desk.ticket(2)
    assert follow_up.subject == "The printer on floor 2"
    assert {(link.kind, link.target_id) for link in follow_up.links} == {
        (LinkKind.FOLLOW_UP_OF, desk.ticket(1).id)
    }
    assert desk.conversation(2)[0].id == got.comment_id
    again = desk.receive(message(2, subject="Re: [#1] it jams again"))
    assert again.duplicate and again.ticket_number == 2 and again.kind is IntakeKind.CREATED


def test_an_agent_writing_to_a_closed_ticket_opens_a_follow_up_for_its_requester(
    desk: Helpdesk,
) -> None:
    desk.receive(message())
    desk.close(1, AGENT)
    got = desk.receive(message(2, sender_address="alice@desk.example", subject="[#1] note"))
    assert got.kind is IntakeKind.CREATED
    assert desk.ticket(2).requester_id == desk.ticket(1).requester_id
    assert desk.conversation(2)[0].author == AGENT


def test_a_reply_reopens_a_solved_ticket_and_adds_new_cc_followers(desk: Helpdesk) -> None:
    desk.receive(message())
    desk.resolve(1, AGENT)
    got = desk.receive(
        message(
            2, subject="Re: [#1]", cc=[Address("dan@acme.example"), Address("ann@acme.example")]
        )
    )
    assert got.kind is IntakeKind.COMMENTED
    ticket = desk.ticket(1)
    assert ticket.status == "open"
    dan = desk.contact_by_email("dan@acme.example")
    assert ticket.followers == {Actor.contact(dan.id)}
    changed = [e for e in desk.history(1) if isinstance(e, FollowersChanged)]
    assert changed[-1].added == {Actor.contact(dan.id)}


# ------------------------------------------------------------------ suspension


def test_suspended_messages_are_listed_released_and_discarded(desk: Helpdesk) -> None:
    first = desk.receive(message(1, headers={"Auto-Submitted": "auto-replied"}))
    second = desk.receive(message(2, sender_address="MAILER-DAEMON@mx.acme.example"))
    third = desk.receive(message(3, headers={"Precedence": "bulk"}))
    assert {first.kind, second.kind, third.kind} == {IntakeKind.SUSPENDED}
    assert not desk.tickets().items
    assert [r.key for r in desk.suspended()] == [first.key, second.key, third.key]
    assert [r.key for r in desk.suspended(limit=1, after=first.key)] == [second.key]
    again = desk.receive(message(1, headers={"Auto-Submitted": "auto-replied"}))
    assert again.duplicate and again.kind is IntakeKind.SUSPENDED and again.reason == first.reason

    released = desk.release(first.key, AGENT)
    assert released.kind is IntakeKind.CREATED and released.reason == first.reason
    assert desk.receive(message(1)).duplicate
    with pytest.raises(InvalidTransitionError):
        desk.release(first.key, AGENT)

    discarded = desk.discard(third.key, AGENT)
    assert discarded.state is ReceiptState.DISCARDED
    gone = desk.receive(message(3, headers={"Precedence": "bulk"}))
    assert gone.duplicate and gone.kind is IntakeKind.DISCARDED
    assert [r.key for r in desk.suspended()] == [second.key]

    with pytest.raises(NotFoundError):
        desk.release("email:nothing", AGENT)
    with pytest.raises(ValidationError):
        desk.release("email:m2@acme.example", Actor.contact("ann"))
    with pytest.raises(ValidationError):
        desk.discard("  ", AGENT)


def test_a_released_loop_is_still_refused(desk: Helpdesk) -> None:
    held = desk.receive(message(sender_address="support@desk.example"))
    assert held.kind is IntakeKind.SUSPENDED and held.reason is not None
    assert held.reason.startswith("loop:")
    with pytest.raises(ValidationError, match="cannot be ingested"):
        desk.release(held.key, AGENT)
    assert [r.key for r in desk.suspended()] == [held.key]


def test_screen_false_skips_the_screens(desk: Helpdesk) -> None:
    got = desk.receive(message(headers={"Auto-Submitted": "auto-replied"}), screen=False)
    assert got.kind is IntakeKind.CREATED


def test_a_sender_that_is_not_an_email_address_is_suspended(desk: Helpdesk) -> None:
    got = desk.receive(message(sender_address="+33 6 12 34 56 78", channel="sms"))
    assert got.kind is IntakeKind.SUSPENDED
    assert got.reason is not None and got.reason.startswith("sender:")


# ------------------------------------------------------------------ outbound mail


def test_outbound_messages_carry_the_token_and_the_desk_header() -> None:
    desk, channel, _ = make_desk()
    desk.receive(message())
    desk.reply(1, AGENT, "On it.")
    (sent,) = channel.messages
    ticket = desk.ticket(1)
    assert sent.thread_token == TOKENS.sign(ticket.id)
    assert sent.headers["X-Helpkit-Desk"] == desk.desk_id == TOKENS.desk_id
    assert "Auto-Submitted" not in sent.headers
    assert sent.in_reply_to == "m1@acme.example"


def test_sla_notices_are_auto_generated() -> None:
    desk, _, clock = make_desk()
    desk.receive(message())
    desk.assign(1, AGENT, agent="alice")
    ticket = desk.ticket(1)
    rules = {"escalation": {"rules": [{"name": "tell", "at": 1.0, "actions": ["notify_assignee"]}]}}
    outbound = Outbound(
        desk.store,
        DeskConfig.from_dict(rules),
        {"email": RecordingChannel("email")},
        tokens=TOKENS,
        desk_id="deskA",
    )
    breach = SlaBreached(
        ticket_id=ticket.id,
        seq=ticket.seq + 1,
        at=clock.now(),
        actor=Actor.system("sweep"),
        policy="standard",
        metric="first_response",
        cycle=1,
        due=clock.now() - timedelta(minutes=1),
    )
    (planned,) = outbound.plan([Change(99, breach)], clock.now())
    assert planned.kind == "sla_notice"
    assert planned.message.headers["Auto-Submitted"] == "auto-generated"
    assert planned.message.headers["X-Helpkit-Desk"] == "deskA"
    assert planned.message.thread_token == TOKENS.sign(ticket.id)


# ------------------------------------------------------------------ acknowledgements


def acknowledgements(channel: RecordingChannel) -> list[Any]:
    return [m for m in channel.messages if m.kind == "acknowledgement"]


def test_new_requests_are_acknowledged_at_most_n_per_hour() -> None:
    desk, channel, clock = make_desk(acknowledge=True, acknowledge_limit=2)
    for n in range(1, 5):
        desk.receive(message(n, subject=f"request {n}"))
    acks = acknowledgements(channel)
    assert [m.ticket_number for m in acks] == [1, 2]
    ack = acks[0]
    assert ack.headers["Auto-Submitted"] == "auto-replied"
    assert ack.headers["X-Helpkit-Desk"] == desk.desk_id
    assert ack.subject == "[#1] request 1"
    assert [r.address for r in ack.to] == ["ann@acme.example"]
    assert ack.thread_token == TOKENS.sign(desk.ticket(1).id)
    opened = [e for e in desk.history(3) if isinstance(e, TicketOpened)]
    assert opened[0].acknowledge is False
    # Another address has its own count; an hour later the first one has room again.
    desk.receive(message(5, sender_address="bob@acme.example"))
    clock.advance(timedelta(hours=1, seconds=1))
    desk.receive(message(6, subject="later"))
    assert [m.ticket_number for m in acknowledgements(channel)] == [1, 2, 5, 6]
    # Comments and agents' tickets are never acknowledged.
    desk.receive(message(7, subject="Re: [#6] more"))
    assert len(acknowledgements(channel)) == 4


def test_no_acknowledgement_unless_configured() -> None:
    desk, channel, _ = make_desk()
    desk.receive(message())
    assert acknowledgements(channel) == []
    desk, channel, _ = make_desk(acknowledge=True, acknowledge_limit=0)
    desk.receive(message())
    assert acknowledgements(channel) == []


def test_an_acknowledgement_that_comes_back_as_an_auto_reply_is_suspended() -> None:
    desk, channel, _ = make_desk(acknowledge=True)
    desk.receive(message())
    (ack,) = acknowledgements(channel)
    bounced = desk.receive(
        message(
            2,
            subject=f"Automatic reply: {ack.subject}",
            headers={"X-Helpkit-Desk": ack.headers["X-Helpkit-Desk"]},
        )
    )
    assert bounced.kind is IntakeKind.SUSPENDED and bounced.reason is not None
    assert bounced.reason.startswith("loop:")


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"strangers": "ignore"}, "intake.strangers"),
        ({"addresses": "support@desk.example"}, "intake.addresses"),
        ({"addresses": ["not an address"]}, "intake.addresses"),
        ({"cc_followers": "yes"}, "intake.cc_followers"),
        ({"acknowledge": 1}, "intake.acknowledge"),
        ({"acknowledge_limit": -1}, "acknowledge_limit"),
        ({"acknowledge_limit": True}, "acknowledge_limit"),
        ({"desk_id": "two words"}, "desk_id"),
        ({"adresses": [], "ack": True}, "unknown \\[intake\\] keys: ack, adresses"),
    ],
)
def test_bad_intake_configuration(table: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DeskConfig.from_dict({"intake": table})


def test_intake_configuration_defaults_and_secret_file(tmp_path: Path) -> None:
    config = DeskConfig.from_dict({})
    assert config.intake.strangers == "new_ticket" and config.intake.cc_followers
    assert not config.intake.acknowledge and config.intake.acknowledge_limit == 3
    (tmp_path / "helpkit.toml").write_text(
        'secret_file = "desk.secret"\n[intake]\nacknowledge = true\n'
    )
    loaded = DeskConfig.load(tmp_path / "helpkit.toml")
    assert loaded.secret_file == str(tmp_path / "desk.secret") and loaded.intake.acknowledge
    with pytest.raises(ConfigError, match="secret_file"):
        DeskConfig.from_dict({"secret_file": 3})


def test_desk_id_defaults() -> None:
    assert Helpdesk(entry_points=False).desk_id == "helpkit"
    assert Helpdesk(entry_points=False, secret=SECRET).desk_id == TOKENS.desk_id
    configured = Helpdesk(entry_points=False, secret=SECRET, config={"intake": {"desk_id": "d7"}})
    assert configured.desk_id == "d7"
    with pytest.raises(ConfigError):
        Helpdesk(entry_points=False, secret="short")


def test_a_receipt_must_name_a_ticket_the_command_changed(desk: Helpdesk) -> None:
    from helpkit.pipeline import Pipeline
    from helpkit.ports import Receipt
    from helpkit.timers import Timers

    desk.receive(message())
    ticket = desk.ticket(1)
    pipeline = Pipeline(desk.store, desk.clock, Timers([]), lambda changes: None)
    stray = Receipt(
        key="email:stray",
        state=ReceiptState.COMMENTED,
        received_at=START,
        updated_at=START,
        ticket_id="another",
    )
    with pytest.raises(ValidationError, match="did not change"):
        pipeline.run(
            [ticket.id],
            lambda tickets, now: [desk_tag(tickets[0], now)],
            receipt=lambda outcomes, now: stray,
        )
    assert desk.ticket(1).seq == ticket.seq
    assert desk.store.receipt("email:stray") is None  # type: ignore[attr-defined]


def desk_tag(ticket: Any, now: datetime) -> Any:
    from helpkit import lifecycle

    return lifecycle.change_tags(ticket, at=now, actor=AGENT, add=["x"])


# ------------------------------------------------------------------ attachments


def test_attachments_are_kept_with_the_comment(desk: Helpdesk) -> None:
    photo = InboundAttachment(filename="../jam.png", content_type="Image/PNG", data=b"\x89PNG...")
    inline = InboundAttachment(
        filename="logo.gif",
        content_type="image/gif",
        data=b"GIF89a",
        inline=True,
        content_id="<l1>",
    )
    got = desk.receive(message(attachments=[photo, inline]))
    (comment,) = desk.conversation(1)
    first, second = comment.attachments
    assert (first.filename, first.content_type, first.size) == (
        "jam.png",
        "image/png",
        len(b"\x89PNG..."),
    )
    assert first.sha256 == hashlib.sha256(b"\x89PNG...").hexdigest()
    assert (second.inline, second.content_id) == (True, "l1")
    assert desk.attachment_bytes(1, first.id) == b"\x89PNG..."
    # Received again: the same comment and the same attachments, nothing kept twice.
    again = desk.receive(message(attachments=[photo, inline]))
    assert again.duplicate and again.comment_id == got.comment_id
    reply = desk.receive(message(2, subject="Re: [#1]", attachments=[photo]))
    assert reply.kind is IntakeKind.COMMENTED
    assert desk.conversation(1)[-1].attachments[0].sha256 == first.sha256


def test_attachments_over_the_limits_suspend_the_message() -> None:
    clock = FrozenClock(START)
    desk = Helpdesk(
        config={"attachments": {"max_files": 1, "max_file_bytes": 10}},
        clock=clock,
        entry_points=False,
    )
    big = InboundAttachment(
        filename="big.bin", content_type="application/octet-stream", data=b"x" * 11
    )
    held = desk.receive(message(attachments=[big]))
    assert held.kind is IntakeKind.SUSPENDED and held.reason is not None
    assert held.reason.startswith("attachments: ") and "big.bin" in held.reason
    assert not desk.tickets().items
    with pytest.raises(AttachmentError):
        desk.release(held.key, AGENT_SYSTEM)
    assert [r.key for r in desk.suspended()] == [held.key]
    assert desk.discard(held.key, AGENT_SYSTEM).state is ReceiptState.DISCARDED
    bad_type = InboundAttachment(filename="x", content_type="nonsense", data=b"1")
    assert desk.receive(message(2, attachments=[bad_type])).kind is IntakeKind.SUSPENDED


def test_a_desk_without_a_blob_store_refuses_attachments_and_writes_nothing(
    tmp_path: Path,
) -> None:
    from helpkit.attachments import UnconfiguredBlobStore

    desk = Helpdesk(blobs=UnconfiguredBlobStore(), entry_points=False)
    file = InboundAttachment(filename="a.txt", content_type="text/plain", data=b"a")
    with pytest.raises(ConfigError, match="no blob store"):
        desk.receive(message(attachments=[file]))
    assert desk.store.receipt("email:m1@acme.example") is None  # type: ignore[attr-defined]
    assert not desk.tickets().items


# ------------------------------------------------------------------ stored forms


def test_new_fields_are_left_out_of_the_stored_form_at_their_default(desk: Helpdesk) -> None:
    from helpkit import serialize
    from helpkit.events import Event

    desk.receive(message())
    opened = desk.history(1)[0]
    assert isinstance(opened, TicketOpened) and opened.acknowledge is False
    assert "acknowledge" not in serialize.to_data(opened)
    acknowledged = attrs.evolve(opened, acknowledge=True)
    data = serialize.to_data(acknowledged)
    assert data["acknowledge"] is True
    assert serialize.from_data(Event, data) == acknowledged

    plain = OutboundMessage(
        ticket_id="t",
        ticket_number=1,
        subject="s",
        body="b",
        comment_id="c",
        author_name="a",
        to=[],
        sent_at=START,
    )
    assert "thread_token" not in serialize.to_data(plain)
    signed = attrs.evolve(plain, thread_token=TOKENS.sign("t"))
    assert serialize.from_data(OutboundMessage, serialize.to_data(signed)) == signed


def test_a_reply_to_the_id_the_channel_gave_threads_by_its_token() -> None:
    desk, channel, _ = make_desk()
    desk.receive(message())
    desk.reply(1, AGENT, "On it.")
    sent_id = desk.ticket(1).last_message_id
    assert sent_id is not None and channel.messages[-1].thread_token in sent_id
    forwarded = desk.receive(message(2, sender_address="carol@other.example", in_reply_to=sent_id))
    assert forwarded.kind is IntakeKind.COMMENTED and forwarded.ticket_number == 1
