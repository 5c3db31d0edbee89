"""The building blocks of helpkit's Hypothesis strategies: people, comments, priorities and
custom fields (public through :mod:`helpkit.testing.strategies`)."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from helpkit.fields import CustomField, FieldKind, FieldSet, FieldValue
from helpkit.people import Contact, Organization
from helpkit.priority import Impact, Priority, PriorityMatrix, Urgency
from helpkit.tickets import (
    Actor,
    ActorKind,
    Attachment,
    Comment,
)

# ---------------------------------------------------------------- building blocks

_ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
_SAMPLE_NAMES = (
    "José Ñúñez",
    "Zoë Saldaña",
    "Łukasz Żółć",
    "Søren Ødegård",
    "Chloé Dubois",
    "Jürgen Müller",
    "Nguyễn Văn An",
    "Ólafur Arnalds",
    "Renée O'Brien",
    "Ana-María Pérez",
    "李雷",
    "Αλέξανδρος",
    "Alice Smith",
    "Bob",
)
_LOCAL_CHARS = string.ascii_letters + string.digits + "._+-" + "éñüøçÉ"
_CHANNELS = ("email", "web", "chat", "phone", "api")
_TAGS = ("vpn", "billing", "Password Reset", "urgent", "été", "printer", "sso")


def _ident(prefix: str) -> st.SearchStrategy[str]:
    return st.integers(min_value=1, max_value=10**9).map(lambda n: f"{prefix}{n}")


def _instants() -> st.SearchStrategy[datetime]:
    # Hypothesis takes naive bounds and attaches the drawn zone itself.
    return st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=datetime(2099, 12, 31),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, ZoneInfo("Europe/Paris"), ZoneInfo("Asia/Kolkata")]),
    )


# Drawn in several zones (DST folds and gaps included) but handed out in UTC: wall-clock
# arithmetic in a zone is not real elapsed time, so ``created + delta`` could go backwards.
_INSTANTS = _instants().map(lambda value: value.astimezone(UTC))


def _names() -> st.SearchStrategy[str]:
    letters = st.characters(categories=["L"]) | st.sampled_from("éñüøçÅ -'")
    free = st.text(letters, min_size=1, max_size=30).filter(lambda s: bool(s.strip()))
    return st.sampled_from(_SAMPLE_NAMES) | free


def _text() -> st.SearchStrategy[str]:
    # No NUL and no surrogates: PostgreSQL text and UTF-8 files cannot hold them.
    return st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)


def _domains() -> st.SearchStrategy[str]:
    label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
    tld = st.from_regex(r"[a-z]{2,6}", fullmatch=True)
    return st.builds(
        lambda labels, top: ".".join([*labels, top]),
        st.lists(label, min_size=1, max_size=3),
        tld,
    )


def _check_strategy(name: str, value: object) -> None:
    if value is not None and not isinstance(value, st.SearchStrategy):
        raise InvalidArgument(f"{name}={value!r} must be a Hypothesis strategy or None")


_MAYBE_PHONES = st.none() | st.from_regex(r"\+[1-9][0-9]{6,12}", fullmatch=True)
_MAYBE_LANGUAGES = st.none() | st.sampled_from(["en", "fr", "pt-BR", "de", "es_419"])
_MAYBE_ZONES = st.none() | st.sampled_from(_ZONES)
_MAYBE_SEGMENTS = st.none() | st.sampled_from(["enterprise", "smb", "free"])
_MAYBE_REGIONS = st.none() | st.sampled_from(["emea", "amer", "apac"])
_MAYBE_MESSAGE_IDS = st.none() | _ident("<msg-").map(lambda s: f"{s}@example.com>")
# Free text where the domain takes any text: every code point a store must keep (astral,
# combining, right-to-left, controls) but NUL and lone surrogates, which no store can.
_MAYBE_FREE_TEXT = st.none() | _text()
_BODIES = st.sampled_from(_SAMPLE_NAMES) | _text().filter(lambda s: bool(s.strip()))
_CHANNEL_NAMES = st.sampled_from(_CHANNELS)
_LATER = st.timedeltas(timedelta(0), timedelta(days=400))
_DOMAINS = _domains()
_NAMES = _names()
_EMAILS = st.builds(
    lambda user, domain: f"{user}@{domain}",
    st.text(st.sampled_from(_LOCAL_CHARS), min_size=1, max_size=16),
    _DOMAINS,
)


def emails() -> st.SearchStrategy[str]:
    """Email addresses helpkit accepts, sometimes with upper case or accents in the local part.

    helpkit stores them lower-cased, so compare with
    :func:`helpkit.people.normalize_email`.
    """
    return _EMAILS


# ---------------------------------------------------------------- people


def contacts(
    *,
    ids: st.SearchStrategy[str] | None = None,
    organization_ids: st.SearchStrategy[str | None] | None = None,
    with_emails: bool = True,
    names: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Contact]:
    """Valid :class:`~helpkit.people.Contact` values.

    ``ids`` and ``names`` default to varied ids and names (accents, non-Latin scripts);
    ``organization_ids`` defaults to none or some id. With ``with_emails=True`` (the default)
    each contact has one to three addresses; with ``False`` it has none. Ids are not unique
    across draws: use ``st.lists(contacts(), unique_by=lambda c: c.id)`` when you need that.
    """
    _check_strategy("ids", ids)
    _check_strategy("organization_ids", organization_ids)
    _check_strategy("names", names)
    if not isinstance(with_emails, bool):
        raise InvalidArgument(f"with_emails={with_emails!r} must be a bool")
    email_lists = st.lists(_EMAILS, min_size=1, max_size=3) if with_emails else st.just([])
    return _contacts(
        ids if ids is not None else _ident("contact-"),
        organization_ids if organization_ids is not None else st.none() | _ident("org-"),
        email_lists,
        names if names is not None else _NAMES,
    )


@st.composite
def _contacts(
    draw: st.DrawFn,
    ids: st.SearchStrategy[str],
    organization_ids: st.SearchStrategy[str | None],
    email_lists: st.SearchStrategy[list[str]],
    names: st.SearchStrategy[str],
) -> Contact:
    created = draw(_INSTANTS)
    return Contact(
        id=draw(ids),
        name=draw(names),
        emails=draw(email_lists),
        phone=draw(_MAYBE_PHONES),
        language=draw(_MAYBE_LANGUAGES),
        timezone=draw(_MAYBE_ZONES),
        organization_id=draw(organization_ids),
        vip=draw(st.booleans()),
        segment=draw(_MAYBE_SEGMENTS),
        created_at=created,
        updated_at=created + draw(_LATER),
    )


def organizations(
    *,
    ids: st.SearchStrategy[str] | None = None,
    with_domains: bool = True,
    names: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Organization]:
    """Valid :class:`~helpkit.people.Organization` values (one to three domains by default)."""
    _check_strategy("ids", ids)
    _check_strategy("names", names)
    if not isinstance(with_domains, bool):
        raise InvalidArgument(f"with_domains={with_domains!r} must be a bool")
    domain_lists = st.lists(_DOMAINS, min_size=1, max_size=3) if with_domains else st.just([])
    return _organizations(
        ids if ids is not None else _ident("org-"),
        domain_lists,
        names if names is not None else _NAMES,
    )


@st.composite
def _organizations(
    draw: st.DrawFn,
    ids: st.SearchStrategy[str],
    domain_lists: st.SearchStrategy[list[str]],
    names: st.SearchStrategy[str],
) -> Organization:
    created = draw(_INSTANTS)
    return Organization(
        id=draw(ids),
        name=draw(names),
        domains=draw(domain_lists),
        segment=draw(_MAYBE_SEGMENTS),
        region=draw(_MAYBE_REGIONS),
        vip=draw(st.booleans()),
        created_at=created,
        updated_at=created + draw(_LATER),
        shared_tickets=draw(st.booleans()),
    )


def actors(
    *,
    kinds: tuple[ActorKind, ...] | None = None,
    ids: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Actor]:
    """:class:`~helpkit.tickets.Actor` values of the given ``kinds`` (default: all kinds)."""
    _check_strategy("ids", ids)
    chosen = tuple(ActorKind) if kinds is None else tuple(kinds)
    if not chosen or not all(isinstance(k, ActorKind) for k in chosen):
        raise InvalidArgument(f"kinds={kinds!r} must be a non-empty tuple of ActorKind")
    return st.builds(Actor, st.sampled_from(chosen), ids if ids is not None else _ident("id-"))


_CONTENT_TYPES = st.sampled_from(
    ["application/pdf", "image/png", "text/plain", "message/rfc822", "application/vnd.ms-excel"]
) | st.from_regex(r"[a-z]{1,10}/[a-z0-9.+-]{1,20}", fullmatch=True)
_FILENAMES = st.sampled_from(
    ["report.pdf", "screenshot.png", "Grüße.txt", "報告.docx", "a", "x" * 200]
) | _text().filter(lambda s: bool(s.strip()))
_SHA256S = st.binary(min_size=32, max_size=32).map(bytes.hex)


def attachments(*, ids: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Attachment]:
    """Valid :class:`~helpkit.tickets.Attachment` descriptions: any filename a description may
    hold (accented, non-Latin, controls but NUL), content types, sizes up to a terabyte,
    inline images with their content ids."""
    _check_strategy("ids", ids)
    return st.builds(
        Attachment,
        id=ids if ids is not None else _ident("attachment-"),
        filename=_FILENAMES,
        content_type=_CONTENT_TYPES,
        size=st.integers(0, 2**40),
        sha256=_SHA256S,
        inline=st.booleans(),
        content_id=st.none() | _ident("part-").map(lambda s: f"{s}@example.com"),
    )


_ATTACHMENT_TUPLES = st.just(()) | st.lists(attachments(), min_size=1, max_size=3).map(tuple)


def comments(
    *,
    authors: st.SearchStrategy[Actor] | None = None,
    public: bool | None = None,
    ids: st.SearchStrategy[str] | None = None,
    ticket_ids: st.SearchStrategy[str | None] | None = None,
    attachments: st.SearchStrategy[tuple[Attachment, ...]] | None = None,
) -> st.SearchStrategy[Comment]:
    """Valid :class:`~helpkit.tickets.Comment` values.

    ``public=None`` (the default) mixes public replies and internal notes. A contact can only
    write public replies, so a contact author always gets a public comment, and
    ``public=False`` draws only agent or system authors. ``attachments`` draws each comment's
    files (by default none, or one to three :func:`attachments`), and ``original`` is set now
    and then, as for a message whose quoted history was stripped.
    """
    _check_strategy("authors", authors)
    _check_strategy("ids", ids)
    _check_strategy("ticket_ids", ticket_ids)
    _check_strategy("attachments", attachments)
    if public is not None and not isinstance(public, bool):
        raise InvalidArgument(f"public={public!r} must be a bool or None")
    if authors is None:
        kinds = (ActorKind.AGENT, ActorKind.SYSTEM) if public is False else tuple(ActorKind)
        authors = actors(kinds=kinds)
    elif public is False:
        authors = authors.filter(lambda a: a.kind is not ActorKind.CONTACT)
    return _comments(
        authors,
        st.booleans() if public is None else st.just(public),
        ids if ids is not None else _ident("comment-"),
        ticket_ids if ticket_ids is not None else st.none(),
        attachments if attachments is not None else _ATTACHMENT_TUPLES,
    )


@st.composite
def _comments(
    draw: st.DrawFn,
    authors: st.SearchStrategy[Actor],
    publics: st.SearchStrategy[bool],
    ids: st.SearchStrategy[str],
    ticket_ids: st.SearchStrategy[str | None],
    files: st.SearchStrategy[tuple[Attachment, ...]],
) -> Comment:
    author = draw(authors)
    is_public = draw(publics)
    return Comment(
        id=draw(ids),
        author=author,
        body=draw(_BODIES),
        public=is_public or author.kind is ActorKind.CONTACT,
        channel=draw(_CHANNEL_NAMES),
        created_at=draw(_INSTANTS),
        external_id=draw(_MAYBE_MESSAGE_IDS | _MAYBE_FREE_TEXT),
        in_reply_to=draw(_MAYBE_MESSAGE_IDS | _MAYBE_FREE_TEXT),
        ticket_id=draw(ticket_ids),
        attachments=draw(files),
        original=draw(_MAYBE_FREE_TEXT),
    )


# ---------------------------------------------------------------- priority


def impacts() -> st.SearchStrategy[Impact]:
    """Any :class:`~helpkit.priority.Impact`."""
    return st.sampled_from(Impact)


def urgencies() -> st.SearchStrategy[Urgency]:
    """Any :class:`~helpkit.priority.Urgency`."""
    return st.sampled_from(Urgency)


def priorities() -> st.SearchStrategy[Priority]:
    """Any :class:`~helpkit.priority.Priority`."""
    return st.sampled_from(Priority)


@st.composite
def _matrices(draw: st.DrawFn) -> PriorityMatrix:
    # Walk cells from most to least severe; a cell may be no more urgent than the cells that
    # dominate it (one step more severe in impact or urgency). Every monotone matrix is reachable.
    levels = list(Impact), list(Urgency)
    cells: dict[tuple[Impact, Urgency], Priority] = {}
    for i, impact in enumerate(levels[0]):
        for u, urgency in enumerate(levels[1]):
            floor = 1
            if i:
                floor = max(floor, cells[(levels[0][i - 1], urgency)])
            if u:
                floor = max(floor, cells[(impact, levels[1][u - 1])])
            cells[(impact, urgency)] = Priority(draw(st.integers(floor, 5)))
    return PriorityMatrix(cells)


def priority_matrices() -> st.SearchStrategy[PriorityMatrix]:
    """Valid custom :class:`~helpkit.priority.PriorityMatrix` values: complete and monotone."""
    return _matrices()


# ---------------------------------------------------------------- custom fields


def custom_fields(*, kinds: tuple[FieldKind, ...] | None = None) -> st.SearchStrategy[CustomField]:
    """Valid :class:`~helpkit.fields.CustomField` definitions of the given ``kinds``."""
    chosen = tuple(FieldKind) if kinds is None else tuple(kinds)
    if not chosen or not all(isinstance(k, FieldKind) for k in chosen):
        raise InvalidArgument(f"kinds={kinds!r} must be a non-empty tuple of FieldKind")
    return _custom_fields(st.sampled_from(chosen))


@st.composite
def _custom_fields(draw: st.DrawFn, kinds: st.SearchStrategy[FieldKind]) -> CustomField:
    kind = draw(kinds)
    wants_choices = kind in (FieldKind.CHOICE, FieldKind.MULTI_CHOICE)
    choices = (
        draw(st.lists(_text().filter(bool), min_size=1, max_size=5, unique=True))
        if wants_choices
        else []
    )
    return CustomField(
        name=draw(st.from_regex(r"[a-z][a-z0-9_-]{0,15}", fullmatch=True)),
        kind=kind,
        choices=tuple(choices),
        required=draw(st.booleans()),
    )


def field_values(field: CustomField) -> st.SearchStrategy[FieldValue]:
    """Values that ``field.validate`` accepts, already in their validated form."""
    if not isinstance(field, CustomField):
        raise InvalidArgument(f"field={field!r} must be a CustomField")
    kind = field.kind
    strategy: st.SearchStrategy[FieldValue]
    if kind is FieldKind.TEXT:
        strategy = _text()
    elif kind is FieldKind.INTEGER:
        # 64-bit, so every store can hold it.
        strategy = st.integers(min_value=-(2**63), max_value=2**63 - 1)
    elif kind is FieldKind.NUMBER:
        strategy = st.floats(allow_nan=False, allow_infinity=False)
    elif kind is FieldKind.BOOLEAN:
        strategy = st.booleans()
    elif kind is FieldKind.DATE:
        strategy = st.dates()
    elif kind is FieldKind.CHOICE:
        strategy = st.sampled_from(field.choices)
    else:
        choices = field.choices
        strategy = st.sets(st.sampled_from(choices)).map(
            lambda picked: tuple(c for c in choices if c in picked)
        )
    return strategy


_DEFAULT_FIELDS = FieldSet(
    [
        CustomField(name="product", kind=FieldKind.CHOICE, choices=("vpn", "mail", "crm")),
        CustomField(name="os", kind=FieldKind.MULTI_CHOICE, choices=("linux", "mac", "windows")),
        CustomField(name="asset_tag", kind=FieldKind.TEXT),
        CustomField(name="seats", kind=FieldKind.INTEGER),
        CustomField(name="cost", kind=FieldKind.NUMBER),
        CustomField(name="onsite", kind=FieldKind.BOOLEAN),
        CustomField(name="due", kind=FieldKind.DATE),
    ]
)
