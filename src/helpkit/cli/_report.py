"""``helpkit report``: the desk's KPIs as tables, ``--json`` or ``--csv``; ``--html FILE``
also writes them as one self-contained HTML page.

The figures are :meth:`helpkit.desk.Helpdesk.kpis` (their definitions are on the docs' *KPIs*
page), the page is :func:`helpkit.report_html.render_html`; this module only reads the options,
prints and writes.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta

from helpkit.cli._errors import UsageError
from helpkit.cli._output import _emit_json
from helpkit.desk import Helpdesk
from helpkit.kpis import Distribution, KpiReport, Period, Rate
from helpkit.report_html import render_html
from helpkit.reports import OutdatedCheckpointError

__all__ = ["add_report_command", "cmd_report"]


def add_report_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``report`` to the parser (``command`` is the parser's command factory)."""
    p = command(
        "report",
        cmd_report,
        "the KPIs: response and resolution times, FCR, reopens, SLA, backlog, volume, agents",
        json_flag=True,
    )
    p.add_argument("--csv", action="store_true", help="print CSV rows: kpi,start,key,value")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write the report as one self-contained HTML page with SVG charts to FILE",
    )
    p.add_argument(
        "--since", metavar="WHEN", help="tickets opened from this date or ISO 8601 instant"
    )
    p.add_argument(
        "--until", metavar="WHEN", help="... up to (excluded) this date or ISO 8601 instant"
    )
    p.add_argument("--now", metavar="ISO", help="the report as of this instant (default: now)")
    p.add_argument("--group", action="append", help="group id (repeatable)")
    p.add_argument("--agent", action="append", help="assignee's agent id (repeatable)")
    p.add_argument("--org", action="append", help="organization id (repeatable)")
    p.add_argument("--priority", action="append", help="P1..P5 or a label (repeatable)")
    p.add_argument("--channel", action="append", help="channel (repeatable)")
    p.add_argument("--tag", action="append", help="required tag (repeatable)")
    p.add_argument(
        "--by-field",
        action="append",
        metavar="FIELD",
        help="also count the volume by this custom field's value, e.g. form (repeatable)",
    )
    p.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="report from this KPI projection checkpoint, streamed, plus the changes since "
        "(made from the change feed first when FILE is missing or of an earlier helpkit)",
    )
    p.add_argument(
        "--period",
        choices=[p.value for p in Period],
        default=Period.DAY.value,
        help="volume per day or per ISO week (default %(default)s)",
    )


def _when(text: str | None, option: str) -> datetime | None:
    """A date (midnight UTC) or an aware ISO 8601 instant, in UTC."""
    if text is None:
        return None
    body = text.strip()
    try:
        if len(body) == 10:
            day = date.fromisoformat(body)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        at = datetime.fromisoformat(body)
    except ValueError:
        raise UsageError(f"{option} must be a date or an ISO 8601 instant; got {text!r}") from None
    if at.tzinfo is None:
        raise UsageError(f"{option} needs a UTC offset, e.g. 2026-11-23T09:00:00+00:00")
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise UsageError(f"{option} {text!r} is out of range in UTC") from None


def cmd_report(desk: Helpdesk, args: argparse.Namespace) -> int:
    if args.json and args.csv:
        raise UsageError("report: --json and --csv are exclusive; choose one")
    for group in args.group or ():
        desk.group(group)
    for agent in args.agent or ():
        desk.agent(agent)
    for org in args.org or ():
        desk.organization(org)
    checkpoint = args.checkpoint
    if checkpoint is not None and not os.path.exists(checkpoint):
        desk.build_kpi_checkpoint(checkpoint)  # made once, streamed after

    def kpis() -> KpiReport:
        return desk.kpis(
            checkpoint=checkpoint,
            since=_when(args.since, "--since"),
            until=_when(args.until, "--until"),
            now=_when(args.now, "--now"),
            group=args.group,
            agent=args.agent,
            organization=args.org,
            priority=args.priority,
            channel=args.channel,
            tags=args.tag or (),
            period=args.period,
            fields=args.by_field or (),
        )

    try:
        report = kpis()
    except OutdatedCheckpointError:  # an earlier helpkit's: made anew
        desk.build_kpi_checkpoint(checkpoint)
        report = kpis()
    if args.html is not None:
        write_html(report, args.html)
    if args.json:
        _emit_json(report.to_data())
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(("kpi", "start", "key", "value"))
        writer.writerows(csv_rows(report))
    else:
        for line in table_lines(report):
            print(line)
        if args.html is not None:
            print(f"\nHTML report: {args.html}")
    return 0


