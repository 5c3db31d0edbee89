"""What the command line prints: ticket tables, SLA lines, conversations, JSON, progress.

JSON output is the :mod:`helpkit.serialize` form of each value, printed indented.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TextIO

from helpkit.desk import Helpdesk
from helpkit.errors import NotFoundError
from helpkit.sla import Metric
from helpkit.tickets import ActorKind, Comment, Ticket


class _Progress:
    """A one-line progress bar on stderr, shown only when stdout is a terminal."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = sys.stdout.isatty()
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


def _emit_json(value: Any) -> None:
    """Print plain data (built with :func:`helpkit.serialize.to_data`) as indented JSON."""
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _due(t: Ticket) -> str:
    return "-" if t.next_deadline is None else f"{t.next_deadline:%m-%d %H:%M}"


def _ticket_row(t: Ticket) -> str:
    assignee = t.assignee_id or "-"
    group = t.group_id or "-"
    return (
        f"{t.reference:>7}  {t.priority.name:4}  {t.status:10}  {assignee:10}  {group:6}  "
        f"{_due(t):11}  {t.subject}"
    )


def _print_tickets(tickets: Sequence[Ticket], next_cursor: str | None) -> None:
    print(
        f"{'#':>7}  {'prio':4}  {'status':10}  {'assignee':10}  {'group':6}  "
        f"{'SLA due':11}  subject"
    )
    for t in tickets:
        print(_ticket_row(t))
    if next_cursor:
        print(f"\nmore: --after {next_cursor}")


def _describe_comment(comment: Comment, name: str | None = None) -> str:
    kind = "reply" if comment.public else "NOTE"
    when = comment.created_at.strftime("%Y-%m-%d %H:%M")
    who = f"{name} ({comment.author.kind.value})" if name else str(comment.author)
    lines = comment.body.splitlines() or [""]
    return f"[{when}] {kind} by {who} via {comment.channel}:\n    " + "\n    ".join(lines)


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
