"""``helpkit deliver``: the relay from the command line (once for cron, or as a worker), and
the outbox's dead letters and pending deliveries."""

from __future__ import annotations

import argparse
import sys
import threading
from datetime import datetime
from pathlib import Path

from helpkit import serialize
from helpkit.channels.maildir import MaildirChannel
from helpkit.cli._errors import UsageError
from helpkit.cli._output import _emit_json, _when, kind_label
from helpkit.cli._stopping import run_until_signalled
from helpkit.desk import Helpdesk
from helpkit.ports import Delivery, DeliveryState, Outbox
from helpkit.relay import RelayReport


def summary(report: RelayReport) -> str:
    """``3 derived, 2 sent, 1 retried, 0 dead, 0 recovered`` (and lost claims, if any)."""
    text = (
        f"{report.derived} derived, {report.sent} sent, {report.retried} retried, "
        f"{report.dead} dead, {report.recovered} recovered"
    )
    if report.lost_claims:
        text += f", {report.lost_claims} lost to another relay"
    return text


_PLURALS = {
    "reply": "replies",
    "sla_notice": "SLA notices",
    "webhook": "webhooks",
    "csat_offer": "satisfaction surveys",
    "notification": "notifications",
}


def _require_channels(desk: Helpdesk) -> None:
    if not desk.channels and not desk.webhooks:
        raise UsageError(
            "no channels are configured, so there is nothing to deliver through: add a "
            '[channels.NAME] table to helpkit.toml (e.g. type = "maildir", directory = '
            '"helpkit-mail", sender = "support@example.com"), or a [webhooks.NAME] endpoint; '
            "see the Channels and Webhooks docs"
        )


def cmd_deliver(desk: Helpdesk, args: argparse.Namespace) -> int:
    if args.poll is not None and not args.follow:
        raise UsageError("--poll goes with --follow")
    if args.dead or args.pending:
        return _list(desk, args, DeliveryState.DEAD if args.dead else DeliveryState.PENDING)
    _require_channels(desk)
    if args.retry:
        return _retry(desk, args)
    if args.follow:
        return _follow(desk, args)
    report = desk.deliver_pending()
    if args.json:
        _emit_json(serialize.to_data(report))
    else:
        hint = " (see helpkit deliver --dead)" if report.dead else ""
        print(f"deliver: {summary(report)}{hint}")
    return 1 if report.dead else 0


# ------------------------------------------------------------------ listings


def _list(desk: Helpdesk, args: argparse.Namespace, state: DeliveryState) -> int:
    found = desk.deliveries(state=state, after=args.after, limit=args.limit)
    more = found[-1].id if len(found) == args.limit else None
    if args.json:
        _emit_json({"deliveries": [serialize.to_data(d) for d in found], "next_cursor": more})
        return 0
    if not found:
        print(f"no {state.value} deliveries")
        return 0
    now = desk.now()
    width = max(len("id"), *(len(d.id) for d in found))
    due = "next attempt  " if state is DeliveryState.PENDING else ""
    print(f"{'id':{width}}  {'ticket':>7}  {'kind':10}  {'channel':10}  tries  {due}last error")
    for delivery in found:
        when = f"{_when(delivery.next_attempt_at, now):12}  " if due else ""
        error = (delivery.last_error or "-").splitlines()[0] if delivery.last_error else "-"
        print(
            f"{delivery.id:{width}}  {'#' + str(delivery.message.ticket_number):>7}  "
            f"{kind_label(delivery.kind):10}  {delivery.channel or '-':10}  "
            f"{delivery.attempts:>5}  {when}{error}"
        )
    if more:
        print(f"\nmore: --after {more}")
    if state is DeliveryState.DEAD:
        print("\nSend one again with: helpkit deliver --retry ID")
    return 0


# ------------------------------------------------------------------ retry


