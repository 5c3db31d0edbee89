# Over 600 lines: one page; its layout, its SVG charts and their text alternatives read as
# one.
"""One self-contained HTML page of a :class:`~helpkit.kpis.KpiReport` (``helpkit report --html``).

Pure: a report in, a string out. The page references nothing outside itself (no scripts, fonts,
stylesheets or images): the CSS is inline and the charts are SVG drawn here. Every text is
escaped with :func:`html.escape`. Each chart is an ``<svg role="img">`` with a ``<title>`` and a
``<desc>`` and is followed by a table of its figures, and the bars carry their counts as text and
their kind as a fill pattern, so nothing is told by colour alone. Each figure of the report is in
an element with a ``data-kpi`` attribute naming it (``tickets``, ``backlog:<1d``,
``sla:POLICY:METRIC:achieved``, ...) and, for durations and shares, a ``data-value`` attribute
holding the number (seconds, or a share in [0, 1]).

The CSAT trend shows, per period (of the survey offer), the surveys rated good (solid), bad
(hatched) and unanswered (dotted), with the satisfaction of the period above each column.

Escalation (with the time per tier), agent activity (with the handle time) and the volume by
each custom field asked for (``fields``) are tables, like the volume by channel: a field's name
and values are user text, escaped like the rest and kept out of element ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from html import escape
from typing import Final

from helpkit.kpis import AGE_LABELS, Distribution, KpiReport, Rate

__all__ = ["duration", "render_html", "share", "volume_totals"]

_CSS: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1f24;
background:#f6f7f9;line-height:1.4}
header,main{max-width:1040px;margin:0 auto;padding:0 24px}
header{padding-top:24px}
h1{font-size:1.6rem;margin:0 0 4px}
h2{font-size:1.15rem;margin:0 0 12px}
.meta{color:#4a5360;margin:0 0 20px}
section{background:#fff;border:1px solid #d8dde3;border-radius:8px;padding:16px 20px;
margin:0 0 20px}
.headline{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:12px;
margin:0}
.headline div{border:1px solid #d8dde3;border-radius:6px;padding:10px 12px}
.headline dt{font-size:.85rem;color:#4a5360}
.headline dd{margin:2px 0 0;font-size:1.35rem;font-weight:600}
.headline small{display:block;font-size:.8rem;font-weight:400;color:#4a5360}
figure{margin:0}
svg{max-width:100%;height:auto;display:block}
svg text{font-family:inherit;font-size:12px;fill:#1b1f24}
table{border-collapse:collapse;margin-top:12px;font-size:.9rem}
caption{text-align:left;white-space:nowrap}
th,td{border-bottom:1px solid #e3e7ec;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{border-bottom:2px solid #b9c1ca}
.none{color:#4a5360;font-style:italic}
.legend{font-size:.9rem;margin:8px 0 0}
.swatch{display:inline-block;width:14px;height:14px;vertical-align:-2px;margin:0 4px 0 12px;
border:1px solid #1b1f24}
.sw-achieved{background:#1f6f43}
.sw-breached{background:repeating-linear-gradient(45deg,#b3261e 0 3px,#fff 3px 6px)}
.sw-pending{background:radial-gradient(#8a5a00 35%,#f3e2bd 40%) 0 0/5px 5px}
.sw-unanswered{background:radial-gradient(#4a5360 30%,#e8ebef 35%) 0 0/5px 5px}
"""

_BAR: Final = "#2f5d9e"
_WIDTH: Final = 960


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _key(value: str | None) -> str:
    return "(none)" if value is None else value


