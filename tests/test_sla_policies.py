"""SLA policies: targets, conditions, policy sets, durations and the TOML configuration."""

from __future__ import annotations

import math
import tomllib
from datetime import time, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit.calendar import BusinessCalendar
from helpkit.errors import ConfigError, NotFoundError, ValidationError
from helpkit.priority import Impact, Priority, Urgency
from helpkit.sla import (
    DEFAULT_PAUSE_CATEGORIES,
    Metric,
    SlaCondition,
    SlaContext,
    SlaPolicy,
    SlaPolicySet,
    Targets,
    compute_sla,
    parse_duration,
)
from helpkit.tickets import StatusCategory, Ticket
from sla_reference import OFFICE, Story, at

H = timedelta(hours=1)
TARGETS = {Priority.P1: Targets(first_response=H, resolution=4 * H)}


def ticket(**changes: Any) -> Ticket:
    base = Story(at(0, 9), impact=Impact.HIGH, urgency=Urgency.HIGH).ticket  # P1, email
    return attrs.evolve(base, **changes)


# ---------------------------------------------------------------- targets


def test_targets_are_positive_durations_or_none() -> None:
    targets = Targets(first_response=H, resolution=8 * H)
    assert targets.for_metric(Metric.FIRST_RESPONSE) == H
    assert targets.for_metric("resolution") == 8 * H
    assert targets.for_metric(Metric.NEXT_RESPONSE) is None
    for bad in (timedelta(0), -H, 3600, "1h"):
        with pytest.raises(ValidationError, match="positive timedelta"):
            Targets(resolution=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="unknown SLA metric"):
        targets.for_metric("reply")


# ---------------------------------------------------------------- conditions


def test_conditions_normalize_and_refuse_empty_or_text_filters() -> None:
    condition = SlaCondition(priorities=["P1", 2], tags=["Password Reset"], segments={"ent"})
    assert condition.priorities == frozenset({Priority.P1, Priority.P2})
    assert condition.tags == frozenset({"password_reset"})
    with pytest.raises(ValidationError, match="never match"):
        SlaCondition(segments=[])
    with pytest.raises(ValidationError, match="must be a list"):
        SlaCondition(regions="emea")
    with pytest.raises(ValidationError):
        SlaCondition(priorities=["P9"])
    with pytest.raises(ValidationError):
        SlaCondition(vip="yes")  # type: ignore[arg-type]


def test_every_filter_of_a_condition_must_match() -> None:
    t = ticket(tags=frozenset({"vpn", "sso"}), group_id="l2", channel="chat")
    enterprise = SlaContext(segment="enterprise", region="emea", vip=True)
    assert SlaCondition().matches(t)
    assert SlaCondition(priorities=[1]).matches(t)
    assert not SlaCondition(priorities=[2]).matches(t)
    assert SlaCondition(segments=["enterprise"]).matches(t, enterprise)
    assert not SlaCondition(segments=["enterprise"]).matches(t)  # no context: no segment
    assert SlaCondition(regions=["emea", "apac"]).matches(t, enterprise)
    assert SlaCondition(channels=["chat"]).matches(t)
    assert not SlaCondition(channels=["email"]).matches(t)
    assert SlaCondition(groups=["l2"]).matches(t)
    assert not SlaCondition(groups=["l1"]).matches(t)
    assert SlaCondition(tags=["printer", "VPN"]).matches(t)  # any of the tags
    assert not SlaCondition(tags=["printer"]).matches(t)
    assert SlaCondition(vip=True).matches(t, enterprise)
    assert not SlaCondition(vip=True).matches(t)
    assert SlaCondition(vip=False).matches(t)
    both = SlaCondition(priorities=["P1"], segments=["enterprise"])
    assert both.matches(t, enterprise)
    assert not both.matches(ticket(priority=Priority.P3), enterprise)
    assert not both.matches(t, SlaContext(segment="smb"))


# ---------------------------------------------------------------- policies


def test_policy_defaults_and_validation() -> None:
    policy = SlaPolicy("std", OFFICE, {"P1": TARGETS[Priority.P1], 3: Targets()})
    assert set(policy.targets) == {Priority.P1, Priority.P3}
    assert policy.warn_at == (0.75,)
    assert policy.pause_categories == DEFAULT_PAUSE_CATEGORIES
    assert policy.target(Metric.RESOLUTION, Priority.P1) == 4 * H
    assert policy.target("resolution", Priority.P3) is None
    assert policy.target("resolution", Priority.P5) is None
    assert hash(policy) == hash(SlaPolicy("std", OFFICE, {1: TARGETS[Priority.P1], 3: Targets()}))
    assert SlaPolicy("x", OFFICE, {}, warn_at=[0.9, 0.5]).warn_at == (0.5, 0.9)
    assert SlaPolicy("x", OFFICE, {}, pause_categories=["pending"]).pause_categories == {
        StatusCategory.PENDING
    }
    for bad in ([0.0], [1.0], [1.5], [-0.1], [math.nan], [True], [0.5, 0.5], "0.5"):
        with pytest.raises(ValidationError):
            SlaPolicy("x", OFFICE, {}, warn_at=bad)
    for category in ("solved", "closed", "nope"):
        with pytest.raises(ValidationError):
            SlaPolicy("x", OFFICE, {}, pause_categories=[category])
    for name in ("", " x", 3):
        with pytest.raises(ValidationError, match="name"):
            SlaPolicy(name, OFFICE, {})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SlaPolicy("x", OFFICE, {Priority.P1: {"resolution": H}})
    with pytest.raises(ValidationError):
        SlaPolicy("x", OFFICE, {"P1": Targets(), 1: Targets()})
    with pytest.raises(ValidationError):
        SlaPolicy("x", "office", {})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SlaPolicy("x", OFFICE, {}, conditions=[{"priorities": [1]}])


