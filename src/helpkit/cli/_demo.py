"""``helpkit demo``: a simulated week of a helpdesk, on a clock moved by hand."""

from __future__ import annotations

import random
import unicodedata
from datetime import datetime, timedelta
from typing import Any

import attrs

from helpkit.cli._output import _Progress
from helpkit.desk import Helpdesk
from helpkit.errors import NotFoundError
from helpkit.people import Contact, Organization
from helpkit.priority import Impact, Urgency
from helpkit.relay import RelayReport
from helpkit.sweep import SweepReport
from helpkit.tickets import Actor, StatusCategory


class _SimClock:
    """A clock the demo moves by hand, so a simulated week passes in seconds."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current


@attrs.frozen
class DemoReport:
    """What the demo's hourly SLA sweeps and relay runs did."""

    swept: SweepReport
    relayed: RelayReport


def _demo(desk: Helpdesk, clock: _SimClock, tickets: int, seed: int) -> DemoReport:
    """Simulate a week; return what the hourly SLA sweeps and relay runs did.

    On a store a former demo filled (``demo --force``), its groups and agents are saved again
    as the demo defines them (active), and its organizations and contacts are reused.
    """
    rng = random.Random(seed)
    desk.add_group("l1", "Service desk", tier=1)
    desk.add_group("l2", "Technicians", tier=2)
    desk.add_group("l3", "Specialists", tier=3)
    staff = {"l1": ["ana", "ben", "chloe"], "l2": ["dmitri", "esra"], "l3": ["farid"]}
    for group, names in staff.items():
        for name in names:
            desk.add_agent(name, name.title(), email=f"{name}@support.example", groups=[group])
    orgs = [
        _organization(desk, "Acme SA", "acme.example", segment="enterprise"),
        _organization(desk, "Globex GmbH", "globex.example", region="EMEA"),
        _organization(desk, "Initech", "initech.example", segment="smb"),
        _organization(desk, "Umbrella Société", "umbrella.example", vip=True),
    ]
    first = ["José", "Marie", "Wei", "Aisha", "Lars", "Priya", "Tomás", "Zoë"]
    last = ["Núñez", "Dubois", "Chen", "Okafor", "Berg", "Patel", "García", "Müller"]
    contacts: list[Contact] = []
    for index in range(32):
        org = orgs[index % len(orgs)]
        given, family = first[index % 8], last[(index * 3 + index // 8) % 8]
        email = f"{_ascii(given)}.{_ascii(family)}.{index}@{org.domains[0]}".lower()
        try:
            contacts.append(desk.contact_by_email(email))  # demo --force: a former demo's
        except NotFoundError:
            contacts.append(desk.create_contact(f"{given} {family}", emails=[email]))
    subjects = [
        "VPN drops every few minutes",
        "Cannot print to the 3rd floor printer",
        "Password reset link expired",
        "Invoice PDF shows wrong VAT",
        "Laptop fan is very loud",
        "Shared mailbox missing in Outlook",
        "Request: new monitor",
        "CRM export times out",
        "Wi-Fi in meeting room B is down",
        "Access to the finance share",
    ]
    impacts = [Impact.HIGH, Impact.MEDIUM, Impact.LOW]
    urgencies = [Urgency.HIGH, Urgency.MEDIUM, Urgency.LOW]
    mean_gap = timedelta(days=7) / tickets
    live: list[str] = []
    progress = _Progress(tickets, "demo")
    last_sweep = clock.current
    swept = SweepReport(now=clock.current)
    relayed = RelayReport()
    raters = random.Random(seed + 1)  # the requesters answering surveys: a stream of its own
    waiting: dict[str, None] = {}  # tickets seen solved, their survey not yet offered
    for _ in range(tickets):
        clock.current += mean_gap * rng.uniform(0.2, 1.8)
        if clock.current - last_sweep >= timedelta(hours=1):
            swept += desk.sweep(clock.current)  # as cron jobs would, every hour
            relayed += desk.deliver_pending()
            last_sweep = clock.current
            _answer_surveys(desk, raters, waiting)
        who = rng.choice(contacts)
        ticket = desk.open_ticket(
            Actor.contact(who.id),
            requester=who,
            subject=rng.choice(subjects),
            body="Hello, could you help me with this?",
            impact=rng.choices(impacts, weights=[1, 3, 6])[0],
            urgency=rng.choices(urgencies, weights=[2, 4, 4])[0],
            channel=rng.choice(["email", "web", "chat"]),
        )
        live.append(ticket.id)
        for ticket_id in rng.sample(live, k=min(3, len(live))):
            _demo_step(desk, rng, staff, ticket_id)
        states = [desk.ticket(t) for t in live]
        if desk.config.csat.enabled:
            waiting.update((t.id, None) for t in states if t.solved_at is not None)
        live = [t.id for t in states if not t.is_closed]
        progress.step()
    swept += desk.sweep(clock.current)
    return DemoReport(swept, relayed + desk.deliver_pending())


def _answer_surveys(desk: Helpdesk, rng: random.Random, waiting: dict[str, None]) -> None:
    """Some requesters answer the surveys offered since the last look: most rate good, some
    bad (with a word why), many never answer."""
    for ticket_id in list(waiting):
        ticket = desk.ticket(ticket_id)
        if ticket.satisfaction_offered_at is None:
            continue
        del waiting[ticket_id]
        if rng.random() < 0.4:
            continue  # no answer
        comment: str | None
        if rng.random() < 0.2:
            rating, comment = "bad", rng.choice(["Took far too long.", "Still not fixed."])
        else:
            rating, comment = "good", rng.choice([None, None, "Quick and friendly, thanks!"])
        desk.rate(desk.rating_token(ticket), rating, comment)


def _ascii(text: str) -> str:
    """``text`` without its accents (``Tomás`` -> ``Tomas``), for an email address."""
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode("ascii")


def _organization(desk: Helpdesk, name: str, domain: str, **fields: Any) -> Organization:
    """The demo's organization owning ``domain``: the one a former demo made, else a new one."""
    try:
        return desk.organization_by_domain(domain)
    except NotFoundError:
        return desk.create_organization(name, domains=[domain], **fields)


def _demo_step(
    desk: Helpdesk, rng: random.Random, staff: dict[str, list[str]], ticket_id: str
) -> None:
    current = desk.ticket(ticket_id)
    group = current.group_id or "l1"
    agent = current.assignee_id or rng.choice(staff[group])
    actor = Actor.agent(agent)
    roll = rng.random()
    if current.category is StatusCategory.NEW:
        desk.assign(current, actor, agent=agent, group=group)
        if roll < 0.3:  # answered at once: a first-contact resolution unless it comes back
            desk.resolve(
                current, actor, comment="A known one: the steps in the attached guide fix it."
            )
        else:
            desk.reply(current, actor, "Thanks, we are looking into it.")
    elif current.category is StatusCategory.SOLVED:
        if roll < 0.2:
            desk.requester_reply(current, "Sorry, it is broken again.")
        else:
            desk.close(current, actor)
    elif current.category is StatusCategory.PENDING:
        desk.requester_reply(current, "Here is the screenshot you asked for.")
    elif roll < 0.25:
        desk.reply(current, actor, "Could you send a screenshot?", status="pending")
    elif roll < 0.35 and group != "l3":
        target = "l2" if group == "l1" else "l3"
        desk.transfer(
            current, actor, group=target, agent=rng.choice(staff[target]), reason="needs expertise"
        )
    elif roll < 0.65:
        desk.resolve(current, actor, comment="This should be fixed now.")
    elif roll < 0.8:
        desk.note(current, actor, "Checked the logs, nothing obvious.")
