"""Contacts (requesters), organizations, agents and groups, and name normalization."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

import attrs

from helpkit._checks import check_text, flag, optional_ident, optional_text
from helpkit._records import SINCE_LATER
from helpkit._time import to_utc
from helpkit.errors import ValidationError

__all__ = [
    "Agent",
    "Contact",
    "Group",
    "Organization",
    "normalize_domain",
    "normalize_email",
    "normalize_name",
]

_EMAIL = re.compile(
    r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


def normalize_name(name: str) -> str:
    """Fold a name for matching: case- and accent-insensitive, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def normalize_email(email: str) -> str:
    """Validate an email address and lower-case it (domain and local part)."""
    text = check_text(email, "an email address").strip()
    if not _EMAIL.match(text):
        raise ValidationError(f"not a valid email address: {email!r}")
    return text.lower()


def normalize_domain(domain: str) -> str:
    """Validate a DNS domain (``example.com``) and lower-case it."""
    text = check_text(domain, "a domain").strip().lower().rstrip(".").removeprefix("@")
    if not _DOMAIN.match(text):
        raise ValidationError(f"not a valid domain: {domain!r}")
    return text


def _name(value: str) -> str:
    if not check_text(value, "a name").strip():
        raise ValidationError("a name must be a non-empty string")
    return " ".join(value.split())


def _emails(values: object) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, (list, tuple, set, frozenset)):
        raise ValidationError("emails must be a list of strings")
    seen: dict[str, None] = {}
    for value in values:
        if not isinstance(value, str):
            raise ValidationError(f"not a valid email address: {value!r}")
        seen[normalize_email(value)] = None
    return tuple(seen)


def _domains(values: object) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, (list, tuple, set, frozenset)):
        raise ValidationError("domains must be a list of strings")
    seen: dict[str, None] = {}
    for value in values:
        if not isinstance(value, str):
            raise ValidationError(f"not a valid domain: {value!r}")
        seen[normalize_domain(value)] = None
    return tuple(seen)