def _retry(desk: Helpdesk, args: argparse.Namespace) -> int:
    ids: list[str] = list(dict.fromkeys(args.retry))
    for delivery_id in ids:
        desk.retry_delivery(delivery_id)
    report = desk.deliver_pending()
    outbox = desk.store
    assert isinstance(outbox, Outbox)  # retry_delivery found the deliveries there
    after = [outbox.delivery(delivery_id) for delivery_id in ids]
    if args.json:
        _emit_json(
            {
                "deliveries": [serialize.to_data(d) for d in after],
                "report": serialize.to_data(report),
            }
        )
    else:
        for delivery in after:
            print(_outcome(delivery))
        print(f"deliver: {summary(report)}")
    return 0 if all(d.state is DeliveryState.SENT for d in after) else 1


def _outcome(delivery: Delivery) -> str:
    what = (
        f"{delivery.id} (#{delivery.message.ticket_number} {kind_label(delivery.kind)} "
        f"via {delivery.channel or 'no channel'})"
    )
    if delivery.state is DeliveryState.SENT:
        return f"{what}: sent {delivery.external_id or ''}".rstrip()
    error = (delivery.last_error or "").splitlines()[0] if delivery.last_error else "?"
    if delivery.state is DeliveryState.DEAD:
        return f"{what}: failed again, given up: {error}"
    return (
        f"{what}: failed again (attempt {delivery.attempts}, retry at "
        f"{delivery.next_attempt_at:%Y-%m-%d %H:%M} UTC): {error}"
    )


# ------------------------------------------------------------------ --follow


def _follow(desk: Helpdesk, args: argparse.Namespace) -> int:
    """Deliver as commits come until SIGTERM or SIGINT, then finish the batch in hand and
    exit 0, printing the total."""
    poll = 1.0 if args.poll is None else args.poll

    def batch(report: RelayReport) -> None:
        if not args.json:
            _line(f"{_stamp(desk.now())} {summary(report)}")

    def work(stop: threading.Event) -> RelayReport:
        return desk.follow_deliveries(stop, poll=poll, on_report=batch)

    if not args.json:
        _line(
            f"deliver: following the outbox of {args.store} (checking every {poll:g}s); "
            "SIGTERM or Ctrl-C stops"
        )
    total, _ = run_until_signalled(work, name="helpkit-relay")
    if args.json:
        _emit_json(serialize.to_data(total))
    else:
        _line(f"deliver: stopped; in all {summary(total)}")
    return 0


def _stamp(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC:"


def _line(text: str) -> None:
    """A line for a log: written at once, even into a pipe."""
    print(text)
    sys.stdout.flush()


# ------------------------------------------------------------------ the demo's lines


def demo_relay_lines(desk: Helpdesk, report: RelayReport, start: int) -> list[str]:
    """What the demo says of its relay runs: the messages delivered since change feed
    position ``start`` (replies, SLA notices), retried, dead, and where to read them."""
    if not desk.channels:
        return ["Relay: no channels are configured: replies and SLA notices were not sent"]
    kinds: dict[str, int] = {}
    after = None
    while True:
        page = desk.deliveries(state=DeliveryState.SENT, after=after, limit=1000)
        for delivery in page:
            if delivery.source > start:
                kinds[delivery.kind] = kinds.get(delivery.kind, 0) + 1
        if len(page) < 1000:
            break
        after = page[-1].id
    split = ", ".join(
        f"{count} {kind_label(kind) if count == 1 else _PLURALS.get(kind, kind)}"
        for kind, count in sorted(kinds.items())
    )
    folders = [
        _shown(channel.directory)
        for channel in desk.channels.values()
        if isinstance(channel, MaildirChannel)
    ]
    where = f" to {', '.join(folders)}" if folders else ""
    lines = [
        f"Relay: {report.sent} messages delivered{where}"
        + (f" ({split})" if split else "")
        + f", {report.retried} retried, {report.dead} dead"
    ]
    read = f"mutt -f {folders[0]}   |   " if folders else ""
    lines.append(f"  read them: {read}dead letters: helpkit deliver --dead")
    return lines


def _shown(folder: Path) -> str:
    """``folder`` relative to the current directory when it is inside it."""
    try:
        return str(folder.relative_to(Path.cwd()))
    except ValueError:
        return str(folder)
