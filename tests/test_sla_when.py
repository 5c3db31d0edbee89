"""SLA policies chosen with the rules' condition language (``when``), beside the older
``conditions`` tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from helpkit import Helpdesk
from helpkit.config import DeskConfig
from helpkit.errors import ConfigError
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import Actor

CALENDAR = {"timezone": "UTC", "hours": "mon-sun 00:00-24:00"}


def _config(when: object, **extra: object) -> dict[str, object]:
    return {
        "fields": {"plan": {"kind": "choice", "choices": ["gold", "basic"]}},
        "sla": {
            "default": "standard",
            "policies": [
                {
                    "name": "premium",
                    "calendar": CALENDAR,
                    "when": when,
                    "targets": {"P3": {"first_response": "1h"}},
                    **extra,
                },
                {
                    "name": "standard",
                    "calendar": CALENDAR,
                    "targets": {"P3": {"first_response": "8h"}},
                },
            ],
        },
    }


def test_a_policy_is_chosen_by_requester_language_and_a_custom_field() -> None:
    when = {
        "any": [
            {"field": "requester.language", "is": "fr"},
            {"field": "fields.plan", "is": "gold"},
        ]
    }
    desk = Helpdesk(config=_config(when), clock=FrozenClock(datetime(2026, 3, 2, tzinfo=UTC)))
    french = desk.create_contact("Zoé", emails=["zoe@client.example"], language="fr")
    other = desk.create_contact("Bob", emails=["bob@client.example"], language="en")

    def open_for(contact_id: str, **kw: Any) -> str | None:
        ticket = desk.open_ticket(
            requester=contact_id, subject="Help", body="x", actor=Actor.contact(contact_id), **kw
        )
        return ticket.sla_policy

    assert open_for(french.id) == "premium"
    assert open_for(other.id) == "standard"
    assert open_for(other.id, custom_fields={"plan": "gold"}) == "premium"


def test_both_forms_must_hold() -> None:
    desk = Helpdesk(
        config=_config({"field": "tags", "has_any": ["enterprise"]}, conditions=[{"vip": True}])
    )
    vip = desk.create_contact("Vee", emails=["v@client.example"], vip=True)
    ticket = desk.open_ticket(
        requester=vip, subject="x", body="y", actor=Actor.contact(vip.id), tags=["enterprise"]
    )
    assert ticket.sla_policy == "premium"
    ticket = desk.open_ticket(requester=vip, subject="x", body="y", actor=Actor.contact(vip.id))
    assert ticket.sla_policy == "standard"


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"since": "created", "at_least": "1h"}, "cannot depend on time"),
        ({"field": "langauge", "is": "fr"}, "unknown field 'langauge'"),
        ({"field": "fields.plan", "is": "platinum"}, "unknown value 'platinum'"),
        ({"field": "event", "has_any": ["ticket_opened"]}, "only triggers"),
    ],
)
def test_mistakes_name_the_policy(when: object, message: str) -> None:
    with pytest.raises(ConfigError, match=f"SLA policy 'premium': when: .*{message}"):
        DeskConfig.from_dict(_config(when))
