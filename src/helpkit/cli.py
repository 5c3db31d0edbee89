"""The ``helpkit`` command line (``python -m helpkit``)."""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import attrs

from helpkit.desk import Helpdesk
from helpkit.errors import HelpkitError
from helpkit.plugins import list_plugins
from helpkit.priority import Impact, Urgency
from helpkit.queries import SortOrder, TicketQuery
from helpkit.tickets import Actor, StatusCategory

__all__ = ["main"]

DEFAULT_STORE = "memory://"


class _SimClock:
    """A clock the demo moves forward by hand, so a week passes in a second."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current


def _demo(desk: Helpdesk, clock: _SimClock, tickets: int, seed: int) -> None:
    rng = random.Random(seed)
    desk.add_group("l1", "Service desk", tier=1)
    desk.add_group("l2", "Technicians", tier=2)
    desk.add_group("l3", "Specialists", tier=3)
    staff = {
        "l1": ["ana", "ben", "chloe"],
        "l2": ["dmitri", "esra"],
        "l3": ["farid"],
    }
    for group, names in staff.items():
        for name in names:
            desk.add_agent(name, name.title(), email=f"{name}@support.example", groups=[group])
    orgs = [
        desk.create_organization("Acme SA", domains=["acme.example"], segment="enterprise"),
        desk.create_organization("Globex GmbH", domains=["globex.example"], region="EMEA"),
        desk.create_organization("Initech", domains=["initech.example"], segment="smb"),
    ]
    first = ["José", "Marie", "Wei", "Aisha", "Lars", "Priya", "Tomás", "Zoë"]
    last = ["Núñez", "Dubois", "Chen", "Okafor", "Berg", "Patel", "García", "Müller"]
    contacts = []
    for index in range(24):
        org = orgs[index % len(orgs)]
        given, family = first[index % 8], last[(index * 3) % 8]
        email = f"{given.lower()}.{index}@{org.domains[0]}".encode("ascii", "ignore").decode()
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
    ]
    levels = [Impact.HIGH, Impact.MEDIUM, Impact.LOW]
    urgencies = [Urgency.HIGH, Urgency.MEDIUM, Urgency.LOW]
    open_ids: list[str] = []
    for _ in range(tickets):
        clock.current += timedelta(minutes=rng.randint(5, 40))
        who = rng.choice(contacts)
        ticket = desk.open_ticket(
            Actor.contact(who.id),
            requester=who,
            subject=rng.choice(subjects),
            body="Hello, could you help?",
            impact=rng.choices(levels, weights=[1, 3, 6])[0],
            urgency=rng.choices(urgencies, weights=[2, 4, 4])[0],
            channel=rng.choice(["email", "web", "chat"]),
        )
        open_ids.append(ticket.id)
        for ticket_id in rng.sample(open_ids, k=min(3, len(open_ids))):
            current = desk.ticket(ticket_id)
            if current.is_closed:
                continue
            group = rng.choice(list(staff))
            agent = rng.choice(staff[group])
            actor = Actor.agent(agent)
            step = rng.random()
            if current.category is StatusCategory.NEW:
                desk.assign(current, actor, agent=agent, group=group)
                desk.reply(current, actor, "Thanks, looking into it.")
            elif current.category is StatusCategory.SOLVED:
                desk.close(current, actor)
            elif step < 0.3:
                desk.reply(current, actor, "Could you send a screenshot?", status="pending")
            elif step < 0.45 and current.category is StatusCategory.PENDING:
                desk.requester_reply(current, "Here it is.")
            elif step < 0.7:
                desk.resolve(current, actor, comment="This should be fixed now.")
            else:
                desk.note(current, actor, "Checked the logs.")


def _print_queue(desk: Helpdesk, *, as_json: bool) -> None:
    page = desk.tickets(
        TicketQuery(
            categories={StatusCategory.NEW, StatusCategory.OPEN},
            sort=SortOrder.PRIORITY,
            limit=15,
        )
    )
    if as_json:
        rows = [
            {
                "number": t.number,
                "priority": t.priority.name,
                "status": t.status,
                "assignee": t.assignee_id,
                "group": t.group_id,
                "subject": t.subject,
            }
            for t in page
        ]
        print(json.dumps(rows, indent=2))
        return
    print(f"{'#':>5}  {'prio':4}  {'status':8}  {'assignee':9}  subject")
    for t in page:
        print(
            f"{t.reference:>5}  {t.priority.name:4}  {t.status:8}  "
            f"{(t.assignee_id or '-'):9}  {t.subject}"
        )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helpkit", description="An embeddable helpdesk core.")
    parser.add_argument(
        "--store",
        default=os.environ.get("HELPKIT_STORE", DEFAULT_STORE),
        help="store URL (default: $HELPKIT_STORE or %(default)s)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fill a realistic helpdesk and show the agents' queue")
    demo.add_argument("--tickets", type=int, default=300, help="tickets to create (default 300)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--json", action="store_true", help="print the queue as JSON")
    plugins = sub.add_parser("plugins", help="list plugins and what they register")
    plugins.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "plugins":
            infos = list_plugins()
            if args.json:
                print(json.dumps([attrs.asdict(info) for info in infos], indent=2))
            else:
                for info in infos:
                    print(
                        f"{info.name} ({info.source}): stores={','.join(info.stores) or '-'} "
                        f"channels={','.join(info.channels) or '-'}"
                    )
            return 0
        if args.tickets < 1:
            raise HelpkitError("--tickets must be at least 1")
        clock = _SimClock(datetime(2026, 11, 16, 8, 0, tzinfo=UTC))
        with Helpdesk(args.store, clock=clock) as desk:
            _demo(desk, clock, args.tickets, args.seed)
            if not args.json:
                total = desk.tickets(TicketQuery(limit=1000))
                print(f"helpkit demo: {len(total)} tickets over a simulated week in {args.store}\n")
            _print_queue(desk, as_json=args.json)
        return 0
    except HelpkitError as exc:
        print(f"helpkit: error: {exc}", file=sys.stderr)
        return 2