def test_a_policy_applies_when_any_condition_matches() -> None:
    t = ticket(channel="chat")
    assert SlaPolicy("any", OFFICE, {}).applies_to(t)
    either = SlaPolicy(
        "either",
        OFFICE,
        {},
        conditions=(SlaCondition(channels=["phone"]), SlaCondition(priorities=[1])),
    )
    assert either.applies_to(t)
    neither = SlaPolicy("neither", OFFICE, {}, conditions=(SlaCondition(channels=["phone"]),))
    assert not neither.applies_to(t)


def test_policy_sets_pick_the_first_match_else_the_default() -> None:
    vip = SlaPolicy("vip", OFFICE, TARGETS, conditions=(SlaCondition(vip=True),))
    chat = SlaPolicy("chat", OFFICE, TARGETS, conditions=(SlaCondition(channels=["chat"]),))
    standard = SlaPolicy("standard", OFFICE, TARGETS)
    policies = SlaPolicySet((vip, chat), default=standard)
    t = ticket(channel="chat")
    assert policies.select(t, SlaContext(vip=True)) is vip
    assert policies.select(t) is chat
    assert policies.select(ticket()) is standard
    assert SlaPolicySet((vip, chat)).select(ticket()) is None
    assert policies.names == ("vip", "chat", "standard")
    assert policies.get("chat") is chat
    assert policies.get("standard") is standard
    with pytest.raises(NotFoundError, match="no SLA policy 'gold'"):
        policies.get("gold")
    with pytest.raises(ValidationError, match="defined twice"):
        SlaPolicySet((vip, attrs.evolve(chat, name="vip")))
    assert SlaPolicySet((vip, standard), default=standard).names == ("vip", "standard")
    with pytest.raises(ValidationError, match="differs"):
        SlaPolicySet((vip,), default=attrs.evolve(standard, name="vip"))


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45m", timedelta(minutes=45)),
        ("4h", 4 * H),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        ("90s", timedelta(seconds=90)),
        (" 8H ", 8 * H),
        ("PT4H", 4 * H),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P2D", timedelta(days=2)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("P1W", timedelta(weeks=1)),
        ("pt15m", timedelta(minutes=15)),
        ("0m", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "  ", "h", "4", "1.5h", "30m1h", "4h4h", "4 hours", "P", "PT", "P1M", "P1Y", "-4h", "P1H"],
)
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="duration"):
        parse_duration(text)


def test_absurd_durations_are_refused() -> None:
    with pytest.raises(ConfigError, match="too long"):
        parse_duration("99999999999w")
    with pytest.raises(ConfigError):
        parse_duration(4)  # type: ignore[arg-type]


@given(
    parts=st.fixed_dictionaries(
        {},
        optional={unit: st.integers(0, 10_000) for unit in "wdhms"},
    ).filter(bool)
)
def test_durations_read_what_they_say(parts: dict[str, int]) -> None:
    short = "".join(f"{parts[u]}{u}" for u in "wdhms" if u in parts)
    iso_date = "".join(f"{parts[u]}{u.upper()}" for u in "wd" if u in parts)
    iso_time = "".join(f"{parts[u]}{u.upper()}" for u in "hms" if u in parts)
    iso = "P" + iso_date + ("T" + iso_time if iso_time else "")
    expected = timedelta(
        weeks=parts.get("w", 0),
        days=parts.get("d", 0),
        hours=parts.get("h", 0),
        minutes=parts.get("m", 0),
        seconds=parts.get("s", 0),
    )
    assert parse_duration(short) == expected
    assert parse_duration(iso) == expected


# ---------------------------------------------------------------- configuration

CONFIG = """
[sla]
default = "standard"

[[sla.policies]]
name = "enterprise"
calendar = "office"
conditions = [
  { priorities = ["P1", "P2"], segments = ["enterprise"] },
  { vip = true },
]
warn_at = [0.5, 0.75]

[sla.policies.targets.P1]
first_response = "30m"
next_response = "1h"
periodic_update = "2h"
resolution = "4h"

[sla.policies.targets.P2]
first_response = "1h"
resolution = "PT8H"

[[sla.policies]]
name = "standard"
calendar = "office"
pause_categories = ["pending", "on_hold"]

[sla.policies.targets.P1]
first_response = "1h"
resolution = "8h"

[sla.policies.targets.P3]
first_response = "4h"
resolution = "2d"

[[sla.policies]]
name = "night-shift"
calendar = { timezone = "Europe/Paris", hours = "mon-sun 22:00-06:00" }
conditions = [{ groups = ["night"] }]
pause_categories = ["pending"]

[sla.policies.targets.critical]
resolution = "2h"
"""


