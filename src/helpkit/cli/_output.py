"""What the command line prints: ticket tables, SLA lines, conversations, JSON, progress.

JSON output is the :mod:`helpkit.serialize` form of each value, printed indented.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TextIO

from helpkit.desk import Helpdesk
from helpkit.errors import NotFoundError
from helpkit.events import (
    Assigned,
    CommentAdded,
    DeliveryFailed,
    Escalated,
    Event,
    MergedInto,
    MergeReceived,
    MessageSent,
    PriorityChanged,
    SatisfactionOffered,
    SatisfactionRated,
    SlaBreached,
    SlaWarned,
    StatusChanged,
    TagsChanged,
    TicketOpened,
)
from helpkit.sla import Metric
from helpkit.tickets import ActorKind, Comment, Ticket


class _Progress:
    """A one-line progress bar on stderr, shown only when stderr is a terminal."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _isatty(self.stream)
        self.done = 0

    def step(self, count: int = 1) -> None:
        self.done += count
        if self.enabled and (self.done % 10 == 0 or self.done >= self.total):
            width = 30
            filled = width * self.done // self.total
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):  # a closed or fake stream
        return False


def _emit_json(value: Any) -> None:
    """Print plain data (built with :func:`helpkit.serialize.to_data`) as indented JSON.

    Non-ASCII text is printed as it is, unless stdout cannot encode it (``PYTHONIOENCODING=
    ascii``, a legacy console): then it is escaped (``\\u00e9``), which JSON reads back the same.
    """
    text = json.dumps(value, indent=2, ensure_ascii=False)
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        text = json.dumps(value, indent=2, ensure_ascii=True)
    print(text)


def _when(at: datetime, now: datetime) -> str:
    """A short date: the year only when it is not ``now``'s."""
    return f"{at:%m-%d %H:%M}" if at.year == now.year else f"{at:%Y-%m-%d %H:%M}"


def _breached(t: Ticket, now: datetime) -> bool:
    """Whether an SLA clock of the ticket is past its target (its next deadline has passed)."""
    return t.next_deadline is not None and t.next_deadline <= now


def _due(t: Ticket, now: datetime) -> str:
    if t.next_deadline is None:
        return "-"
    return _when(t.next_deadline, now) + (" !" if _breached(t, now) else "")


def _ticket_row(t: Ticket, now: datetime, due_width: int = 13) -> str:
    assignee = t.assignee_id or "-"
    group = t.group_id or "-"
    return (
        f"{t.reference:>7}  {t.priority.name:4}  {t.status:10}  {assignee:10}  {group:6}  "
        f"{_due(t, now):{due_width}}  {t.subject}"
    )


def _print_tickets(
    tickets: Sequence[Ticket], next_cursor: str | None, now: datetime, *, empty: str = "no tickets"
) -> None:
    """A table of tickets (``empty`` when there are none), the breach mark explained."""
    if not tickets:
        print(empty)
        return
    width = max(len("SLA due"), *(len(_due(t, now)) for t in tickets))
    print(
        f"{'#':>7}  {'prio':4}  {'status':10}  {'assignee':10}  {'group':6}  "
        f"{'SLA due':{width}}  subject"
    )
    for t in tickets:
        print(_ticket_row(t, now, width))
    if any(_breached(t, now) for t in tickets):
        print("\n! = SLA breached (the deadline has passed)")
    if next_cursor:
        print(f"\nmore: --after {next_cursor}")


def _describe_comment(comment: Comment, name: str | None = None) -> str:
    kind = "reply" if comment.public else "NOTE"
    when = comment.created_at.strftime("%Y-%m-%d %H:%M")
    who = f"{name} ({comment.author.kind.value})" if name else str(comment.author)
    lines = comment.body.splitlines() or [""]
    return f"[{when}] {kind} by {who} via {comment.channel}:\n    " + "\n    ".join(lines)


def _arrow(before: object, after: object) -> str:
    return f"{before if before is not None else '-'} -> {after if after is not None else '-'}"


_KINDS = {"reply": "reply", "sla_notice": "SLA notice", "csat_offer": "satisfaction survey"}


def kind_label(kind: str) -> str:
    """How a delivery's kind reads: ``reply``, ``SLA notice``."""
    return _KINDS.get(kind, kind)


def _delivery_detail(event: MessageSent | DeliveryFailed, names: Mapping[str, str]) -> str:
    """``reply sent to Bob via email <id>``; ``reply via email failed (attempt 2, retry at
    ...): reason``."""
    kind = kind_label(event.kind)
    if isinstance(event, MessageSent):
        who = ", ".join(names.get(r, r) for r in event.recipients) or "nobody"
        text = f"{kind} sent to {who} via {event.channel}"
        if event.external_id:
            text += f" {event.external_id}"
        return text + (f" (attempt {event.attempt})" if event.attempt > 1 else "")
    if event.final:
        when = "given up"
    elif event.next_attempt_at is not None:
        when = f"retry at {event.next_attempt_at:%Y-%m-%d %H:%M} UTC"
    else:
        when = "to be retried"
    reason = event.reason.splitlines()[0] if event.reason else "?"
    channel = event.channel or "no channel"
    return f"{kind} via {channel} failed (attempt {event.attempt}, {when}): {reason}"