def duration(value: timedelta | None) -> str:
    """A duration as text: ``45m``, ``3h05m``, ``2d 4h``; ``-`` for none."""
    if value is None:
        return "-"
    minutes = round(value.total_seconds() / 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def share(value: float | None) -> str:
    """A share in [0, 1] as a percentage; ``-`` for none."""
    return "-" if value is None else f"{100 * value:.1f}%"


def _seconds(value: timedelta | None) -> str:
    return "" if value is None else repr(value.total_seconds())


def _figure(kpi: str, text: str, value: str | None = None, tag: str = "span") -> str:
    """One figure of the report, named by ``data-kpi`` (and its number in ``data-value``)."""
    number = "" if value is None else f' data-value="{_e(value)}"'
    return f'<{tag} data-kpi="{_e(kpi)}"{number}>{_e(text)}</{tag}>'


def _svg(chart_id: str, title: str, desc: str, width: int, height: int, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-labelledby="{chart_id}-t {chart_id}-d">'
        f'<title id="{chart_id}-t">{_e(title)}</title><desc id="{chart_id}-d">{_e(desc)}</desc>'
        f"{body}</svg>"
    )


def _table(caption: str, head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table; ``head`` is escaped here, the cells are HTML made by :func:`_figure` or
    escaped by the caller."""
    heads = "".join(f'<th scope="col">{_e(h)}</th>' for h in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return (
        f'<table><caption class="none">{_e(caption)}</caption><thead><tr>{heads}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _section(section_id: str, heading: str, content: str) -> str:
    return (
        f'<section aria-labelledby="{section_id}"><h2 id="{section_id}">{_e(heading)}</h2>'
        f"{content}</section>"
    )


# ------------------------------------------------------------------ headline figures


def _card(label: str, figure: str, note: str = "") -> str:
    small = f"<small>{note}</small>" if note else ""
    return f"<div><dt>{_e(label)}</dt><dd>{figure}{small}</dd></div>"


def _rate_card(label: str, kpi: str, rate: Rate) -> str:
    value = "" if rate.rate is None else repr(rate.rate)
    return _card(
        label,
        _figure(kpi, share(rate.rate), value),
        f"{_e(rate.numerator)} of {_e(rate.denominator)} tickets",
    )


def _headline(report: KpiReport) -> str:
    achieved = sum(row.achieved for row in report.sla)
    decided = achieved + sum(row.breached for row in report.sla)
    compliance = None if decided == 0 else achieved / decided
    cards = [
        _card("Tickets opened", _figure("tickets", str(report.tickets))),
        _card("Backlog (active now)", _figure("backlog", str(report.backlog))),
        _card(
            "First response, median",
            _figure(
                "first_response:median",
                duration(report.first_response.median),
                _seconds(report.first_response.median),
            ),
            "p90 "
            + _figure(
                "first_response:p90",
                duration(report.first_response.p90),
                _seconds(report.first_response.p90),
            ),
        ),
        _card(
            "Resolution, median",
            _figure(
                "resolution:median",
                duration(report.resolution.median),
                _seconds(report.resolution.median),
            ),
            "p90 "
            + _figure(
                "resolution:p90", duration(report.resolution.p90), _seconds(report.resolution.p90)
            ),
        ),
        _rate_card(
            "First-contact resolution", "first_contact_resolution", report.first_contact_resolution
        ),
        _rate_card("Reopened", "reopened", report.reopened),
        _card(
            "SLA compliance",
            _figure("sla", share(compliance), "" if compliance is None else repr(compliance)),
            f"{achieved} of {decided} targets decided",
        ),
        _card(
            "Satisfaction (CSAT)",
            _figure(
                "satisfaction",
                share(report.satisfaction.score),
                "" if report.satisfaction.score is None else repr(report.satisfaction.score),
            ),
            f"{report.satisfaction.responses} of {report.satisfaction.offered} surveys answered",
        ),
    ]
    return f'<dl class="headline">{"".join(cards)}</dl>'


# ------------------------------------------------------------------ bar charts


def _counted(count: int, unit: str) -> str:
    """``1 ticket``, ``2 tickets``."""
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _columns(chart_id: str, title: str, bars: Sequence[tuple[str, int]], unit: str) -> str:
    """Vertical bars, each labelled below with its key and above with its count."""
    height, top, bottom, left = 260, 24, 44, 16
    slot = max(1.0, (_WIDTH - 2 * left) / max(1, len(bars)))
    peak = max((count for _, count in bars), default=0) or 1
    scale = (height - top - bottom) / peak
    parts = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{_WIDTH - left}" y2="{height - bottom}" '
        'stroke="#1b1f24"/>'
    ]
    every = max(1, round(len(bars) / 16))  # at most about 16 labels under the bars
    for index, (label, count) in enumerate(bars):
        x = left + index * slot
        bar_height = count * scale
        y = height - bottom - bar_height
        middle = x + slot / 2
        parts.append(
            f'<rect x="{x + slot * 0.15:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{bar_height:.1f}" fill="{_BAR}"><title>{_e(label)}: '
            f"{_e(_counted(count, unit))}</title></rect>"
        )
        if slot >= 28:  # room for the count above the bar (else: its title and the table)
            parts.append(
                f'<text x="{middle:.1f}" y="{y - 4:.1f}" text-anchor="middle">{count}</text>'
            )
        if index % every == 0:
            parts.append(
                f'<text x="{middle:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                f"{_e(label)}</text>"
            )
    total = sum(count for _, count in bars)
    desc = f"{len(bars)} bars, {_counted(total, unit)} in all: " + "; ".join(
        f"{label} {count}" for label, count in bars
    )
    return _svg(chart_id, title, desc, _WIDTH, height, "".join(parts))


def _rows(chart_id: str, title: str, bars: Sequence[tuple[str, int]], unit: str) -> str:
    """Horizontal bars, each labelled on the left with its key and on the right with its
    count."""
    row, label_width, right = 30, 120, 60
    height = max(1, len(bars)) * row + 10
    peak = max((count for _, count in bars), default=0) or 1
    scale = (_WIDTH - label_width - right) / peak
    parts = []
    for index, (label, count) in enumerate(bars):
        y = 5 + index * row
        width = count * scale
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 19}" text-anchor="end">{_e(label)}</text>'
            f'<rect x="{label_width}" y="{y + 4}" width="{width:.1f}" height="{row - 8}" '
            f'fill="{_BAR}"><title>{_e(label)}: {_e(_counted(count, unit))}</title></rect>'
            f'<text x="{label_width + width + 6:.1f}" y="{y + 19}">{count}</text>'
        )
    desc = "; ".join(f"{label}: {_counted(count, unit)}" for label, count in bars)
    return _svg(chart_id, title, desc, _WIDTH, height, "".join(parts))


# ------------------------------------------------------------------ sections


def _volume(report: KpiReport) -> str:
    per = report.period.value
    totals = list(volume_totals(report).items())
    if not totals:
        return _section("volume", f"Volume per {per}", '<p class="none">No tickets opened.</p>')
    bars = [(f"{start:%b %d}", count) for start, count in totals]
    chart = _columns("volume-chart", f"Tickets opened per {per}", bars, "ticket")
    channels = sorted(
        {key for per_channel in report.volume_by_channel.values() for key in per_channel},
        key=lambda k: (k is None, k or ""),
    )
    rows = [
        [
            _e(start.isoformat()),
            _figure(f"volume:{start.isoformat()}", str(total)),
            *(
                _figure(
                    f"volume:{start.isoformat()}:{_key(channel)}",
                    str(report.volume_by_channel[start].get(channel, 0)),
                )
                for channel in channels
            ),
        ]
        for start, total in totals
    ]
    table = _table(
        f"Tickets opened per {per} (the {per} starting on the date), by channel",
        [per.title(), "tickets", *(f"channel {_key(c)}" for c in channels)],
        rows,
    )
    return _section("volume", f"Volume per {per}", f"<figure>{chart}</figure>{table}")


def _backlog(report: KpiReport) -> str:
    if not report.backlog_by_age:
        return _section("backlog", "Backlog by age", '<p class="none">No active tickets.</p>')
    others = [key for key in report.backlog_by_age if key not in AGE_LABELS]
    bars = [(_key(key), report.backlog_by_age.get(key, 0)) for key in (*AGE_LABELS, *others)]
    chart = _rows("backlog-chart", "Active tickets by age (time since opened)", bars, "ticket")
    rows = [[_e(label), _figure(f"backlog:{label}", str(count))] for label, count in bars]
    by_status = ", ".join(f"{_key(k)} {n}" for k, n in report.backlog_by_status.items())
    table = _table("Active tickets by age", ["age", "tickets"], rows)
    note = f"<p>By status: {_e(by_status)}.</p>"
    return _section("backlog", "Backlog by age", f"<figure>{chart}</figure>{table}{note}")


_OUTCOMES: Final = (
    ("achieved", "url(#sla-achieved)"),
    ("breached", "url(#sla-breached)"),
    ("pending", "url(#sla-pending)"),
)
_SLA_PATTERNS: Final = (
    "<defs>"
    '<pattern id="sla-achieved" width="6" height="6" patternUnits="userSpaceOnUse">'
    '<rect width="6" height="6" fill="#1f6f43"/></pattern>'
    '<pattern id="sla-breached" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
    '<rect width="3" height="6" fill="#b3261e"/></pattern>'
    '<pattern id="sla-pending" width="5" height="5" patternUnits="userSpaceOnUse">'
    '<rect width="5" height="5" fill="#f3e2bd"/><circle cx="2.5" cy="2.5" r="1.5" '
    'fill="#8a5a00"/></pattern>'
    "</defs>"
)


def _sla(report: KpiReport) -> str:
    if not report.sla:
        return _section("sla", "SLA compliance", '<p class="none">No SLA targets.</p>')
    row, label_width, right = 34, 260, 20
    height = len(report.sla) * row + 10
    parts = [_SLA_PATTERNS]
    for index, item in enumerate(report.sla):
        y = 5 + index * row
        label = f"{item.policy} · {item.metric}"
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 21}" text-anchor="end">{_e(label)}</text>'
        )
        total = item.achieved + item.breached + item.pending or 1
        x = float(label_width)
        for outcome, fill in _OUTCOMES:
            count: int = getattr(item, outcome)
            width = count / total * (_WIDTH - label_width - right)
            if count:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 4}" width="{width:.1f}" height="{row - 8}" '
                    f'fill="{fill}" stroke="#1b1f24" stroke-width="0.5"><title>{_e(label)}: '
                    f"{count} {outcome}</title></rect>"
                )
                if width > 7 * len(f"{count} {outcome}") + 8:  # the label fits
                    parts.append(
                        f'<text x="{x + 4:.1f}" y="{y + 21}" font-weight="600" '
                        f'paint-order="stroke" stroke="#fff" stroke-width="3">{count} {outcome}'
                        "</text>"
                    )
            x += width
    desc = "; ".join(
        f"{item.policy} {item.metric}: {item.achieved} achieved, {item.breached} breached, "
        f"{item.pending} pending"
        for item in report.sla
    )
    chart = _svg(
        "sla-chart",
        "SLA targets by outcome, per policy and metric",
        desc,
        _WIDTH,
        height,
        "".join(parts),
    )
    legend = (
        '<p class="legend" aria-hidden="true">'
        '<span class="swatch sw-achieved"></span>achieved (solid)'
        '<span class="swatch sw-breached"></span>breached (hatched)'
        '<span class="swatch sw-pending"></span>pending (dotted)</p>'
    )
    rows = []
    for item in report.sla:
        name = f"sla:{item.policy}:{item.metric}"
        compliance = "" if item.compliance is None else repr(item.compliance)
        rows.append(
            [
                _e(item.policy),
                _e(item.metric),
                *(_figure(f"{name}:{o}", str(getattr(item, o))) for o, _ in _OUTCOMES),
                _figure(f"{name}:stopped", str(item.stopped)),
                _figure(f"{name}:compliance", share(item.compliance), compliance),
            ]
        )
    table = _table(
        "SLA targets by outcome (compliance: achieved among achieved and breached)",
        ["policy", "metric", "achieved", "breached", "pending", "stopped", "compliance"],
        rows,
    )
    return _section("sla", "SLA compliance", f"<figure>{chart}{legend}</figure>{table}")


_RATINGS: Final = (
    ("good", "url(#csat-good)"),
    ("bad", "url(#csat-bad)"),
    ("unanswered", "url(#csat-none)"),
)
_CSAT_PATTERNS: Final = (
    "<defs>"
    '<pattern id="csat-good" width="6" height="6" patternUnits="userSpaceOnUse">'
    '<rect width="6" height="6" fill="#1f6f43"/></pattern>'
    '<pattern id="csat-bad" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
    '<rect width="3" height="6" fill="#b3261e"/></pattern>'
    '<pattern id="csat-none" width="5" height="5" patternUnits="userSpaceOnUse">'
    '<rect width="5" height="5" fill="#e8ebef"/><circle cx="2.5" cy="2.5" r="1.2" '
    'fill="#4a5360"/></pattern>'
    "</defs>"
)


def _satisfaction(report: KpiReport) -> str:
    per = report.period.value
    trend = list(report.satisfaction_over_time.items())
    if not trend:
        return _section(
            "satisfaction", "Satisfaction (CSAT)", '<p class="none">No surveys offered.</p>'
        )
    height, top, bottom, left = 260, 34, 44, 16
    slot = max(1.0, (_WIDTH - 2 * left) / len(trend))
    peak = max(found.offered for _, found in trend) or 1
    scale = (height - top - bottom) / peak
    parts = [
        _CSAT_PATTERNS,
        f'<line x1="{left}" y1="{height - bottom}" x2="{_WIDTH - left}" y2="{height - bottom}" '
        'stroke="#1b1f24"/>',
    ]
    every = max(1, round(len(trend) / 16))
    for index, (start, found) in enumerate(trend):
        x = left + index * slot + slot * 0.15
        middle = left + index * slot + slot / 2
        y = float(height - bottom)
        counts = {
            "good": found.good,
            "bad": found.bad,
            "unanswered": found.offered - found.responses,
        }
        for name, fill in _RATINGS:
            count = counts[name]
            if not count:
                continue
            bar = count * scale
            y -= bar
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{bar:.1f}" '
                f'fill="{fill}" stroke="#1b1f24" stroke-width="0.5"><title>{start:%b %d}: '
                f"{_e(_counted(count, 'survey'))} {name}</title></rect>"
            )
        if slot >= 36:
            parts.append(
                f'<text x="{middle:.1f}" y="{y - 6:.1f}" text-anchor="middle" font-weight="600">'
                f"{_e(share(found.score))}</text>"
            )
        if index % every == 0:
            parts.append(
                f'<text x="{middle:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                f"{start:%b %d}</text>"
            )
    desc = "; ".join(
        f"{start.isoformat()}: {found.offered} surveys, {found.good} good, {found.bad} bad, "
        f"satisfaction {share(found.score)}"
        for start, found in trend
    )
    chart = _svg(
        "satisfaction-chart",
        f"Satisfaction surveys per {per}, by rating, with the satisfaction (good among rated)",
        desc,
        _WIDTH,
        height,
        "".join(parts),
    )
    legend = (
        '<p class="legend" aria-hidden="true">'
        '<span class="swatch sw-achieved"></span>good (solid)'
        '<span class="swatch sw-breached"></span>bad (hatched)'
        '<span class="swatch sw-unanswered"></span>unanswered (dotted)</p>'
    )
    rows = []
    for start, found in trend:
        name = f"satisfaction:{start.isoformat()}"
        rows.append(
            [
                _e(start.isoformat()),
                _figure(f"{name}:offered", str(found.offered)),
                _figure(f"{name}:good", str(found.good)),
                _figure(f"{name}:bad", str(found.bad)),
                _figure(
                    f"{name}:response_rate",
                    share(found.response_rate),
                    "" if found.response_rate is None else repr(found.response_rate),
                ),
                _figure(
                    f"{name}:satisfaction",
                    share(found.score),
                    "" if found.score is None else repr(found.score),
                ),
            ]
        )
    table = _table(
        f"Satisfaction surveys per {per} of the offer (satisfaction: good among rated)",
        [per.title(), "surveys", "good", "bad", "answered", "satisfaction"],
        rows,
    )
    groups = [
        [
            _e(f"{kind} {_key(who)}"),
            _figure(f"satisfaction:{kind}:{_key(who)}:offered", str(found.offered)),
            _figure(f"satisfaction:{kind}:{_key(who)}:good", str(found.good)),
            _figure(f"satisfaction:{kind}:{_key(who)}:bad", str(found.bad)),
            _figure(
                f"satisfaction:{kind}:{_key(who)}:satisfaction",
                share(found.score),
                "" if found.score is None else repr(found.score),
            ),
        ]
        for kind, per_key in (
            ("group", report.satisfaction_by_group),
            ("agent", report.satisfaction_by_agent),
        )
        for who, found in per_key.items()
    ]
    by_whom = _table(
        "Satisfaction by group and by assignee",
        ["", "surveys", "good", "bad", "satisfaction"],
        groups,
    )
    return _section(
        "satisfaction",
        "Satisfaction (CSAT) trend",
        f"<figure>{chart}{legend}</figure>{table}{by_whom}",
    )


_MARKS: Final = (("minimum", "min"), ("median", "median"), ("p90", "p90"), ("maximum", "max"))


def _spread(chart_id: str, title: str, dists: Sequence[tuple[str, Distribution]]) -> str:
    """Per distribution, a line from the minimum to the maximum with the median, the 90th
    percentile and the mean marked and labelled (on a shared linear scale in hours)."""
    row, label_width, right = 70, 170, 40
    height = len(dists) * row + 10
    peak = (
        max((d.maximum.total_seconds() for _, d in dists if d.maximum is not None), default=0.0)
        or 1.0
    )
    scale = (_WIDTH - label_width - right) / peak
    parts = []
    for index, (label, dist) in enumerate(dists):
        y = 5 + index * row + 30
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 4}" text-anchor="end">{_e(label)}</text>'
        )
        if dist.minimum is None or dist.maximum is None:
            parts.append(f'<text x="{label_width}" y="{y + 4}">no values</text>')
            continue
        x0 = label_width + dist.minimum.total_seconds() * scale
        x1 = label_width + dist.maximum.total_seconds() * scale
        parts.append(
            f'<line x1="{x0:.1f}" y1="{y}" x2="{x1:.1f}" y2="{y}" stroke="#1b1f24" '
            'stroke-width="2"/>'
        )
        if dist.median is not None and dist.p90 is not None:
            xm = label_width + dist.median.total_seconds() * scale
            xp = label_width + dist.p90.total_seconds() * scale
            parts.append(
                f'<rect x="{xm:.1f}" y="{y - 9}" width="{max(1.0, xp - xm):.1f}" height="18" '
                f'fill="{_BAR}" fill-opacity="0.35" stroke="{_BAR}"><title>{_e(label)}: '
                f"median {duration(dist.median)} to p90 {duration(dist.p90)}</title></rect>"
            )
        for attribute, mark in _MARKS:
            value: timedelta | None = getattr(dist, attribute)
            if value is None:
                continue
            x = label_width + value.total_seconds() * scale
            above = mark in ("median", "max")
            text_y = y - 14 if above else y + 24
            parts.append(
                f'<line x1="{x:.1f}" y1="{y - 9}" x2="{x:.1f}" y2="{y + 9}" stroke="#1b1f24" '
                'stroke-width="2"/>'
                f'<text x="{x:.1f}" y="{text_y}" text-anchor="middle">{mark} '
                f"{_e(duration(value))}</text>"
            )
        if dist.mean is not None:
            x = label_width + dist.mean.total_seconds() * scale
            parts.append(
                f'<path d="M{x:.1f} {y - 5}l5 5l-5 5l-5 -5z" fill="#fff" stroke="#1b1f24">'
                f"<title>{_e(label)}: mean {_e(duration(dist.mean))}</title></path>"
            )
    desc = "; ".join(
        f"{label}: {d.count} tickets, minimum {duration(d.minimum)}, median "
        f"{duration(d.median)}, 90th percentile {duration(d.p90)}, mean {duration(d.mean)}, "
        f"maximum {duration(d.maximum)}"
        for label, d in dists
    )
    return _svg(chart_id, title, desc, _WIDTH, height, "".join(parts))


def _first_response(report: KpiReport) -> str:
    dists = (
        ("calendar hours", "first_response", report.first_response),
        ("business hours", "first_response_business", report.first_response_business),
    )
    chart = _spread(
        "first-response-chart",
        "First response time: minimum, median, 90th percentile (shaded from the median), "
        "mean (diamond) and maximum",
        [(label, dist) for label, _, dist in dists],
    )
    rows = []
    for label, name, dist in dists:
        rows.append(
            [
                _e(label),
                _figure(f"{name}:count", str(dist.count)),
                *(
                    _figure(
                        f"{name}:{attr}",
                        duration(getattr(dist, attr)),
                        _seconds(getattr(dist, attr)),
                    )
                    for attr in ("minimum", "median", "p90", "mean", "maximum")
                ),
            ]
        )
    table = _table(
        "First response time (tickets with a public reply)",
        ["hours", "tickets", "min", "median", "p90", "mean", "max"],
        rows,
    )
    return _section(
        "first-response",
        "First response time",
        f"<figure>{chart}</figure>{table}",
    )


def _field_volume(report: KpiReport, index: int, field: str) -> str:
    """Tickets opened per period by the value of one custom field, as a table (like the
    volume's table by channel)."""
    per = report.period.value
    volume = report.volume_by_field[field]
    section_id = f"volume-field-{index}"  # the field's name is user text: not in an id
    heading = f"Volume per {per} by {field}"
    if not volume:
        return _section(section_id, heading, '<p class="none">No tickets opened.</p>')
    keys = sorted(
        {key for per_key in volume.values() for key in per_key},
        key=lambda k: (k is None, k or ""),
    )
    rows = [
        [
            _e(start.isoformat()),
            *(
                _figure(
                    f"volume_by_field:{field}:{start.isoformat()}:{_key(key)}",
                    str(per_key.get(key, 0)),
                )
                for key in keys
            ),
        ]
        for start, per_key in volume.items()
    ]
    table = _table(
        f"Tickets opened per {per}, by their {field} as of now",
        [per.title(), *(_key(key) for key in keys)],
        rows,
    )
    note = (
        f'<p class="legend">The {_e(per)} starting on the date; (none): not set; a multi-choice '
        "value counts under each of its choices.</p>"
    )
    return _section(section_id, heading, table + note)


def _escalation(report: KpiReport) -> str:
    if not report.escalation:
        return _section(
            "escalation",
            "Escalation and time per tier",
            '<p class="none">No tickets in a tier.</p>',
        )
    rows = []
    for tier in report.escalation:
        name = f"escalation:L{tier.tier}"
        cells = [
            _e(f"L{tier.tier}"),
            _figure(f"{name}:tickets", str(tier.tickets)),
            _figure(f"{name}:escalated", str(tier.escalated)),
            _figure(f"{name}:rate", share(tier.rate), "" if tier.rate is None else repr(tier.rate)),
        ]
        for kind, dist in (("time", tier.time), ("time_business", tier.time_business)):
            cells.append(_figure(f"{name}:{kind}:count", str(dist.count)))
            cells.extend(
                _figure(f"{name}:{kind}:{attr}", duration(value), _seconds(value))
                for attr, value in (("median", dist.median), ("p90", dist.p90))
            )
        rows.append(cells)
    table = _table(
        "Tickets per tier, escalated up from it, and time in it",
        [
            "tier",
            "tickets",
            "escalated",
            "rate",
            "timed",
            "median",
            "p90",
            "timed (bus.)",
            "median (bus.)",
            "p90 (bus.)",
        ],
        rows,
    )
    note = (
        '<p class="legend">Time in a tier: while the ticket was new or open in a group of the '
        "tier, counted for tickets done with the tier; in calendar hours, then in business "
        "hours (bus.).</p>"
    )
    return _section("escalation", "Escalation and time per tier", table + note)


def _agents(report: KpiReport) -> str:
    if not report.agents:
        return _section("agents", "Agent activity", '<p class="none">No agent activity.</p>')
    rows = [
        [
            _e(agent.agent_id),
            _figure(f"agent:{agent.agent_id}:public_replies", str(agent.public_replies)),
            _figure(f"agent:{agent.agent_id}:solved", str(agent.solved)),
            _figure(
                f"agent:{agent.agent_id}:handle_time",
                duration(agent.handle_time),
                _seconds(agent.handle_time),
            ),
            _figure(
                f"agent:{agent.agent_id}:handle_time_business",
                duration(agent.handle_time_business),
                _seconds(agent.handle_time_business),
            ),
        ]
        for agent in report.agents
    ]
    table = _table(
        "Replies, solves and handle time per agent",
        ["agent", "public replies", "solved", "handle time", "handle time (business)"],
        rows,
    )
    note = (
        '<p class="legend">Public replies and solves dated in the range; handle time: the time '
        "tickets spent assigned to the agent while new or open, in spans ended in the "
        "range.</p>"
    )
    return _section("agents", "Agent activity", table + note)


def _range(report: KpiReport) -> str:
    flt = report.filter
    since = "the start" if flt.since is None else f"{flt.since:%Y-%m-%d %H:%M} UTC"
    until = "now" if flt.until is None else f"{flt.until:%Y-%m-%d %H:%M} UTC"
    return f"tickets opened from {since} to {until}"


def _lines(report: KpiReport, title: str) -> Iterator[str]:
    yield "<!DOCTYPE html>"
    yield '<html lang="en"><head><meta charset="utf-8">'
    yield '<meta name="viewport" content="width=device-width, initial-scale=1">'
    yield f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
    yield f"<header><h1>{_e(title)}</h1>"
    yield (
        f'<p class="meta">As of {_e(f"{report.now:%Y-%m-%d %H:%M}")} UTC, {_e(_range(report))}'
        f"; volume per {_e(report.period.value)}.</p></header><main>"
    )
    yield _section("headline", "Headline figures", _headline(report))
    yield _volume(report)
    for index, field in enumerate(report.volume_by_field):
        yield _field_volume(report, index, field)
    yield _backlog(report)
    yield _sla(report)
    yield _first_response(report)
    yield _escalation(report)
    yield _agents(report)
    yield _satisfaction(report)
    yield "</main></body></html>"


def render_html(report: KpiReport, *, title: str = "helpkit report") -> str:
    """The report as one self-contained HTML page (see the module's docstring)."""
    return "\n".join(_lines(report, title)) + "\n"


def volume_totals(report: KpiReport) -> Mapping[date, int]:
    """Tickets opened per period (all channels), as the page's volume chart draws them."""
    return {start: sum(counts.values()) for start, counts in report.volume_by_channel.items()}
