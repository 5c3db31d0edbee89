"""A contact's view of the desk (helpkit.portal, desk.for_contact), and requester_reply's
refusal of a contact who is no party of the ticket."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from helpkit import Actor, Helpdesk, HelpkitError, NotFoundError, StatusCategory
from helpkit.channels.recording import RecordingChannel
from helpkit.errors import AccessDeniedError
from helpkit.portal import CustomerComment, CustomerTicket
from helpkit.ports import InboundAttachment
from helpkit.testing.clock import FrozenClock

AGENT = Actor.agent("agent-1")


@pytest.fixture
def desk(helpkit_desk: Helpdesk, helpkit_agent: Actor) -> Helpdesk:
    helpkit_desk.create_organization(
        "Acme", domains=["acme.example"], organization_id="acme", shared_tickets=True
    )
    helpkit_desk.create_organization("Globex", domains=["globex.example"], organization_id="globex")
    for name, email in [
        ("alice", "alice@acme.example"),
        ("ann", "ann@acme.example"),
        ("bob", "bob@globex.example"),
        ("bea", "bea@globex.example"),
        ("carl", "carl@nowhere.example"),
    ]:
        helpkit_desk.create_contact(name.title(), emails=[email], contact_id=name)
    return helpkit_desk


def _open(desk: Helpdesk, who: str, subject: str, **kwargs: Any) -> str:
    clock = desk.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(minutes=1)
    return desk.open_ticket(
        Actor.contact(who), requester=who, subject=subject, body=f"{subject} body", **kwargs
    ).id


# ---------------------------------------------------------------- requester_reply


def test_a_stranger_cannot_write_to_a_ticket(
    desk: Helpdesk, helpkit_channel: RecordingChannel
) -> None:
    ticket = _open(desk, "bob", "Invoice")
    desk.resolve(ticket, AGENT, comment="Fixed")
    sent = len(helpkit_channel.messages)
    before = desk.history(ticket)
    with pytest.raises(AccessDeniedError, match="no party of ticket #1"):
        desk.requester_reply(ticket, "I am not bob", actor=Actor.contact("carl"))
    assert desk.history(ticket) == before
    assert desk.ticket(ticket).category is StatusCategory.SOLVED
    assert len(helpkit_channel.messages) == sent
    # the requester and a CC'd contact may
    desk.follow(ticket, AGENT, Actor.contact("bea"))
    assert desk.requester_reply(ticket, "me too", actor=Actor.contact("bea")).category is (
        StatusCategory.OPEN
    )
    desk.requester_reply(ticket, "thanks")


def test_a_stranger_cannot_open_a_follow_up_of_a_closed_ticket(desk: Helpdesk) -> None:
    ticket = _open(desk, "bob", "Invoice")
    desk.close(ticket, AGENT)
    with pytest.raises(AccessDeniedError):
        desk.requester_reply(ticket, "reopen please", actor=Actor.contact("carl"))
    assert len(desk.tickets()) == 1
    follow_up = desk.requester_reply(ticket, "again", actor=Actor.contact("bob"))
    assert follow_up.id != ticket and follow_up.requester_id == "bob"


# ---------------------------------------------------------------- the customer view


def test_a_contact_sees_their_tickets_and_their_shared_organization_s(desk: Helpdesk) -> None:
    mine = _open(desk, "alice", "Alice printer")
    colleague = _open(desk, "ann", "Ann laptop")
    other = _open(desk, "bob", "Bob invoice")
    alice = desk.for_contact("alice")
    assert [t.id for t in alice.tickets()] == [mine]
    assert [t.id for t in alice.organization_tickets()] == [colleague, mine]
    seen = alice.ticket(colleague)
    assert (seen.yours, seen.party) == (False, False)
    assert alice.ticket("#1").id == mine and alice.ticket(1).yours
    with pytest.raises(NotFoundError) as hidden:
        alice.ticket(other)
    with pytest.raises(NotFoundError) as missing:
        alice.ticket("no-such-ticket")
    assert str(hidden.value).replace(other, "X") == str(missing.value).replace(
        "no-such-ticket", "X"
    )
    with pytest.raises(NotFoundError):
        alice.conversation(3)
    # Globex does not share: Bob sees only his own.
    bob = desk.for_contact("bob")
    assert [t.id for t in bob.tickets()] == [other]
    with pytest.raises(AccessDeniedError, match="no organization that shares"):
        bob.organization_tickets()
    with pytest.raises(NotFoundError):
        bob.ticket(mine)
    desk.update_organization("acme", shared_tickets=False)
    with pytest.raises(NotFoundError):
        alice.ticket(colleague)


def test_a_customer_ticket_shows_no_internals(desk: Helpdesk) -> None:
    ticket = _open(desk, "alice", "Printer")
    desk.assign(ticket, AGENT, agent="agent-1")
    desk.tag(ticket, AGENT, "angry_customer")
    desk.note(ticket, AGENT, "she called twice")
    seen = desk.for_contact("alice").ticket(ticket)
    fields = {f.name for f in attrs.fields(CustomerTicket)}
    hidden = {"assignee_id", "group_id", "tags", "custom_fields", "internal_notes", "followers"}
    assert not fields & (hidden | {"requester_id", "organization_id", "links", "sla_policy"})
    assert "angry" not in repr(seen) and "agent-1" not in repr(seen)


def test_the_conversation_has_no_internal_notes_nor_their_files(desk: Helpdesk) -> None:
    ticket = _open(desk, "alice", "Printer")
    desk.note(
        ticket,
        AGENT,
        "looks like her fault",
        attachments=[InboundAttachment(filename="log.txt", content_type="text/plain", data=b"x")],
    )
    desk.reply(
        ticket,
        AGENT,
        "Here is the manual",
        attachments=[
            InboundAttachment(filename="manual.txt", content_type="text/plain", data=b"m")
        ],
    )
    alice = desk.for_contact("alice")
    said = alice.conversation(ticket)
    assert [c.body for c in said] == ["Printer body", "Here is the manual"]
    assert [(c.by_you, c.by_staff) for c in said] == [(True, False), (False, True)]
    assert all(isinstance(c, CustomerComment) for c in said)
    manual = said[1].attachments[0]
    assert alice.attachment_bytes(ticket, manual.id) == b"m"
    (note,) = [c for c in desk.conversation(ticket) if not c.public]
    with pytest.raises(NotFoundError):
        alice.attachment_bytes(ticket, note.attachments[0].id)
    with pytest.raises(NotFoundError):
        desk.for_contact("bob").attachment_bytes(ticket, manual.id)


def test_a_contact_replies_only_where_they_are_a_party(desk: Helpdesk) -> None:
    colleague = _open(desk, "ann", "Ann laptop")
    alice = desk.for_contact("alice")
    before = desk.history(colleague)
    with pytest.raises(AccessDeniedError, match="no party"):
        alice.reply(colleague, "me too")
    assert desk.history(colleague) == before
    other = _open(desk, "bob", "Bob invoice")
    with pytest.raises(NotFoundError):
        alice.reply(other, "hello")
    desk.follow(colleague, AGENT, Actor.contact("alice"))
    after = alice.reply(colleague, "me too")
    assert after.party and not after.yours
    assert desk.conversation(colleague)[-1].author == Actor.contact("alice")


def test_a_contact_opens_tickets_as_themself(desk: Helpdesk) -> None:
    alice = desk.for_contact("alice")
    opened = alice.open_ticket("Need a screen", body="A big one")
    assert opened.yours and opened.channel == "web"
    ticket = desk.ticket(opened.id)
    assert ticket.requester_id == "alice" and ticket.organization_id == "acme"
    assert [t.id for t in alice.tickets()] == [opened.id]
    with pytest.raises(NotFoundError):
        desk.for_contact("nobody")


# ---------------------------------------------------------------- no sequence leaks

SECRET = "SECRET"
VIEWER = "alice"


class CustomerViewMachine(RuleBasedStateMachine):
    """Agents and customers work on the desk; whatever the viewer's view returns (or says
    in a refusal) never holds an internal note, nor a ticket, comment or contact the viewer
    may not see."""

    refs = Bundle("refs")

    @initialize()
    def build(self) -> None:
        self.clock = FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
        self.desk = Helpdesk("memory://", clock=self.clock, entry_points=False)
        desk = self.desk
        desk.add_group("l1", "Service desk")
        desk.add_agent("agent-1", "Alex Agent", groups=["l1"])
        desk.create_organization("Acme", domains=["acme.example"], organization_id="acme")
        desk.create_organization("Globex", domains=["globex.example"], organization_id="globex")
        self.people = {
            "alice": "acme",
            "ann": "acme",
            "bob": "globex",
            "carl": None,
        }
        for name in self.people:
            domain = {"acme": "acme.example", "globex": "globex.example"}.get(
                str(self.people[name]), "nowhere.example"
            )
            desk.create_contact(
                f"Person {name}", emails=[f"{name}@{domain}"], contact_id=f"who-{name}"
            )
        self.view = desk.for_contact(f"who-{VIEWER}")
        self.shared = False
        self.n = 0
        self.texts: dict[str, str] = {}
        """Each marker written, by the ticket it was written on ('internal' for notes)."""

    def _marker(self) -> str:
        self.n += 1
        return f"M{self.n:04d}X"

    def _visible(self, ticket_id: str) -> bool:
        ticket = self.desk.ticket(ticket_id)
        if ticket.has_party(f"who-{VIEWER}"):
            return True
        return self.shared and ticket.organization_id == "acme"

    def _forbidden(self) -> list[str]:
        found = [m for m, where in self.texts.items() if where == "internal"]
        for marker, where in self.texts.items():
            if where != "internal" and not self._visible(where):
                found.append(marker)
        for page in [self.desk.tickets(limit=1000)]:
            for ticket in page:
                if not self._visible(ticket.id):
                    found.append(ticket.id)
        for other in ("ann", "bob", "carl"):  # no view shows who else asks (nor their org)
            found += [f"who-{other}", f"{other}@", f"Person {other}"]
        found += ["globex"]
        found.append("agent-1")
        return found

    def _check(self, value: object) -> None:
        text = repr(value)
        leaked = [f for f in self._forbidden() if f in text]
        assert not leaked, f"leaked {leaked} in {text[:300]}"

    def _through_view(self, call: Any, *args: Any) -> None:
        try:
            got = call(*args)
        except (NotFoundError, AccessDeniedError) as exc:
            # The refusal says what was asked, nothing more.
            message = str(exc)
            for arg in args:
                message = message.replace(repr(arg), "").replace(str(arg), "")
            self._check(message)
            return
        self._check(got)

    # -- the desk moves on

    @rule(target=refs, who=st.sampled_from(["alice", "ann", "bob", "carl"]))
    def someone_opens(self, who: str) -> str:
        self.clock.advance(minutes=1)
        subject, body = self._marker(), self._marker()
        ticket = self.desk.open_ticket(
            Actor.contact(f"who-{who}"), requester=f"who-{who}", subject=subject, body=body
        )
        self.texts[subject] = self.texts[body] = ticket.id
        return ticket.id

    @rule(ref=refs, with_file=st.booleans())
    def agent_notes(self, ref: str, with_file: bool) -> None:
        marker = self._marker()
        files = [
            InboundAttachment(filename="n.txt", content_type="text/plain", data=marker.encode())
        ]
        try:
            self.desk.note(ref, AGENT, marker, attachments=files if with_file else [])
        except HelpkitError:
            return  # closed
        self.texts[marker] = "internal"

    @rule(ref=refs, with_file=st.booleans())
    def agent_replies(self, ref: str, with_file: bool) -> None:
        marker = self._marker()
        files = [
            InboundAttachment(filename="r.txt", content_type="text/plain", data=marker.encode())
        ]
        try:
            self.desk.reply(ref, AGENT, marker, attachments=files if with_file else [])
        except HelpkitError:
            return  # closed
        self.texts[marker] = ref

    @rule(ref=refs, who=st.sampled_from(["alice", "ann"]))
    def agent_copies_in(self, ref: str, who: str) -> None:
        try:
            self.desk.follow(ref, AGENT, Actor.contact(f"who-{who}"))
        except HelpkitError:
            return

    @rule(ref=refs)
    def agent_closes(self, ref: str) -> None:
        try:
            self.desk.close(ref, AGENT)
        except HelpkitError:
            return

    @rule(shared=st.booleans())
    def acme_shares(self, shared: bool) -> None:
        self.desk.update_organization("acme", shared_tickets=shared)
        self.shared = shared

    # -- the viewer looks and writes

    @rule()
    def viewer_lists(self) -> None:
        self._through_view(self.view.tickets)
        self._through_view(self.view.organization_tickets)

    @rule(ref=refs, by_number=st.booleans())
    def viewer_reads(self, ref: str, by_number: bool) -> None:
        wanted: str | int = self.desk.ticket(ref).number if by_number else ref
        self._through_view(self.view.ticket, wanted)
        self._through_view(self.view.conversation, wanted)

    @rule(ref=refs)
    def viewer_fetches_files(self, ref: str) -> None:
        for comment in self.desk.conversation(ref):
            for attachment in comment.attachments:
                self._through_view(self.view.attachment_bytes, ref, attachment.id)

    @rule(target=refs, ref=refs)
    def viewer_replies(self, ref: str) -> str:
        marker = self._marker()
        before = self.desk.history(ref)
        try:
            after = self.view.reply(ref, marker)
        except (NotFoundError, AccessDeniedError):
            assert self.desk.history(ref) == before
            return ref
        self.texts[marker] = after.id
        self._check(after)
        return after.id

    @rule(target=refs)
    def viewer_opens(self) -> str:
        subject = self._marker()
        opened = self.view.open_ticket(subject)
        self.texts[subject] = opened.id
        self._check(opened)
        return opened.id

    def teardown(self) -> None:
        if hasattr(self, "desk"):
            self.desk.shutdown()

    @invariant()
    def listings_hold_only_visible_tickets(self) -> None:
        if not hasattr(self, "view"):
            return
        for ticket in self.view.tickets(limit=1000):
            assert self._visible(ticket.id)
        if self.shared:
            for ticket in self.view.organization_tickets(limit=1000):
                assert self._visible(ticket.id)


TestCustomerViewMachine = CustomerViewMachine.TestCase
TestCustomerViewMachine.settings = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