def _event_detail(event: Event, names: Mapping[str, str] | None = None) -> str:
    """What an event changed, in a few words ("" when its type says it all)."""
    if isinstance(event, MessageSent | DeliveryFailed):
        return _delivery_detail(event, names or {})
    reason = getattr(event, "reason", None)
    detail = ""
    if isinstance(event, TicketOpened):
        detail = f"{event.status}, {event.priority.name}, via {event.channel}"
    elif isinstance(event, StatusChanged):
        detail = _arrow(event.old_status, event.status)
    elif isinstance(event, Assigned):
        parts = []
        if event.assignee_id != event.previous_assignee_id:
            parts.append("agent " + _arrow(event.previous_assignee_id, event.assignee_id))
        if event.group_id != event.previous_group_id:
            parts.append("group " + _arrow(event.previous_group_id, event.group_id))
        detail = ", ".join(parts)
    elif isinstance(event, PriorityChanged):
        detail = _arrow(event.previous_priority.name, event.priority.name)
    elif isinstance(event, Escalated):
        detail = f"{event.kind}: group " + _arrow(event.previous_group_id, event.group_id)
        if event.rule and not reason:
            detail += f" (rule {event.rule})"
    elif isinstance(event, CommentAdded):
        detail = "reply" if event.comment.public else "note"
    elif isinstance(event, (SlaWarned, SlaBreached)):
        detail = event.metric
    elif isinstance(event, TagsChanged):
        detail = " ".join(
            [*(f"+{t}" for t in sorted(event.added)), *(f"-{t}" for t in sorted(event.removed))]
        )
    elif isinstance(event, MergedInto):
        detail = f"into #{event.target_number}"
    elif isinstance(event, MergeReceived):
        detail = f"from #{event.source_number}"
    elif isinstance(event, SatisfactionOffered):
        detail = f"{len(event.recipients)} to rate until {event.expires_at:%Y-%m-%d %H:%M}"
    elif isinstance(event, SatisfactionRated):
        detail = event.rating + (f": {event.comment}" if event.comment else "")
        if event.previous is not None:
            detail += f" (was {event.previous})"
    if reason:
        detail = f"{detail} ({reason})" if detail else f"({reason})"
    return detail


def _describe_event(event: Event, names: Mapping[str, str] | None = None) -> str:
    """One line of the text history: seq, time, actor, type and what changed (``names``: the
    names of the people messages went to, by ``kind:id``)."""
    detail = _event_detail(event, names)
    line = f"  {event.seq:>3}  {event.at:%Y-%m-%d %H:%M}  {event.actor}  {event.TYPE}"
    return f"{line}  {detail}" if detail else line


def _author_names(desk: Helpdesk, comments: Sequence[Comment]) -> dict[str, str]:
    names: dict[str, str] = {}
    for comment in comments:
        key = str(comment.author)
        if key in names:
            continue
        try:
            if comment.author.kind is ActorKind.AGENT:
                names[key] = desk.agent(comment.author.id).name
            elif comment.author.kind is ActorKind.CONTACT:
                names[key] = desk.contact(comment.author.id).name
        except NotFoundError:
            continue
    return names


def _recipient_names(desk: Helpdesk, events: Sequence[Event]) -> dict[str, str]:
    """The names of the people the messages in ``events`` went to, by ``kind:id``."""
    names: dict[str, str] = {}
    for event in events:
        if not isinstance(event, MessageSent):
            continue
        for recipient in event.recipients:
            if recipient in names:
                continue
            kind, _, ident = recipient.partition(":")
            try:
                if kind == "contact":
                    names[recipient] = desk.contact(ident).name
                elif kind == "agent":
                    names[recipient] = desk.agent(ident).name
            except NotFoundError:
                continue
    return names


def _fmt_delta(delta: timedelta) -> str:
    sign = "-" if delta < timedelta(0) else ""
    seconds = abs(int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    return f"{sign}{hours}h{rest // 60:02d}m"


def _print_sla(desk: Helpdesk, ticket: Ticket) -> None:
    status = desk.sla(ticket)
    if status is None:
        return
    print(f"\nSLA ({status.policy}, as of {status.now:%Y-%m-%d %H:%M} UTC):")
    for metric in Metric:
        clock = status.current(metric)
        if clock is None:
            continue
        due = "-" if clock.due is None else f"{clock.due:%Y-%m-%d %H:%M}"
        line = (
            f"  {metric.value:16} {clock.state:8}  target {_fmt_delta(clock.target)}  "
            f"elapsed {_fmt_delta(clock.elapsed)}  due {due}"
        )
        if clock.breached_at is not None:
            line += f"  breached {clock.breached_at:%Y-%m-%d %H:%M}"
        print(line)
    times = desk.tier_times(ticket)
    if times:
        spent = ", ".join(f"L{level} {_fmt_delta(t)}" for level, t in sorted(times.items()))
        print(f"  time per tier (business hours): {spent}")
