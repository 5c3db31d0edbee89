"""Hypothesis strategies for helpkit values, for your own test suites.

Every strategy takes keyword-only arguments, like Hypothesis' own, and generates values that
helpkit accepts. Tickets are never assembled field by field: :func:`tickets` and
:func:`ticket_histories` open a ticket and apply random commands through
:mod:`helpkit.lifecycle`, so every ticket is a state a real helpdesk can reach and every
history replays cleanly with :func:`helpkit.lifecycle.replay`.

Names and email addresses include accented and non-Latin characters now and then, because
real requesters have them. :func:`inbound_messages` and :func:`receipts` generate what
channels hand to intake and what an inbox keeps (attachments' bytes included).

This module needs Hypothesis (the ``testing`` extra); the runtime package never imports it.
"""

from __future__ import annotations

from helpkit.testing._basics import (
    actors,
    attachments,
    comments,
    contacts,
    custom_fields,
    emails,
    field_values,
    impacts,
    organizations,
    priorities,
    priority_matrices,
    urgencies,
)
from helpkit.testing._histories import ticket_histories, tickets
from helpkit.testing._inbound import inbound_messages, receipts
from helpkit.testing.calendar_strategies import (
    aware_datetimes,
    business_calendars,
    business_durations,
)

__all__ = [
    "actors",
    "attachments",
    "aware_datetimes",
    "business_calendars",
    "business_durations",
    "comments",
    "contacts",
    "custom_fields",
    "emails",
    "field_values",
    "impacts",
    "inbound_messages",
    "organizations",
    "priorities",
    "priority_matrices",
    "receipts",
    "ticket_histories",
    "tickets",
    "urgencies",
]
