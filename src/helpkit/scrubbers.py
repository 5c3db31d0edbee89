"""Scrubbers: functions that mask patterns in text before it is stored (pure).

A scrubber takes a text and returns it with what must not be kept masked (a card number, a
national id...). The desk runs the scrubbers its configuration names (``[privacy]
scrubbers``), in that order, in the pipeline before the commit (:func:`scrub_outcome`: comment
bodies and originals, subjects, rendered notifications) and on inbound messages before they
are screened or kept (their subject, body and original). Plugins add scrubbers with the
``helpkit_register_scrubbers`` hook; helpkit registers :func:`mask_card_numbers` as
``card_numbers``.

Nothing here reads a clock or a store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from helpkit._records import replace
from helpkit.errors import ConfigError, ValidationError
from helpkit.events import (
    CommentAdded,
    Event,
    MergeReceived,
    Notified,
    SubjectChanged,
    TicketOpened,
)
from helpkit.outcomes import Outcome
from helpkit.tickets import Comment

__all__ = [
    "CARD_NUMBERS",
    "PrivacyConfig",
    "Scrub",
    "chain",
    "luhn_valid",
    "mask_card_numbers",
    "scrub_event",
    "scrub_outcome",
]

Scrub = Callable[[str], str]
"""A scrubber: a text -> the text with what must not be stored masked."""

CARD_NUMBERS: Final = "card_numbers"
"""The name helpkit registers :func:`mask_card_numbers` under."""

# 13 to 19 digits, single spaces or dashes allowed between them, not inside a longer run of
# digits (a 20-digit reference is no card number).
_CARD: Final = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")


def luhn_valid(digits: str) -> bool:
    """Whether the decimal ``digits`` pass the Luhn check (what card numbers carry)."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _mask(match: re.Match[str]) -> str:
    found = match.group(0)
    digits = [c for c in found if c.isdigit()]
    if not luhn_valid("".join(digits)):
        return found
    keep = len(digits) - 4
    out = []
    seen = 0
    for char in found:
        if char.isdigit():
            out.append("*" if seen < keep else char)
            seen += 1
        else:
            out.append(char)
    return "".join(out)


def mask_card_numbers(text: str) -> str:
    """``text`` with every card number masked but its last four digits: 13 to 19 digits
    (spaces or dashes between them allowed) that pass the Luhn check
    (``4111 1111 1111 1111`` -> ``**** **** **** 1111``). Other numbers are left alone."""
    if not isinstance(text, str):
        raise ValidationError(f"a scrubber takes text; got {type(text).__name__}")
    return _CARD.sub(_mask, text)


def chain(scrubbers: Sequence[Scrub]) -> Scrub:
    """One scrubber running ``scrubbers`` in order (a scrubber that returns something else
    than text raises ValidationError)."""
    steps = tuple(scrubbers)

    def run(text: str) -> str:
        for step in steps:
            text = step(text)
            if not isinstance(text, str):
                raise ValidationError(f"a scrubber returned {type(text).__name__}, not text")
        return text

    return run


def _comment(comment: Comment, scrub: Scrub) -> Comment:
    body = scrub(comment.body)
    original = None if comment.original is None else scrub(comment.original)
    if body == comment.body and original == comment.original:
        return comment
    return replace(comment, body=body, original=original)


def scrub_event(event: Event, scrub: Scrub) -> Event:
    """``event`` with its free texts scrubbed: comment bodies and originals, subjects, a
    notification's subject and body. Other events (and other fields) are returned as they
    are."""
    if isinstance(event, CommentAdded):
        comment = _comment(event.comment, scrub)
        return event if comment is event.comment else replace(event, comment=comment)
    if isinstance(event, MergeReceived):
        comments = tuple(_comment(c, scrub) for c in event.comments)
        return event if comments == event.comments else replace(event, comments=comments)
    if isinstance(event, TicketOpened):
        subject = scrub(event.subject)
        return event if subject == event.subject else replace(event, subject=subject)
    if isinstance(event, SubjectChanged):
        subject, previous = scrub(event.subject), scrub(event.previous_subject)
        if (subject, previous) == (event.subject, event.previous_subject):
            return event
        return replace(event, subject=subject, previous_subject=previous)
    if isinstance(event, Notified):
        subject, body = scrub(event.subject), scrub(event.body)
        if (subject, body) == (event.subject, event.body):
            return event
        return replace(event, subject=subject, body=body)
    return event


def scrub_outcome(outcome: Outcome, scrub: Scrub) -> Outcome:
    """``outcome`` with its events scrubbed (:func:`scrub_event`) and its ticket's subject
    with them, so the ticket is still the fold of its events."""
    events = tuple(scrub_event(e, scrub) for e in outcome.events)
    if events == outcome.events:
        return outcome
    subject = scrub(outcome.ticket.subject)
    ticket = (
        outcome.ticket
        if subject == outcome.ticket.subject
        else replace(outcome.ticket, subject=subject)
    )
    return Outcome(ticket, events, outcome.previous_seq, outcome.before)


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(f"[privacy] scrubbers is a list of scrubber names; got {value!r:.60}")
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"[privacy] scrubbers: a name is text; got {item!r:.60}")
        if item.strip() in names:
            raise ConfigError(f"[privacy] scrubbers names {item.strip()!r} twice")
        names.append(item.strip())
    return tuple(names)


@attrs.frozen
class PrivacyConfig:
    """The ``[privacy]`` table: the scrubbers to run, by registered name, in order (none by
    default; ``["card_numbers"]`` masks card numbers)."""

    scrubbers: tuple[str, ...] = attrs.field(default=(), converter=_names)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrivacyConfig:
        """Read the ``[privacy]`` table; unknown keys and bad values are ConfigErrors."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"[privacy] must be a table; got {data!r:.60}")
        unknown = sorted(set(map(str, data)) - {"scrubbers"})
        if unknown:
            raise ConfigError(f"unknown [privacy] keys: {', '.join(unknown)} (known: scrubbers)")
        return cls(scrubbers=data.get("scrubbers", ()))
