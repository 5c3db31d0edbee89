"""Customer satisfaction (CSAT): when a survey is offered, who may rate, and the decisions
that record offers and ratings.

Pure: no clock, no store, no secret. A desk with ``[csat] enabled`` offers a survey
``offer_after`` (calendar time) after a ticket is solved, once per solving: the sweep finds the
ticket through the timer index (:class:`helpkit.satisfaction_offers.SatisfactionOffers` is a
timer source) and records a :class:`~helpkit.events.SatisfactionOffered` event naming the
contacts who may rate and when their links expire; the relay sends each of them the
``csat_offer`` message with their own signed link (:mod:`helpkit.rating_tokens`). Reopening
the ticket before the offer is due cancels it (a ticket that is solved again is offered again,
``offer_after`` after that solving).

A rating is ``good`` or ``bad`` (the two-point scale of Zendesk's CSAT: satisfaction is
good / (good + bad)), with an optional comment. It is recorded as a
:class:`~helpkit.events.SatisfactionRated` event by the rater (a contact); a new rating replaces
the previous one (the latest counts; each stays in the audit trail). Only the requester may
rate, or the requester and the contacts following the ticket with ``who =
"requester_and_followers"``. A bad rating may reopen a solved ticket (``bad_rating =
["reopen"]``) and, with ``"notify"``, the default notification rule ``bad_ratings`` tells the
assignee and the group.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs

from helpkit._checks import check_text
from helpkit._time import parse_duration
from helpkit.errors import ConfigError, InvalidTransitionError, RatingError, ValidationError
from helpkit.events import SatisfactionOffered, SatisfactionRated, StatusChanged
from helpkit.outcomes import Draft, Outcome
from helpkit.tickets import Actor, ActorKind, StatusCategory, Ticket, Workflow

__all__ = [
    "BadRating",
    "CsatConfig",
    "Raters",
    "Rating",
    "may_rate",
    "offer",
    "offer_due",
    "rate",
    "raters",
    "rating_url",
]

BAD_RATING_REASON: Final = "bad satisfaction rating"
"""The reason of the reopening a bad rating causes (``bad_rating = ["reopen"]``)."""


class Rating(enum.Enum):
    """A satisfaction rating: the two-point scale."""

    GOOD = "good"
    BAD = "bad"

    @classmethod
    def coerce(cls, value: Rating | str) -> Rating:
        """``value`` as a rating; ValidationError for anything but ``good`` or ``bad``."""
        if isinstance(value, Rating):
            return value
        try:
            return cls(value)
        except ValueError:
            raise ValidationError(f"a rating is 'good' or 'bad'; got {value!r:.60}") from None


class Raters(enum.Enum):
    """Who is offered the survey and may rate."""

    REQUESTER = "requester"
    REQUESTER_AND_FOLLOWERS = "requester_and_followers"


class BadRating(enum.Enum):
    """What a bad rating does besides being recorded."""

    REOPEN = "reopen"
    """A solved ticket is reopened (to the workflow's default open status)."""
    NOTIFY = "notify"
    """The default notification rule ``bad_ratings`` tells the assignee and the group."""


_URL_FIELDS = re.compile(r"\{([^{}]*)\}")


def _enabled(instance: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"csat.{attribute.name} must be true or false; got {value!r:.60}")


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ConfigError(f"a csat duration is text like '24h' or '7d'; got {value!r:.60}")
    return parse_duration(value)


def _offer_after(instance: object, attribute: attrs.Attribute[timedelta], value: object) -> None:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise ConfigError(f"csat.offer_after must be a duration >= 0; got {value!r:.60}")


def _expires_after(instance: object, attribute: attrs.Attribute[timedelta], value: object) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ConfigError(f"csat.expires_after must be a positive duration; got {value!r:.60}")


def _raters(value: object) -> Raters:
    if isinstance(value, Raters):
        return value
    try:
        return Raters(value)
    except ValueError:
        raise ConfigError(
            f"csat.who is 'requester' or 'requester_and_followers'; got {value!r:.60}"
        ) from None


def _bad_rating(value: object) -> frozenset[BadRating]:
    if isinstance(value, str | BadRating):
        value = [value]
    if not isinstance(value, Iterable) or isinstance(value, bytes | Mapping):
        raise ConfigError(f"csat.bad_rating is a list of 'reopen', 'notify'; got {value!r:.60}")
    found: set[BadRating] = set()
    for item in value:
        try:
            found.add(item if isinstance(item, BadRating) else BadRating(item))
        except ValueError:
            raise ConfigError(
                f"csat.bad_rating takes 'reopen' and 'notify'; got {item!r:.60}"
            ) from None
    return frozenset(found)


def _url(instance: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"csat.url is the rating page's URL with {{token}}; got {value!r:.60}")
    fields = _URL_FIELDS.findall(value)
    if fields != ["token"] or value.count("{") != 1 or value.count("}") != 1:
        raise ConfigError(
            f"csat.url names {{token}} once and no other {{field}}; got {value!r:.80} "
            "(e.g. 'https://example.com/rate?token={token}')"
        )


_KEYS: Final = frozenset({"enabled", "offer_after", "expires_after", "who", "bad_rating", "url"})


@attrs.frozen(kw_only=True)
class CsatConfig:
    """The ``[csat]`` table: satisfaction surveys."""

    enabled: bool = attrs.field(default=False, validator=_enabled)
    """Whether solved tickets are offered a survey."""
    offer_after: timedelta = attrs.field(
        default=timedelta(hours=24), converter=_duration, validator=_offer_after
    )
    """How long after a ticket is solved the offer is sent (calendar time)."""
    expires_after: timedelta = attrs.field(
        default=timedelta(days=7), converter=_duration, validator=_expires_after
    )
    """How long a rating link is valid after the offer."""
    who: Raters = attrs.field(default=Raters.REQUESTER, converter=_raters)
    """Who is offered the survey and may rate."""
    bad_rating: frozenset[BadRating] = attrs.field(
        default=frozenset({BadRating.NOTIFY}), converter=_bad_rating
    )
    """What a bad rating does besides being recorded."""
    url: str | None = attrs.field(default=None, validator=_url)
    """The host's rating page, with ``{token}`` where the signed token goes; without it the
    link is ``helpkit-rate:<token>`` (what ``helpkit rate`` takes)."""

    @classmethod
    def from_dict(cls, data: object) -> CsatConfig:
        """Read the ``[csat]`` table; ConfigError naming the mistake."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"csat is a table ([csat]); got {data!r:.60}")
        unknown = sorted(set(map(str, data)) - _KEYS)
        if unknown:
            raise ConfigError(f"csat: unknown keys {', '.join(unknown)}")
        kwargs: dict[str, Any] = {str(k): v for k, v in data.items()}
        try:
            return cls(**kwargs)
        except ConfigError:
            raise
        except ValidationError as exc:
            raise ConfigError(f"csat: {exc}") from None


def rating_url(config: CsatConfig, token: str) -> str:
    """The link a rater follows: ``config.url`` with the token, or ``helpkit-rate:<token>``."""
    if config.url is None:
        return f"helpkit-rate:{token}"
    return config.url.replace("{token}", token)


def offer_due(ticket: Ticket, config: CsatConfig) -> datetime | None:
    """When the survey of the ticket's latest solving is due, or ``None``: not enabled, not
    solved (or reopened since), merged, or already offered for this solving."""
    if not config.enabled or ticket.solved_at is None or ticket.merged_into is not None:
        return None
    if ticket.category not in (StatusCategory.SOLVED, StatusCategory.CLOSED):
        return None
    offered = ticket.satisfaction_offered_at
    if offered is not None and offered >= ticket.solved_at:
        return None
    return _later(ticket.solved_at, config.offer_after)


def _later(instant: datetime, delta: timedelta) -> datetime:
    """``instant + delta``, or the last instant there is when that is past it."""
    try:
        return instant + delta
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def raters(ticket: Ticket, who: Raters) -> tuple[str, ...]:
    """The contact ids who may rate ``ticket``: its requester, then (``who`` permitting) the
    contacts following it, in id order."""
    found = [ticket.requester_id]
    if who is Raters.REQUESTER_AND_FOLLOWERS:
        found.extend(
            sorted(
                party.id
                for party in ticket.followers
                if party.kind is ActorKind.CONTACT and party.id != ticket.requester_id
            )
        )
    return tuple(found)


def may_rate(ticket: Ticket, contact_id: str, who: Raters) -> bool:
    """Whether contact ``contact_id`` may rate ``ticket`` now."""
    return contact_id in raters(ticket, who)


def offer(ticket: Ticket, *, at: datetime, actor: Actor, config: CsatConfig) -> Outcome:
    """Record the survey offer of the ticket's latest solving (its links expire
    ``config.expires_after`` after ``at``); InvalidTransitionError when none is due by
    ``at``."""
    due = offer_due(ticket, config)
    if due is None or due > at:
        raise InvalidTransitionError(f"no satisfaction survey is due on {ticket.reference}")
    draft = Draft(ticket, at, actor)
    draft.emit(
        SatisfactionOffered,
        ticket.id,
        recipients=raters(ticket, config.who),
        expires_at=_later(at, config.expires_after),
    )
    return draft.outcome()


def rate(
    ticket: Ticket,
    contact_id: str,
    rating: Rating | str,
    *,
    at: datetime,
    comment: str | None,
    config: CsatConfig,
    workflow: Workflow,
) -> Outcome:
    """Record contact ``contact_id``'s rating of ``ticket`` (replacing the ticket's previous
    one); a bad rating reopens a solved ticket when ``config.bad_rating`` says so.

    RatingError when the contact may not rate the ticket (not its requester, or not a
    follower where followers may rate) or the ticket was merged away; ValidationError for a
    rating that is not ``good`` or ``bad`` or a comment that is not text.
    """
    value = Rating.coerce(rating)
    if comment is not None:
        comment = check_text(comment, "a rating's comment").strip() or None
    if ticket.merged_into is not None:
        raise RatingError(f"ticket {ticket.reference} was merged into another ticket")
    if not may_rate(ticket, contact_id, config.who):
        raise RatingError(f"contact {contact_id!r:.60} may not rate ticket {ticket.reference}")
    draft = Draft(ticket, at, Actor.contact(contact_id))
    draft.emit(
        SatisfactionRated,
        ticket.id,
        rating=value.value,
        comment=comment,
        previous=ticket.satisfaction,
    )
    if (
        value is Rating.BAD
        and BadRating.REOPEN in config.bad_rating
        and ticket.category is StatusCategory.SOLVED
    ):
        target = workflow.default(StatusCategory.OPEN)
        draft.emit(
            StatusChanged,
            ticket.id,
            old_status=ticket.status,
            old_category=ticket.category,
            status=target.name,
            category=target.category,
            reason=BAD_RATING_REASON,
        )
    return draft.outcome()