def test_policies_from_toml() -> None:
    data = tomllib.loads(CONFIG)["sla"]
    policies = SlaPolicySet.from_dict(data, {"office": OFFICE})
    assert policies.names == ("enterprise", "standard", "night-shift")
    enterprise = policies.get("enterprise")
    assert enterprise.calendar is OFFICE
    assert enterprise.warn_at == (0.5, 0.75)
    assert enterprise.conditions == (
        SlaCondition(priorities=[1, 2], segments=["enterprise"]),
        SlaCondition(vip=True),
    )
    assert enterprise.targets[Priority.P1] == Targets(
        first_response=timedelta(minutes=30),
        next_response=H,
        periodic_update=2 * H,
        resolution=4 * H,
    )
    assert enterprise.targets[Priority.P2] == Targets(first_response=H, resolution=8 * H)
    standard = policies.get("standard")
    assert policies.default == standard
    assert standard.targets[Priority.P3].resolution == timedelta(days=2)
    night = policies.get("night-shift")
    assert (
        night.calendar.hours
        == BusinessCalendar.parse("mon-sun 22:00-06:00", timezone="Europe/Paris").hours
    )
    assert night.calendar.weekly[0] == ((time(22), time(6)),)
    assert night.pause_categories == {StatusCategory.PENDING}
    assert night.target(Metric.RESOLUTION, Priority.P1) == 2 * H
    # and it works end to end
    t = ticket()
    assert policies.select(t, SlaContext(segment="enterprise")) == enterprise
    assert policies.select(t) == standard
    story = Story(at(0, 9), impact=Impact.HIGH, urgency=Urgency.HIGH)
    status = compute_sla(story.events, enterprise, at(0, 9))
    assert status.current(Metric.RESOLUTION).due == at(0, 13)  # type: ignore[union-attr]


def test_an_empty_sla_table_has_no_policies() -> None:
    policies = SlaPolicySet.from_dict({}, {})
    assert policies.policies == ()
    assert policies.default is None


def _config(**policy: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "p",
        "calendar": "office",
        "targets": {"P1": {"resolution": "4h"}},
    }
    base.update(policy)
    return {"policies": [base]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"policy": []}, "unknown keys"),
        ({"policies": {"name": "p"}}, "list of tables"),
        ({"policies": ["p"]}, "must be a table"),
        (_config(calendar="shop"), "unknown calendar 'shop' \\(known: office\\)"),
        (_config(calendar=3), "'calendar' must name"),
        (_config(calendar={"hours": "mon-fri 09:00-17:00"}), "inline calendar"),
        (_config(targets={"P1": {"resolution": "4 hours"}}), "targets.P1.resolution: bad"),
        (_config(targets={"P1": {"resolution": 4}}), "must be text"),
        (_config(targets={"P1": {"resolution": "0m"}}), "positive"),
        (_config(targets={"P1": {"reply": "1h"}}), "unknown metrics \\['reply'\\]"),
        (_config(targets={"P9": {"resolution": "1h"}}), "priority must be"),
        (_config(targets={"P1": "4h"}), "table of metric"),
        (_config(targets=["P1"]), "table of priorities"),
        (_config(conditions={"vip": True}), "list of tables"),
        (_config(conditions=[{"segment": ["x"]}]), "conditions\\[0\\]: unknown keys"),
        (_config(conditions=[{"segments": []}]), "never match"),
        (_config(conditions=["vip"]), "must be a table"),
        (_config(warn_at=[75]), "fractions"),
        (_config(pause_categories=["solved"]), "cannot be a pause category"),
        (_config(colour="red"), "unknown keys \\['colour'\\]"),
        ({"policies": [{"name": "p", "calendar": "office"}]}, "missing key 'targets'"),
        ({**_config(), "default": "gold"}, "default policy 'gold' is not defined"),
        ({"policies": [*_config()["policies"], *_config()["policies"]]}, "defined twice"),  # type: ignore[misc]
    ],
)
def test_bad_configuration_is_refused_with_its_location(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        SlaPolicySet.from_dict(data, {"office": OFFICE})


def test_from_dict_accepts_values_built_in_code() -> None:
    policy = SlaPolicy.from_dict(
        {
            "name": "code",
            "calendar": OFFICE,
            "targets": {Priority.P1: Targets(resolution=H), "P2": {"resolution": 2 * H}},
            "conditions": [SlaCondition(vip=True)],
        },
        {},
    )
    assert policy.targets[Priority.P2].resolution == 2 * H
    assert policy.conditions == (SlaCondition(vip=True),)
    with pytest.raises(ConfigError, match="must be a table"):
        SlaPolicy.from_dict(["name"], {})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="must be a mapping"):
        SlaPolicySet.from_dict([], {})  # type: ignore[arg-type]