def _language(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.isascii() or not _LANGUAGE.fullmatch(value):
        raise ValidationError(
            f"language must be a BCP 47 tag such as 'en' or 'pt-BR'; got {value!r}"
        )
    return value.replace("_", "-")


def _zone(value: str | None) -> str | None:
    if value is None:
        return None
    check_text(value, "a time zone")
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValidationError(f"unknown IANA time zone {value!r}") from exc
    return value


def _optional_text(value: str | None) -> str | None:
    """Free text stripped, empty text as ``None``; other types pass to the validator."""
    if isinstance(value, str):
        return value.strip() or None
    return value


def _ident(value: str) -> str:
    if not check_text(value, "an id") or value != value.strip():
        raise ValidationError(
            f"an id must be a non-empty string without surrounding spaces; got {value!r}"
        )
    return value


def _version(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError("version must be a positive integer")
    return value


@attrs.frozen(kw_only=True)
class Contact:
    """A person who asks for help (a requester or someone in CC)."""

    id: str = attrs.field(converter=_ident)
    name: str = attrs.field(converter=_name)
    emails: tuple[str, ...] = attrs.field(default=(), converter=_emails)
    phone: str | None = attrs.field(default=None, converter=_optional_text, validator=optional_text)
    language: str | None = attrs.field(default=None, converter=_language)
    timezone: str | None = attrs.field(default=None, converter=_zone)
    organization_id: str | None = attrs.field(default=None, validator=optional_ident)
    vip: bool = attrs.field(default=False, validator=flag)
    segment: str | None = attrs.field(
        default=None, converter=_optional_text, validator=optional_text
    )
    created_at: datetime = attrs.field(converter=to_utc)
    updated_at: datetime = attrs.field(converter=to_utc)
    version: int = attrs.field(default=1, converter=_version)
    # --- privacy (issue #16): erasure tombstone
    erased: bool = attrs.field(default=False, validator=flag, metadata=SINCE_LATER)
    """The contact was erased (:meth:`helpkit.Helpdesk.erase_contact`): a tombstone keeping
    only its id (so the audit trail stays whole), no name, address or other detail."""
    # --- end privacy

    @property
    def email(self) -> str | None:
        """The primary (first) email address, if any."""
        return self.emails[0] if self.emails else None

    @property
    def name_key(self) -> str:
        """The normalized name used for searching."""
        return normalize_name(self.name)


@attrs.frozen(kw_only=True)
class Organization:
    """A company whose people ask for help."""

    id: str = attrs.field(converter=_ident)
    name: str = attrs.field(converter=_name)
    domains: tuple[str, ...] = attrs.field(default=(), converter=_domains)
    segment: str | None = attrs.field(
        default=None, converter=_optional_text, validator=optional_text
    )
    region: str | None = attrs.field(
        default=None, converter=_optional_text, validator=optional_text
    )
    vip: bool = attrs.field(default=False, validator=flag)
    created_at: datetime = attrs.field(converter=to_utc)
    updated_at: datetime = attrs.field(converter=to_utc)
    version: int = attrs.field(default=1, converter=_version)
    shared_tickets: bool = attrs.field(default=False, validator=flag, metadata=SINCE_LATER)
    """Whether its people see each other's tickets in their customer view (read only: a
    contact replies only where they are a party). Not shared by default."""

    @property
    def name_key(self) -> str:
        """The normalized name used for searching."""
        return normalize_name(self.name)


def _role(value: str) -> str:
    if not isinstance(value, str) or not value or not value.isidentifier():
        raise ValidationError(f"a role is a role's name such as 'agent'; got {value!r:.40}")
    return value


def _tier(value: int | None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 9:
        raise ValidationError(f"tier must be an integer 1..9 (L1..L9); got {value!r}")
    return value


def _ids(values: object) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, (list, tuple, set, frozenset)):
        raise ValidationError("expected a list of ids")
    return tuple(dict.fromkeys(_ident(v) for v in values))


def _skills(values: object) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, (list, tuple, set, frozenset)):
        raise ValidationError("skills must be a list of words")
    found: dict[str, None] = {}
    for value in values:
        if not isinstance(value, str) or not check_text(value, "a skill").strip():
            raise ValidationError(f"a skill is a non-empty word; got {value!r:.40}")
        found["_".join(value.strip().lower().split())] = None
    return tuple(sorted(found))


def _optional_instant(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc(value, "away_until")


@attrs.frozen(kw_only=True)
class Group:
    """A team of agents; ``tier`` places it in the escalation ladder (1 = L1 service desk)."""

    id: str = attrs.field(converter=_ident)
    name: str = attrs.field(converter=_name)
    tier: int | None = attrs.field(default=None, converter=_tier)
    description: str | None = attrs.field(
        default=None, converter=_optional_text, validator=optional_text
    )


@attrs.frozen(kw_only=True)
class Agent:
    """A member of the support staff."""

    id: str = attrs.field(converter=_ident)
    name: str = attrs.field(converter=_name)
    email: str | None = attrs.field(
        default=None, converter=attrs.converters.optional(normalize_email)
    )
    group_ids: tuple[str, ...] = attrs.field(default=(), converter=_ids)
    languages: tuple[str, ...] = attrs.field(default=(), converter=_ids)
    active: bool = attrs.field(default=True, validator=flag)
    skills: tuple[str, ...] = attrs.field(default=(), converter=_skills, metadata=SINCE_LATER)
    """What the agent can handle (``billing``, ``spanish_law``...), lower-case: routing gives
    a ticket only to an agent who has every skill it needs (see the page *Routing*)."""
    away_until: datetime | None = attrs.field(
        default=None, converter=_optional_instant, metadata=SINCE_LATER
    )
    """Away (holiday, sick leave) until that instant: routing skips the agent before it."""
    calendar: str | None = attrs.field(
        default=None, converter=_optional_text, validator=optional_text, metadata=SINCE_LATER
    )
    """The name of the business calendar of the agent's shifts (a calendar of the desk's
    configuration): routing chooses the agent only in its working time. ``None``: always."""
    role: str = attrs.field(default="agent", converter=_role, metadata=SINCE_LATER)
    """The name of the agent's role (``admin``, ``agent``, ``light_agent`` or a configured
    one): what they may do (see :mod:`helpkit.roles` and the page *Access*)."""
    restricted: bool = attrs.field(default=False, validator=flag, metadata=SINCE_LATER)
    """Whether the agent acts only on the tickets of their own groups."""

    def available(self, now: datetime) -> bool:
        """Active and not away at ``now`` (the shift calendar is the routing's to read)."""
        return self.active and (self.away_until is None or self.away_until <= now)

    def in_group(self, group_id: str) -> bool:
        """Whether the agent belongs to that group."""
        return group_id in self.group_ids
