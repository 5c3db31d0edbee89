"""The ``helpkit`` commands: ``cmd_NAME(desk, args)`` per sub-command, returning the exit status."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from pathlib import Path

from helpkit import serialize
from helpkit.cli._config import _CONFIG_TEMPLATE, CONFIG_FILE
from helpkit.cli._demo import _demo, _SimClock
from helpkit.cli._output import (
    _author_names,
    _describe_comment,
    _emit_json,
    _print_sla,
    _print_tickets,
    _ticket_row,
)
from helpkit.desk import UNSET, Helpdesk
from helpkit.errors import HelpkitError, ValidationError
from helpkit.people import Organization
from helpkit.plugins import list_plugins
from helpkit.queries import SortOrder, TicketQuery
from helpkit.sla import parse_duration
from helpkit.tickets import StatusCategory, Ticket


class UsageError(HelpkitError):
    """A command-line mistake (reported on one line, exit status 2)."""


def _ticket_query(args: argparse.Namespace, now: datetime) -> TicketQuery:
    within = args.breaching_within
    return TicketQuery(
        deadline_before=None if within is None else now + _duration(within),
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
        after=args.after,
    )


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValidationError as exc:
        raise UsageError(str(exc)) from None


def _resolve_requesters(desk: Helpdesk, values: list[str] | None) -> list[str] | None:
    if not values:
        return values
    found = []
    for value in values:
        found.append(desk.contact_by_email(value).id if "@" in value else desk.contact(value).id)
    return found


def cmd_init(desk: Helpdesk, args: argparse.Namespace) -> int:
    print(f"helpkit: store ready at {args.store}")
    config = Path(CONFIG_FILE)
    if args.write_config:
        if config.exists():
            raise UsageError(f"{CONFIG_FILE} already exists; not overwriting it")
        config.write_text(_CONFIG_TEMPLATE, encoding="utf-8")
        print(f"helpkit: wrote {CONFIG_FILE}")
    return 0


def cmd_demo(desk: Helpdesk, args: argparse.Namespace) -> int:
    if args.tickets < 1:
        raise UsageError("--tickets must be at least 1")
    if desk.tickets(TicketQuery(limit=1)).items and not args.force:
        raise UsageError(
            f"{args.store} already holds tickets; use another --store or --force to add more"
        )
    clock = desk.clock
    assert isinstance(clock, _SimClock)
    swept = _demo(desk, clock, args.tickets, args.seed)
    if not args.json:
        print(f"helpkit demo: {args.tickets} tickets over a simulated week in {args.store}")
        if args.wrote_config:
            print(f"(wrote {CONFIG_FILE}: calendars, SLA policies, tiers and escalation rules)")
        print(
            f"SLA sweep: {swept.warnings} warnings, {swept.breaches} breaches, "
            f"{swept.escalations} escalations\n"
        )
        print("The agents' queue (new and open tickets, most urgent first):")
    query = TicketQuery(
        categories={StatusCategory.NEW, StatusCategory.OPEN}, sort=SortOrder.PRIORITY, limit=15
    )
    page = desk.tickets(query)
    if args.json:
        _emit_json([serialize.to_data(t) for t in page])
    else:
        _print_tickets(page.items, None)
        print("\nTry: helpkit list --assignee ana   |   helpkit show 1   |   helpkit contacts")
    return 0


def cmd_open(desk: Helpdesk, args: argparse.Namespace) -> int:
    ticket = desk.open_ticket(
        args.actor,
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
    page = desk.tickets(_ticket_query(args, desk.now()))
    if args.json:
        _emit_json(
            {"tickets": [serialize.to_data(t) for t in page], "next_cursor": page.next_cursor}
        )
    else:
        _print_tickets(page.items, page.next_cursor)
    return 0


def cmd_show(desk: Helpdesk, args: argparse.Namespace) -> int:
    ticket = desk.ticket(_ticket_ref(args.ticket))
    conversation = desk.conversation(ticket)
    history = desk.history(ticket)
    if args.json:
        _emit_json(
            {
                "ticket": serialize.to_data(ticket),
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
    for event in history:
        print(f"  {event.seq:>3}  {event.at:%Y-%m-%d %H:%M}  {event.actor}  {event.TYPE}")
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
    stripped = text.strip().removeprefix("#")
    return int(stripped) if stripped.isdigit() else text


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
    now = None
    if args.now is not None:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            raise UsageError(f"--now must be an ISO 8601 instant; got {args.now!r}") from None
        if now.tzinfo is None:
            raise UsageError("--now needs a UTC offset, e.g. 2026-11-23T09:00:00+00:00")
    report = desk.sweep(now)
    if args.json:
        _emit_json(serialize.to_data(report))
    else:
        print(
            f"swept at {report.now:%Y-%m-%d %H:%M:%S} UTC: {report.examined} due, "
            f"{report.warnings} warnings, {report.breaches} breaches, "
            f"{report.escalations} escalations, {report.priority_raises} priority raises"
            + (f", {report.failures} failures" if report.failures else "")
        )
    return 1 if report.failures else 0


def cmd_escalate(desk: Helpdesk, args: argparse.Namespace) -> int:
    ref = _ticket_ref(args.ticket)
    if args.down:
        ticket = desk.de_escalate(ref, args.actor, group=args.group, reason=args.reason)
    else:
        ticket = desk.escalate(
            ref, args.actor, group=args.group, functional=args.functional, reason=args.reason
        )
    return _report(ticket, args, f"escalated to {ticket.group_id}")


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
    for contact in found:
        org = desk.organization(contact.organization_id).name if contact.organization_id else "-"
        vip = " VIP" if contact.vip else ""
        print(f"{contact.id:34}  {contact.name:24}  {contact.email or '-':32}  {org}{vip}")
        if args.tickets:
            for ticket in desk.tickets_of_contact(contact):
                print("    " + _ticket_row(ticket))
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
    for org in found:
        print(f"{org.id:34}  {org.name:24}  {', '.join(org.domains) or '-'}")
        if args.tickets:
            for ticket in desk.tickets_of_organization(org):
                print("    " + _ticket_row(ticket))
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
            f"observer={'yes' if info.observes_events else 'no'}"
        )
    return 0
