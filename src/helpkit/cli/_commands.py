"""The ``helpkit`` commands: ``cmd_NAME(desk, args)`` per sub-command, returning the exit status."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

import attrs

from helpkit import serialize
from helpkit.cli._config import (
    CONFIG_FILE,
    DEMO_SECRET_FILE,
    config_template,
    demo_config_template,
)
from helpkit.cli._deliver import demo_relay_lines
from helpkit.cli._demo import _demo, _SimClock
from helpkit.cli._errors import UsageError
from helpkit.cli._output import (
    _author_names,
    _describe_comment,
    _describe_event,
    _emit_json,
    _print_sla,
    _print_tickets,
    _recipient_names,
    _ticket_row,
)
from helpkit.cli._report import write_html
from helpkit.cli._staff import UNSOLVED
from helpkit.cli._store import shown, sqlite_path
from helpkit.desk import UNSET, Helpdesk
from helpkit.errors import NotFoundError, ValidationError
from helpkit.ids import new_id
from helpkit.people import Organization
from helpkit.plugins import list_plugins
from helpkit.ports import ChangeFeed
from helpkit.queries import Page, SortOrder, TicketQuery
from helpkit.sla import parse_duration
from helpkit.tickets import Actor, ActorKind, StatusCategory, Ticket

_LATEST = datetime.max.replace(tzinfo=UTC)
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _ticket_query(desk: Helpdesk, args: argparse.Namespace, now: datetime) -> TicketQuery:
    """The query of ``list``'s filters; a status, agent, group or organization that does not
    exist is a usage error (it would silently list nothing)."""
    for status in args.status or ():
        desk.config.workflow.status(status)
    for agent in args.assignee or ():
        desk.agent(agent)
    for group in args.group or ():
        desk.group(group)
    for org in args.org or ():
        desk.organization(org)
    deadline = None if args.breaching_within is None else _shift(now, args.breaching_within)
    if args.breached:
        deadline = now if deadline is None else min(deadline, now)
    return TicketQuery(
        deadline_before=deadline,
        next_check_before=now if args.overdue else None,
        statuses=args.status or None,
        categories=args.category or None,
        assignee_ids=args.assignee or None,
        unassigned=args.unassigned,
        group_ids=args.group or None,
        requester_ids=args.requester or None,
        organization_ids=args.org or None,
        priorities=args.priority or None,
        tags=args.tag or (),
        sort=SortOrder(args.sort),
        limit=args.limit,
    )


def _shift(now: datetime, text: str) -> datetime:
    """``now`` plus a duration such as ``1h`` or ``-30m`` (clamped to the calendar's ends)."""
    body = text.strip()
    negative = body.startswith("-")
    try:
        delta = parse_duration(body.removeprefix("-").strip())
    except ValidationError as exc:
        raise UsageError(f"--breaching-within: {exc}") from None
    try:
        return now - delta if negative else now + delta
    except OverflowError:
        return _EARLIEST if negative else _LATEST


def _page(desk: Helpdesk, query: TicketQuery, after: str | None) -> Page[Ticket]:
    """A page of ``query`` after the cursor ``after`` (printed by the previous page)."""
    if after is not None:
        try:
            query = attrs.evolve(query, after=after)
        except ValidationError:
            raise UsageError(
                f"--after {after[:40]!r} is not a cursor this list printed (copy the value "
                f"after 'more: --after', with the same --sort {query.sort.value})"
            ) from None
    return desk.tickets(query)


def _resolve_requesters(desk: Helpdesk, values: list[str] | None) -> list[str] | None:
    if not values:
        return values
    found = []
    for value in values:
        found.append(desk.contact_by_email(value).id if "@" in value else desk.contact(value).id)
    return found


def _write_template() -> None:
    Path(CONFIG_FILE).write_text(config_template(), encoding="utf-8")


def _write_secret(path: Path, secret: str) -> None:
    """Write ``secret`` to a new file only its owner may read."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(secret + "\n")


def check_init(args: argparse.Namespace) -> None:
    """What ``init`` refuses before the store is opened (and so created)."""
    if args.write_config and Path(CONFIG_FILE).exists():
        raise UsageError(f"{CONFIG_FILE} already exists; not overwriting it")


def cmd_init(desk: Helpdesk, args: argparse.Namespace) -> int:
    check_init(args)
    print(f"helpkit: store ready at {shown(args.store)}")
    if args.write_config:
        _write_template()
        print(f"helpkit: wrote {CONFIG_FILE}")
    return 0


REPORT_FILE = "helpkit-report.html"


def demo_report_path(store: str) -> str:
    """Where the demo writes its HTML report: beside the SQLite file, else in the current
    directory."""
    database = sqlite_path(store)
    folder = "" if database is None else os.path.dirname(database)
    return os.path.join(folder, REPORT_FILE)


def cmd_demo(desk: Helpdesk, args: argparse.Namespace) -> int:
    if desk.tickets(TicketQuery(limit=1)).items and not args.force:
        raise UsageError(
            f"{args.store} already holds tickets; use another --store, or --force to add a "
            "demo's tickets to them"
        )
    if args.write_config:  # only once nothing refused the demo
        Path(CONFIG_FILE).write_text(demo_config_template(), encoding="utf-8")
        if args.demo_secret is not None:
            _write_secret(Path(DEMO_SECRET_FILE), args.demo_secret)
    clock = desk.clock
    assert isinstance(clock, _SimClock)
    start = desk.store.last_position() if isinstance(desk.store, ChangeFeed) else 0
    done = _demo(desk, clock, args.tickets, args.seed)
    swept = done.swept
    now = desk.now()
    report_path = demo_report_path(args.store)
    kpis = desk.kpis(now=now)
    write_html(kpis, report_path)
    if not args.json:
        print(f"helpkit demo: {args.tickets} tickets over a simulated week in {args.store}")
        if args.write_config:
            print(
                f"(wrote {CONFIG_FILE}: calendars, SLA policies, tiers, escalation rules and "
                "a Maildir channel for email)"
            )
        print(
            f"SLA sweep: {swept.warnings} warnings, {swept.breaches} breaches, "
            f"{swept.escalations} escalations"
        )
        csat = kpis.satisfaction
        if csat.offered:
            score = "-" if csat.score is None else f"{csat.score:.0%}"
            print(
                f"Satisfaction surveys: {csat.offered} offered, {csat.responses} answered, "
                f"{score} good ({csat.bad} bad)"
            )
        for line in demo_relay_lines(desk, done.relayed, start):
            print(line)
        print("\nThe agents' queue (new and open tickets, most urgent first):")
    query = TicketQuery(
        categories={StatusCategory.NEW, StatusCategory.OPEN}, sort=SortOrder.PRIORITY, limit=15
    )
    page = desk.tickets(query)
    if args.json:
        _emit_json([serialize.to_data(t) for t in page])
    else:
        _print_tickets(page.items, None, now, empty="no new or open tickets")
        show = f"helpkit show {page.items[0].number}" if page.items else "helpkit list"
        print(f"\nTry: helpkit queue --agent ana   |   {show}   |   helpkit contacts")
        print(f"The week's KPIs, charted: {report_path} (open it in a browser; helpkit report)")
    return 0


def _open_actor(desk: Helpdesk, args: argparse.Namespace) -> Actor:
    """Who opens the ticket: ``--as`` (or $HELPKIT_ACTOR), else the requester themself.

    A requester that is a new email address has no contact yet: its id is drawn now and the
    desk's id factory hands it to the contact ``open_ticket`` creates (the first id it draws),
    so the ticket and its first message are the requester's and a refused ticket still leaves
    no contact behind.
    """
    if args.explicit_actor is not None:
        actor: Actor = args.explicit_actor
        return actor
    requester = args.requester
    if "@" not in requester:
        return Actor.contact(desk.contact(requester).id)
    for find in (desk.contact, desk.contact_by_email):  # the order open_ticket looks in
        try:
            return Actor.contact(find(requester).id)
        except NotFoundError:
            continue
    contact_id = new_id()
    args.reserved_ids.append(contact_id)
    return Actor.contact(contact_id)


def cmd_open(desk: Helpdesk, args: argparse.Namespace) -> int:
    ticket = desk.open_ticket(
        _open_actor(desk, args),
        requester=args.requester,
        subject=args.subject,
        body=args.body,
        impact=args.impact,
        urgency=args.urgency,
        channel=args.channel,
        tags=args.tag or (),
        group=args.group,
        assignee=args.assignee,
    )
    return _report(ticket, args, "opened")


def cmd_list(desk: Helpdesk, args: argparse.Namespace) -> int:
    args.requester = _resolve_requesters(desk, args.requester)
    now = desk.now()
    page = _page(desk, _ticket_query(desk, args, now), args.after)
    if args.json:
        _emit_json(
            {"tickets": [serialize.to_data(t) for t in page], "next_cursor": page.next_cursor}
        )
    else:
        _print_tickets(page.items, page.next_cursor, now)
    return 0


def cmd_queue(desk: Helpdesk, args: argparse.Namespace) -> int:
    agent = args.agent
    if agent is None and args.actor.kind is ActorKind.AGENT:
        agent = args.actor.id
    if agent is None and args.group is None:
        raise UsageError("whose queue? name an agent (--agent ID or --as agent:ID) or --group G")
    who = []
    if agent is not None:
        who.append(f"{desk.agent(agent).name} ({agent})")
    if args.group is not None:
        who.append(f"group {desk.group(args.group).name} ({args.group})")
    query = TicketQuery(
        assignee_ids=None if agent is None else {agent},
        group_ids=None if args.group is None else {args.group},
        categories=UNSOLVED,
        sort=SortOrder.PRIORITY,
        limit=args.limit,
    )
    now = desk.now()
    page = _page(desk, query, args.after)
    if args.json:
        _emit_json(
            {"tickets": [serialize.to_data(t) for t in page], "next_cursor": page.next_cursor}
        )
        return 0
    whose = " in ".join(who)
    if page.items:
        print(f"Queue of {whose}: unsolved tickets, most urgent first")
    _print_tickets(page.items, page.next_cursor, now, empty=f"no unsolved tickets for {whose}")
    return 0


def cmd_show(desk: Helpdesk, args: argparse.Namespace) -> int:
    ticket = desk.ticket(_ticket_ref(args.ticket))
    conversation = desk.conversation(ticket)
    history = desk.history(ticket)
    if args.json:
        sla = desk.sla(ticket)
        tiers = desk.tier_times(ticket) if sla is not None else {}
        _emit_json(
            {
                "ticket": serialize.to_data(ticket),
                "sla": None if sla is None else serialize.to_data(sla),
                "tier_times": {f"L{k}": serialize.to_data(v) for k, v in sorted(tiers.items())},
                "conversation": [serialize.to_data(c) for c in conversation],
                "history": [serialize.to_data(e) for e in history],
            }
        )
        return 0
    requester = desk.contact(ticket.requester_id)
    print(f"{ticket.reference}  {ticket.subject}")
    print(f"  status    {ticket.status} ({ticket.category.value})")
    print(
        f"  priority  {ticket.priority.name} {ticket.priority.label} "
        f"(impact {ticket.impact.value}, urgency {ticket.urgency.value})"
    )
    print(f"  requester {requester.name} <{requester.email or '-'}>")
    print(f"  assignee  {ticket.assignee_id or '-'}   group {ticket.group_id or '-'}")
    if ticket.tags:
        print(f"  tags      {', '.join(sorted(ticket.tags))}")
    if ticket.satisfaction_offered_at is not None:
        print(
            f"  survey    offered {ticket.satisfaction_offered_at:%Y-%m-%d %H:%M} UTC, "
            f"rated {ticket.satisfaction or '-'}"
        )
    if ticket.merged_into:
        print(f"  merged into {desk.ticket(ticket.merged_into).reference}")
    for link in sorted(ticket.links, key=lambda x: (x.kind.value, x.target_id)):
        print(f"  {link.kind.value} {desk.ticket(link.target_id).reference}")
    print(
        f"  created   {ticket.created_at:%Y-%m-%d %H:%M} UTC, "
        f"updated {ticket.updated_at:%Y-%m-%d %H:%M}"
    )
    _print_sla(desk, ticket)
    print("\nConversation:")
    names = _author_names(desk, conversation)
    for comment in conversation:
        print(_describe_comment(comment, names.get(str(comment.author))))
    print("\nHistory:")
    recipients = _recipient_names(desk, history)
    for event in history:
        print(_describe_event(event, recipients))
    return 0


def _report(ticket: Ticket, args: argparse.Namespace, verb: str) -> int:
    if getattr(args, "json", False):
        _emit_json(serialize.to_data(ticket))
    else:
        print(
            f"{ticket.reference} {verb}: {ticket.status}, {ticket.priority.name}, {ticket.subject}"
        )
    return 0


def _ticket_ref(text: str) -> str | int:
    """A ticket number (``42``, ``#42``: ASCII digits) or else an id."""
    stripped = text.strip().removeprefix("#")
    return int(stripped) if stripped.isascii() and stripped.isdigit() else text


def cmd_reply(desk: Helpdesk, args: argparse.Namespace) -> int:
    ticket = desk.reply(_ticket_ref(args.ticket), args.actor, args.body, status=args.status)
    return _report(ticket, args, "replied")


def cmd_note(desk: Helpdesk, args: argparse.Namespace) -> int:
    return _report(desk.note(_ticket_ref(args.ticket), args.actor, args.body), args, "noted")


def cmd_assign(desk: Helpdesk, args: argparse.Namespace) -> int:
    if args.agent is None and args.group is None:
        raise UsageError("assign needs --agent and/or --group")
    ticket = desk.assign(
        _ticket_ref(args.ticket),
        args.actor,
        agent=UNSET if args.agent is None else (None if args.agent == "-" else args.agent),
        group=UNSET if args.group is None else (None if args.group == "-" else args.group),
    )
    return _report(ticket, args, "assigned")


def cmd_transfer(desk: Helpdesk, args: argparse.Namespace) -> int:
    ticket = desk.transfer(
        _ticket_ref(args.ticket), args.actor, group=args.group, agent=args.agent, reason=args.reason
    )
    return _report(ticket, args, "transferred")


def cmd_status(desk: Helpdesk, args: argparse.Namespace) -> int:
    ticket = desk.set_status(_ticket_ref(args.ticket), args.actor, args.status, reason=args.reason)
    return _report(ticket, args, "updated")


def cmd_merge(desk: Helpdesk, args: argparse.Namespace) -> int:
    target = desk.merge(_ticket_ref(args.source), _ticket_ref(args.target), args.actor)
    return _report(target, args, "received the merge")


def cmd_resolve(desk: Helpdesk, args: argparse.Namespace) -> int:
    ticket = desk.resolve(_ticket_ref(args.ticket), args.actor, comment=args.comment)
    return _report(ticket, args, "resolved")


def cmd_close(desk: Helpdesk, args: argparse.Namespace) -> int:
    return _report(desk.close(_ticket_ref(args.ticket), args.actor), args, "closed")


def cmd_sweep(desk: Helpdesk, args: argparse.Namespace) -> int:
    now = None if args.now is None else _instant(args.now)
    report = desk.sweep(now)
    if args.json:
        _emit_json(serialize.to_data(report))
    else:
        print(
            f"swept at {report.now:%Y-%m-%d %H:%M:%S} UTC: {report.examined} due, "
            f"{report.warnings} warnings, {report.breaches} breaches, "
            f"{report.escalations} escalations, {report.priority_raises} priority raises"
            + (
                f", {report.satisfaction_offers} satisfaction surveys offered"
                if report.satisfaction_offers
                else ""
            )
            + (f", {report.failures} failures" if report.failures else "")
        )
    return 1 if report.failures else 0


def cmd_route(desk: Helpdesk, args: argparse.Namespace) -> int:
    routed = desk.route_waiting(args.group, limit=args.limit)
    if args.json:
        _emit_json([serialize.to_data(t) for t in routed])
    else:
        print(f"routed {len(routed)} waiting ticket{'' if len(routed) == 1 else 's'}")
        for ticket in routed:
            print(f"  #{ticket.number} -> {ticket.assignee_id} ({ticket.group_id})")
    return 0


def cmd_rate(desk: Helpdesk, args: argparse.Namespace) -> int:
    token = args.token.strip().removeprefix("helpkit-rate:")
    ticket = desk.rate(token, args.rating, args.comment)
    return _report(ticket, args, f"rated {args.rating}")


def _instant(text: str) -> datetime:
    """An aware ISO 8601 instant, in UTC."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--now must be an ISO 8601 instant; got {text!r}") from None
    if at.tzinfo is None:
        raise UsageError("--now needs a UTC offset, e.g. 2026-11-23T09:00:00+00:00")
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise UsageError(f"--now {text!r} is out of range in UTC") from None


def cmd_escalate(desk: Helpdesk, args: argparse.Namespace) -> int:
    ref = _ticket_ref(args.ticket)
    if args.down:
        ticket = desk.de_escalate(ref, args.actor, group=args.group, reason=args.reason)
    else:
        ticket = desk.escalate(
            ref, args.actor, group=args.group, functional=args.functional, reason=args.reason
        )
    verb = "de-escalated" if args.down else "escalated"
    return _report(ticket, args, f"{verb} to {ticket.group_id}")


def cmd_contacts(desk: Helpdesk, args: argparse.Namespace) -> int:
    if args.add:
        contact = desk.create_contact(
            args.add,
            emails=args.email or (),
            phone=args.phone,
            language=args.language,
            organization=UNSET if args.org is None else args.org,
            vip=args.vip,
        )
        found = [contact]
    elif args.email:
        found = [desk.contact_by_email(e) for e in args.email]
    else:
        found = desk.find_contacts(args.search or "", limit=args.limit)
    if args.json:
        _emit_json([serialize.to_data(c) for c in found])
        return 0
    if not found:
        print("no contacts")
    for contact in found:
        org = desk.organization(contact.organization_id).name if contact.organization_id else "-"
        vip = " VIP" if contact.vip else ""
        print(f"{contact.id:34}  {contact.name:24}  {contact.email or '-':32}  {org}{vip}")
        if args.tickets:
            for ticket in desk.tickets_of_contact(contact):
                print("    " + _ticket_row(ticket, desk.now()))
    return 0


def cmd_orgs(desk: Helpdesk, args: argparse.Namespace) -> int:
    found: list[Organization]
    if args.add:
        found = [
            desk.create_organization(
                args.add, domains=args.domain or (), segment=args.segment, region=args.region
            )
        ]
    elif args.domain:
        found = [desk.organization_by_domain(d) for d in args.domain]
    else:
        found = desk.find_organizations(args.search or "", limit=args.limit)
    if args.json:
        _emit_json([serialize.to_data(o) for o in found])
        return 0
    if not found:
        print("no organizations")
    for org in found:
        print(f"{org.id:34}  {org.name:24}  {', '.join(org.domains) or '-'}")
        if args.tickets:
            for ticket in desk.tickets_of_organization(org):
                print("    " + _ticket_row(ticket, desk.now()))
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    infos = list_plugins()
    if args.json:
        _emit_json([serialize.to_data(info) for info in infos])
        return 0
    for info in infos:
        print(
            f"{info.name} ({info.source}): stores={','.join(info.stores) or '-'} "
            f"channels={','.join(info.channels) or '-'} "
            f"blob_stores={','.join(info.blob_stores) or '-'} "
            f"observer={'yes' if info.observes_events else 'no'} "
            f"screen={'yes' if info.screens_inbound else 'no'}"
        )
    return 0
