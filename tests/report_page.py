"""Reading back the page of :func:`helpkit.report_html.render_html` (shared by its tests),
and a worked report with tiers, handle time and volume by a custom field to read back."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from helpkit import Actor, DeskConfig, Helpdesk, Priority
from helpkit.calendar import BusinessCalendar
from helpkit.fields import CustomField, FieldKind, FieldSet
from helpkit.kpis import AGE_LABELS, KpiReport
from helpkit.sla import SlaPolicy, SlaPolicySet, Targets
from helpkit.testing.clock import FrozenClock


class PageReader(HTMLParser):
    """The parts of a page the tests check: its tags and their attributes, the ``data-kpi``
        figures (name -> (text, data-value)), the SVGs' titles and descriptions, the ``<title>``,
        the text of ``<style>`` and every tag left open or closed twice; a figure shown twice with
    two values is in ``conflicts``."""

    VOID = frozenset({"meta", "link", "br", "img", "input", "hr", "col", "wbr", "source"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.figures: dict[str, tuple[str, str | None]] = {}
        self.svgs: list[dict[str, str | None]] = []
        self.svg_titles: list[str] = []
        self.title = ""
        self.style = ""
        self.text: list[str] = []
        self.stack: list[str] = []
        self.mismatched: list[str] = []
        self.conflicts: list[str] = []  # figures shown twice, differently
        self._figure: tuple[str, str | None] | None = None
        self._figure_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "svg":
            self.svgs.append(attributes)
        kpi = attributes.get("data-kpi")
        if kpi is not None:
            self._figure = (kpi, attributes.get("data-value"))
            self._figure_text = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.mismatched.append(tag)
        else:
            self.stack.pop()
        if self._figure is not None:
            name, value = self._figure
            shown = ("".join(self._figure_text), value)
            if self.figures.setdefault(name, shown) != shown:
                self.conflicts.append(name)
            self._figure = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._figure is not None:
            self._figure_text.append(data)
        if self.stack[-1:] == ["title"]:
            if "svg" in self.stack:
                self.svg_titles.append(data)
            else:
                self.title += data
        elif self.stack[-1:] == ["style"]:
            self.style += data


def read_page(page: str) -> PageReader:
    reader = PageReader()
    reader.feed(page)
    reader.close()
    return reader


def _seconds(value: timedelta | None) -> str | None:
    return "" if value is None else repr(value.total_seconds())


def expected_figures(report: KpiReport) -> dict[str, str | None]:
    """What the page must say of ``report``: the ``data-kpi`` name -> the count as text, or
    the number (seconds, share) of a duration or a share."""
    figures: dict[str, str | None] = {
        "tickets": str(report.tickets),
        "backlog": str(report.backlog),
    }
    for start, per_channel in report.volume_by_channel.items():
        figures[f"volume:{start.isoformat()}"] = str(sum(per_channel.values()))
        channels = {k for counts in report.volume_by_channel.values() for k in counts}
        for channel in channels:
            name = "(none)" if channel is None else channel
            figures[f"volume:{start.isoformat()}:{name}"] = str(per_channel.get(channel, 0))
    if report.backlog_by_age:
        for label in AGE_LABELS:
            figures[f"backlog:{label}"] = str(report.backlog_by_age.get(label, 0))
    achieved = sum(row.achieved for row in report.sla)
    decided = achieved + sum(row.breached for row in report.sla)
    figures["sla"] = "" if decided == 0 else repr(achieved / decided)
    for row in report.sla:
        for outcome in ("achieved", "breached", "pending", "stopped"):
            figures[f"sla:{row.policy}:{row.metric}:{outcome}"] = str(getattr(row, outcome))
        compliance = row.compliance
        figures[f"sla:{row.policy}:{row.metric}:compliance"] = (
            "" if compliance is None else repr(compliance)
        )
    for name in ("first_response", "first_response_business"):
        dist = getattr(report, name)
        figures[f"{name}:count"] = str(dist.count)
        for attribute in ("minimum", "median", "p90", "mean", "maximum"):
            figures[f"{name}:{attribute}"] = _seconds(getattr(dist, attribute))
    for field, volume in report.volume_by_field.items():
        keys = {k for counts in volume.values() for k in counts}
        for start, per_key in volume.items():
            for key in keys:
                name = "(none)" if key is None else key
                figures[f"volume_by_field:{field}:{start.isoformat()}:{name}"] = str(
                    per_key.get(key, 0)
                )
    for tier in report.escalation:
        name = f"escalation:L{tier.tier}"
        figures[f"{name}:tickets"] = str(tier.tickets)
        figures[f"{name}:escalated"] = str(tier.escalated)
        figures[f"{name}:rate"] = "" if tier.rate is None else repr(tier.rate)
        for kind in ("time", "time_business"):
            dist = getattr(tier, kind)
            figures[f"{name}:{kind}:count"] = str(dist.count)
            figures[f"{name}:{kind}:median"] = _seconds(dist.median)
            figures[f"{name}:{kind}:p90"] = _seconds(dist.p90)
    for agent in report.agents:
        name = f"agent:{agent.agent_id}"
        figures[f"{name}:public_replies"] = str(agent.public_replies)
        figures[f"{name}:solved"] = str(agent.solved)
        figures[f"{name}:handle_time"] = _seconds(agent.handle_time)
        figures[f"{name}:handle_time_business"] = _seconds(agent.handle_time_business)
    figures["resolution:median"] = _seconds(report.resolution.median)
    figures["resolution:p90"] = _seconds(report.resolution.p90)
    for name in ("first_contact_resolution", "reopened"):
        rate = getattr(report, name).rate
        figures[name] = "" if rate is None else repr(rate)

    def share(value: float | None) -> str:
        return "" if value is None else repr(value)

    figures["satisfaction"] = share(report.satisfaction.score)
    for start, found in report.satisfaction_over_time.items():
        name = f"satisfaction:{start.isoformat()}"
        for kpi in ("offered", "good", "bad"):
            figures[f"{name}:{kpi}"] = str(getattr(found, kpi))
        figures[f"{name}:response_rate"] = share(found.response_rate)
        figures[f"{name}:satisfaction"] = share(found.score)
    for kind, per in (
        ("group", report.satisfaction_by_group),
        ("agent", report.satisfaction_by_agent),
    ):
        for who, found in per.items():
            name = f"satisfaction:{kind}:{'(none)' if who is None else who}"
            for kpi in ("offered", "good", "bad"):
                figures[f"{name}:{kpi}"] = str(getattr(found, kpi))
            figures[f"{name}:satisfaction"] = share(found.score)
    return figures


def shown_figures(reader: PageReader) -> dict[str, str | None]:
    """The page's figures as :func:`expected_figures` names them: the number of a duration
    or share (``data-value``), else the text."""
    return {
        name: (value if value is not None else text)
        for name, (text, value) in reader.figures.items()
    }


_LOADING_TAGS = frozenset({"script", "link", "img", "iframe", "object", "embed", "image", "use"})
_REFERRING = frozenset({"src", "href", "xlink:href", "srcset", "action", "poster", "data"})


def external_references(page: str) -> list[str]:
    """Whatever in ``page`` would load something: a tag that loads (script, link, img, ...),
    an attribute that refers (src, href, ...) to anything but a fragment of the page, an
    ``@import``, a ``url(...)`` that is not ``url(#...)``."""
    found: list[str] = []
    reader = read_page(page)
    for tag, attributes in reader.tags:
        if tag in _LOADING_TAGS:
            found.append(f"<{tag}>")
        for name, value in attributes.items():
            if name in _REFERRING and not (value or "").startswith("#"):
                found.append(f"{tag} {name}={value!r}")
    if "@import" in page:
        found.append("@import")
    found.extend(
        f"url({target})"
        for target in re.findall(r"url\(\s*['\"]?([^)'\"]*)", page)
        if not target.startswith("#")
    )
    return found


H = timedelta(hours=1)
MON = datetime(2026, 1, 5, 9, tzinfo=UTC)
TUE = MON + timedelta(days=1)
WED = MON + timedelta(days=2)


def tiers_and_fields_report(odd_form: str) -> KpiReport:
    """The second worked example of docs/kpis.md (time per tier, handle time, volume by
    form) as of Wednesday 09:00, with a fourth ticket W opened on Tuesday whose form is
    ``odd_form`` (a choice of the field, say markup to be escaped): X (form ``access``) 3 h
    in L1, 20 h (4 h business) in L2, Ana's handle time 3 h and Tom's 2 h, Ben's span on Y
    still running; volume by form Monday ``access`` 1, ``billing`` 1, Tuesday none 1 and
    ``odd_form`` 1."""
    clock = FrozenClock(MON)
    policy = SlaPolicy(
        "standard",
        BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC"),
        {p: Targets(first_response=4 * H, resolution=16 * H) for p in Priority},
    )
    form = CustomField(name="form", kind=FieldKind.CHOICE, choices=("access", "billing", odd_form))
    desk = Helpdesk(
        "memory://",
        config=DeskConfig(sla=SlaPolicySet((policy,)), fields=FieldSet([form])),
        clock=clock,
        entry_points=False,
    )
    try:
        desk.add_group("desk", "Service desk", tier=1)
        desk.add_group("tech", "Technicians", tier=2)
        desk.add_agent("ana", "Ana", email="ana@support.example", groups=["desk"])
        desk.add_agent("ben", "Ben", email="ben@support.example", groups=["desk"])
        desk.add_agent("tom", "Tom", email="tom@support.example", groups=["tech"])
        desk.create_contact("Bob", emails=["bob@example.com"], contact_id="bob")
        bob, ana = Actor.contact("bob"), Actor.agent("ana")

        def open_(subject: str, **kwargs: Any) -> str:
            return desk.open_ticket(bob, requester="bob", subject=subject, **kwargs).id

        x = open_("X", group="desk", custom_fields={"form": "access"})
        desk.assign(x, ana, agent="ana")
        clock.set(MON + H)
        y = open_("Y", group="desk", custom_fields={"form": "billing"})
        desk.assign(y, ana, agent="ben")
        clock.set(MON + 2 * H)  # X pending 11:00-15:00: not handled, not in the tier
        desk.set_status(x, ana, "pending")
        clock.set(MON + 6 * H)
        desk.set_status(x, ana, "open")
        clock.set(MON + 7 * H)  # Mon 16:00: X up to L2, unassigned until Tue 10:00
        desk.escalate(x, ana)
        clock.set(TUE + H)
        desk.assign(x, ana, agent="tom", group="tech")
        clock.set(TUE + 3 * H)
        desk.resolve(x, Actor.agent("tom"))
        clock.set(TUE + 4 * H)
        open_("Z")  # no form
        open_("W", custom_fields={"form": odd_form})
        return desk.kpis(now=WED, fields=["form"], period="day")
    finally:
        desk.shutdown()