def write_html(report: KpiReport, path: str) -> None:
    """Write ``report`` as an HTML page to ``path`` (a usage error if it cannot be written)."""
    page = render_html(report)
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(page)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--html: cannot write {path!r}: {exc}") from None


def _value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, timedelta):
        return str(value.total_seconds())
    return str(value)


def csv_rows(report: KpiReport) -> Iterator[tuple[str, str, str, str]]:
    """The report as ``(kpi, start, key, value)`` rows (durations in seconds; ``start`` is
    the day or week of a volume row, else empty; ``key`` empty for "none")."""
    yield ("now", "", "", report.now.isoformat())
    yield ("tickets", "", "", str(report.tickets))
    for name in ("first_response", "first_response_business", "resolution", "resolution_business"):
        for key, value in getattr(report, name).to_data().items():
            yield (name, "", key, _value(value))
    for name in ("first_contact_resolution", "reopened"):
        for key, value in getattr(report, name).to_data().items():
            yield (name, "", key, _value(value))
    for row in report.sla:
        for key, value in row.to_data().items():
            if key not in ("policy", "metric"):
                yield (f"sla:{row.policy}:{row.metric}", "", key, _value(value))
    for name in ("backlog_by_status", "backlog_by_group", "backlog_by_age"):
        counts: Mapping[str | None, int] = getattr(report, name)
        for key, count in counts.items():
            yield (name, "", key or "", str(count))
    for name in ("volume_by_channel", "volume_by_priority", "volume_by_organization"):
        volume: Mapping[date, Mapping[str | None, int]] = getattr(report, name)
        for start, per_key in volume.items():
            for key, count in per_key.items():
                yield (name, start.isoformat(), key or "", str(count))
    for field, volume in report.volume_by_field.items():
        for start, per_key in volume.items():
            for key, count in per_key.items():
                yield (f"volume_by_field:{field}", start.isoformat(), key or "", str(count))
    for tier in report.escalation:
        for key in ("tickets", "escalated", "rate"):
            yield (f"escalation:L{tier.tier}", "", key, _value(tier.to_data()[key]))
        for name in ("time", "time_business"):
            for key, value in getattr(tier, name).to_data().items():
                yield (f"tier_{name}:L{tier.tier}", "", key, _value(value))
    for agent in report.agents:
        yield (f"agent:{agent.agent_id}", "", "public_replies", str(agent.public_replies))
        yield (f"agent:{agent.agent_id}", "", "solved", str(agent.solved))
        yield (f"agent:{agent.agent_id}", "", "handle_seconds", _value(agent.handle_time))
        yield (
            f"agent:{agent.agent_id}",
            "",
            "handle_business_seconds",
            _value(agent.handle_time_business),
        )
    csat_keys = ("offered", "responses", "good", "bad", "response_rate", "satisfaction")
    for key in csat_keys:
        yield ("satisfaction", "", key, _value(report.satisfaction.to_data()[key]))
    for name, per in (
        ("satisfaction_by_group", report.satisfaction_by_group),
        ("satisfaction_by_agent", report.satisfaction_by_agent),
    ):
        for who, found in per.items():
            for key in csat_keys:
                yield (f"{name}:{who or ''}", "", key, _value(found.to_data()[key]))
    for start, found in report.satisfaction_over_time.items():
        for key in csat_keys:
            yield ("satisfaction_over_time", start.isoformat(), key, _value(found.to_data()[key]))


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    minutes = round(value.total_seconds() / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _rate(rate: Rate) -> str:
    return f"{rate.numerator} of {rate.denominator} ({_share(rate.rate)})"


def _counts(counts: Mapping[str | None, int]) -> str:
    return ", ".join(f"{key or '(none)'} {n}" for key, n in counts.items()) or "-"


def table_lines(report: KpiReport) -> Iterator[str]:
    """The report as aligned text tables."""
    flt = report.filter
    since = "the start" if flt.since is None else f"{flt.since:%Y-%m-%d %H:%M}"
    until = "now" if flt.until is None else f"{flt.until:%Y-%m-%d %H:%M}"
    yield f"KPIs as of {report.now:%Y-%m-%d %H:%M} UTC, tickets opened from {since} to {until}"
    yield f"tickets opened: {report.tickets}"
    yield ""
    yield f"{'':<28}{'count':>7}{'median':>10}{'p90':>10}{'mean':>10}"
    rows: tuple[tuple[str, Distribution], ...] = (
        ("first response", report.first_response),
        ("first response (business)", report.first_response_business),
        ("resolution", report.resolution),
        ("resolution (business)", report.resolution_business),
    )
    for label, dist in rows:
        yield (
            f"{label:<28}{dist.count:>7}{_duration(dist.median):>10}"
            f"{_duration(dist.p90):>10}{_duration(dist.mean):>10}"
        )
    yield ""
    yield f"first-contact resolution: {_rate(report.first_contact_resolution)}"
    yield f"reopened: {_rate(report.reopened)}"
    if report.sla:
        yield ""
        yield (
            f"{'SLA policy':<16}{'metric':<18}{'achieved':>9}{'breached':>9}{'pending':>9}"
            f"{'stopped':>9}{'compliance':>12}"
        )
        for row in report.sla:
            yield (
                f"{row.policy:<16}{row.metric:<18}{row.achieved:>9}{row.breached:>9}"
                f"{row.pending:>9}{row.stopped:>9}{_share(row.compliance):>12}"
            )
    yield ""
    yield f"backlog: {report.backlog}"
    yield f"  by status: {_counts(report.backlog_by_status)}"
    yield f"  by group: {_counts(report.backlog_by_group)}"
    yield f"  by age: {_counts(report.backlog_by_age)}"
    yield ""
    yield f"volume per {report.period.value}:"
    for start, per_channel in report.volume_by_channel.items():
        priorities = report.volume_by_priority.get(start, {})
        yield (
            f"  {start.isoformat()}  {sum(per_channel.values()):>5}  "
            f"channels: {_counts(per_channel)}; priorities: {_counts(priorities)}"
        )
    for field, volume in report.volume_by_field.items():
        yield f"volume per {report.period.value} by {field}:"
        for start, per_key in volume.items():
            yield f"  {start.isoformat()}  {sum(per_key.values()):>5}  {_counts(per_key)}"
    if report.escalation:
        yield ""
        yield (
            f"{'tier':<6}{'tickets':>8}{'escalated':>11}{'rate':>9}   time in tier:"
            f"{'count':>7}{'median':>10}{'p90':>10}{'mean':>10}{'median (bus.)':>15}"
        )
        for tier in report.escalation:
            time = tier.time
            yield (
                f"{'L' + str(tier.tier):<6}{tier.tickets:>8}{tier.escalated:>11}"
                f"{_share(tier.rate):>9}{'':<16}{time.count:>7}{_duration(time.median):>10}"
                f"{_duration(time.p90):>10}{_duration(time.mean):>10}"
                f"{_duration(tier.time_business.median):>15}"
            )
    if report.agents:
        yield ""
        yield f"{'agent':<20}{'replies':>9}{'solved':>8}{'handle time':>13}{'(business)':>12}"
        for agent in report.agents:
            yield (
                f"{agent.agent_id:<20}{agent.public_replies:>9}{agent.solved:>8}"
                f"{_duration(agent.handle_time):>13}{_duration(agent.handle_time_business):>12}"
            )
    csat = report.satisfaction
    if csat.offered:
        yield ""
        yield (
            f"satisfaction: {_share(csat.score)} good ({csat.good} good, {csat.bad} bad); "
            f"{csat.responses} of {csat.offered} surveys answered ({_share(csat.response_rate)})"
        )
        yield f"{'':<22}{'surveys':>8}{'answered':>10}{'good':>6}{'bad':>5}{'satisfaction':>14}"
        for kind, per in (
            ("group", report.satisfaction_by_group),
            ("agent", report.satisfaction_by_agent),
        ):
            for who, found in per.items():
                label = f"{kind} {who or '(none)'}"
                yield (
                    f"{label:<22}{found.offered:>8}{found.responses:>10}{found.good:>6}"
                    f"{found.bad:>5}{_share(found.score):>14}"
                )
